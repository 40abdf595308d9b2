"""The precision modes each device is checked under, and the context that sets one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DEVICE_MODES", "device_mode", "modes_of"]

# Precision modes a device is checked under, each its own test id. CUDA: as shipped (TF32
# convs; the error model widens the conv side's bound by TF32 input rounding), strict (IEEE
# float32 everywhere), strict with cuDNN disabled (the native CUDA conv kernels, where
# pytorch/pytorch#54036 hid) and strict with cudnn.benchmark (autotuned algorithm choice).
DEVICE_MODES: dict[str, tuple[str, ...]] = {
    "cpu": ("default",),
    "cuda": ("as-shipped", "strict", "strict-no-cudnn", "strict-cudnn-benchmark"),
    "mps": ("default",),
}


def modes_of(device: str) -> tuple[str, ...]:
    return DEVICE_MODES[device.split(":")[0]]


@contextmanager
def device_mode(mode: str) -> Iterator[None]:
    """Set the flags of ``mode`` (see DEVICE_MODES) for the duration, restoring them after."""
    from linconv.lanes.flags import cudnn_mode, precision_lane

    known = {m for modes in DEVICE_MODES.values() for m in modes}
    if mode not in known:
        raise ValueError(f"mode must be one of {sorted(known)}, got {mode!r}")
    if mode == "default":
        yield
        return
    lane = "as-shipped" if mode == "as-shipped" else "strict"
    with precision_lane(lane), cudnn_mode(enabled=mode != "strict-no-cudnn", benchmark=mode.endswith("benchmark")):
        yield
