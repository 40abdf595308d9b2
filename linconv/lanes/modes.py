"""The precision modes each device is checked under, and the context that sets one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DEVICE_MODES", "device_mode", "modes_of", "parse_modes"]

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


def parse_modes(text: str) -> tuple[str, ...]:
    """A comma-separated list of precision modes, or ``all`` (every mode of DEVICE_MODES).
    ValueError names an unknown mode or an empty list."""
    known = tuple(dict.fromkeys(m for modes in DEVICE_MODES.values() for m in modes))
    if text.strip() == "all":
        return known
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    if not modes:
        raise ValueError(f"must name at least one precision mode {known} or 'all', got {text!r}")
    unknown = [m for m in modes if m not in known]
    if unknown:
        raise ValueError(f"precision mode must be one of {known} or 'all', got {unknown[0]!r}")
    return modes


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
