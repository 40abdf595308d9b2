"""Place a drawn case on a device, inside a Hypothesis test (the properties, calibration, the
fault search)."""

from __future__ import annotations

from hypothesis import assume, event

from linconv.core.cases import Case
from linconv.known_bugs import avoided_bug
from linconv.lanes.devices import supports_dtype
from linconv.lanes.execution import active_lane

__all__ = ["on_device"]


def on_device(case: Case, device: str) -> Case:
    """The case on ``device``. Examples the device cannot represent (float64 on MPS) are rejected,
    and so are inputs of a known upstream bug (:func:`linconv.known_bugs.avoided_bug`): a crash
    would kill the run instead of failing one example, and a known wrong result would fail every
    run that draws it, hide what else the search finds, swamp calibration data or be "caught" for
    the wrong reason."""
    assume(supports_dtype(device, case.torch_dtype))
    placed = case.on(device)
    bug = avoided_bug(placed, execution=active_lane())  # a compiler's bug only in its execution lane
    if bug is not None:
        event(f"avoided known {bug.kind} {bug.name} ({bug.link})")
        assume(False)
    return placed
