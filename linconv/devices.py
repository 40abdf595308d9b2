"""Which devices this run can use, and what each cannot represent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["DEVICE_MODES", "KNOWN_DEVICES", "device_mode", "device_unavailable_reason", "supports_dtype"]

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


# Precision modes a device is checked under, each its own test id. CUDA: as shipped (TF32
# convs; the error model widens the conv side's bound by TF32 input rounding), strict (IEEE
# float32 everywhere), strict with cuDNN disabled (the native CUDA conv kernels, where
# pytorch/pytorch#54036 hid) and strict with cudnn.benchmark (autotuned algorithm choice).
DEVICE_MODES: dict[str, tuple[str, ...]] = {
    "cpu": ("default",),
    "cuda": ("as-shipped", "strict", "strict-no-cudnn", "strict-cudnn-benchmark"),
    "mps": ("default",),
}


@contextmanager
def device_mode(mode: str) -> Iterator[None]:
    """Set the flags of ``mode`` (see DEVICE_MODES) for the duration, restoring them after."""
    from linconv.precision import cudnn_mode, precision_lane

    known = {m for modes in DEVICE_MODES.values() for m in modes}
    if mode not in known:
        raise ValueError(f"mode must be one of {sorted(known)}, got {mode!r}")
    if mode == "default":
        yield
        return
    lane = "as-shipped" if mode == "as-shipped" else "strict"
    with precision_lane(lane), cudnn_mode(enabled=mode != "strict-no-cudnn", benchmark=mode.endswith("benchmark")):
        yield
