"""Which devices this run can use, and what each cannot represent."""

from __future__ import annotations

import torch

__all__ = ["KNOWN_DEVICES", "device_unavailable_reason", "supports_dtype"]

KNOWN_DEVICES = ("cpu", "cuda", "mps")


def device_unavailable_reason(device: str) -> str | None:
    """None when ``device`` can run here, else a sentence saying why not."""
    kind = device.split(":")[0]
    if kind == "cpu":
        return None
    if kind == "cuda":
        if not torch.cuda.is_available():
            return "CUDA is not available here (torch.cuda.is_available() is False)"
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            return f"{device} does not exist: torch sees {torch.cuda.device_count()} CUDA device(s)"
        return None
    if kind == "mps":
        if not torch.backends.mps.is_available():
            return "MPS is not available here (torch.backends.mps.is_available() is False)"
        return None
    raise ValueError(f"device must be one of {KNOWN_DEVICES} (optionally cuda:N), got {device!r}")


def supports_dtype(device: str, dtype: torch.dtype) -> bool:
    """MPS has no float64; every other device/dtype pair linconv draws is supported."""
    return not (device.startswith("mps") and dtype == torch.float64)
