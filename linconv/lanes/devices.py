"""Which devices this run can use, how a device list is read, and what each device cannot represent."""

from __future__ import annotations

import torch

__all__ = [
    "KNOWN_DEVICES",
    "SKIP_ABSENT_FLAG",
    "device_option_problem",
    "device_unavailable_reason",
    "parse_devices",
    "supports_dtype",
]

KNOWN_DEVICES = ("cpu", "cuda", "mps")


def device_unavailable_reason(device: str) -> str | None:
    """None when ``device`` can run here, else a sentence saying why not (ValueError: not a device)."""
    kind, _, index = device.partition(":")
    if kind not in KNOWN_DEVICES or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"device must be one of {KNOWN_DEVICES} (optionally cuda:N), got {device!r}")
    if kind == "cpu":
        return None
    if kind == "cuda":
        if not torch.cuda.is_available():
            return "CUDA is not available here (torch.cuda.is_available() is False)"
        if int(index or 0) >= torch.cuda.device_count():
            return f"{device} does not exist: torch sees {torch.cuda.device_count()} CUDA device(s)"
        return None
    if not torch.backends.mps.is_available():
        return "MPS is not available here (torch.backends.mps.is_available() is False)"
    return None


# The flag (pytest option and command-line flag alike) that skips an absent device that was named.
SKIP_ABSENT_FLAG = "--skip-absent-devices"


def device_option_problem(device: str) -> str | None:
    """What is wrong with a command's ``--device DEVICE`` (not a device, or one that cannot run
    here), as the rest of that command's error line; None when it can run."""
    try:
        reason = device_unavailable_reason(device)
    except ValueError as exc:
        return f"--device: {exc}"
    return None if reason is None else f"--device {device}: {reason}"


def _same_device(device: str) -> str:
    """``cuda`` is the current CUDA device, which is ``cuda:0`` unless a program changes it."""
    return "cuda:0" if device == "cuda" else device


def parse_devices(text: str, *, skip_absent: bool = False) -> list[str]:
    """A comma-separated device list, or ``all``: every device kind linconv knows (cpu, cuda, mps),
    whether present or not — each consumer skips an absent one and says why
    (:func:`device_unavailable_reason`). A device named in the list must be present: a run asked for
    ``cuda`` that skipped it would pass having checked nothing on it; ``skip_absent`` (the
    ``--skip-absent-devices`` flag) lets it be skipped like one of ``all``. ValueError names an
    unknown, duplicate or absent device, or an empty list."""
    if text.strip() == "all":
        return list(KNOWN_DEVICES)
    devices = [d.strip() for d in text.split(",") if d.strip()]
    if not devices:
        raise ValueError(f"must name at least one device (cpu, cuda, cuda:N, mps) or 'all', got {text!r}")
    seen: dict[str, str] = {}
    for device in devices:
        reason = device_unavailable_reason(device)
        same = seen.get(_same_device(device))
        if same is not None:
            twice = f"{device!r} twice" if same == device else f"{same!r} and {device!r}, the same device"
            raise ValueError(f"must name each device once (each would run every test again), got {twice} in {text!r}")
        seen[_same_device(device)] = device
        if reason and not skip_absent:
            raise ValueError(
                f"{device} was asked for but is absent: {reason}. Name only present devices, use 'all' "
                f"(absent ones are skipped), or pass {SKIP_ABSENT_FLAG} to skip it"
            )
    return devices


def supports_dtype(device: str, dtype: torch.dtype) -> bool:
    """MPS has no float64; every other device/dtype pair linconv draws is supported."""
    return not (device.startswith("mps") and dtype == torch.float64)
