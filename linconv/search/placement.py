"""Place a drawn case on a device, inside a Hypothesis test (the properties, calibration, the
fault search)."""

from __future__ import annotations

from collections import Counter

from hypothesis import assume, event
from hypothesis.control import current_build_context
from hypothesis.errors import InvalidArgument

from linconv.core.cases import Case
from linconv.known_bugs import avoided_bug, known_error
from linconv.lanes.devices import supports_dtype
from linconv.lanes.execution import active_lane

__all__ = ["on_device", "placements", "reject_known_error"]


class _Placements:
    """What :func:`on_device` did since :meth:`reset` (one property test): cases placed, and cases
    rejected, by reason. A test of one dtype can draw nothing else than rejected cases (float64 in
    a lane where a known bug covers every float64 conv): linconv.plugins.options then skips it with
    these reasons instead of failing on Hypothesis's "unable to satisfy assumptions". ``placed``
    counts drawn cases, ``explicit`` the explicit examples (``@example``, run before any draw):
    Hypothesis counts only drawn cases as satisfying the assumptions, so a test whose explicit
    example was checked and whose every drawn case was rejected is unsatisfiable too. ``where``
    counts the rejections by (device, dtype, reason), for the run report's rejected rows;
    ``rejected`` sums them by reason."""

    def __init__(self) -> None:
        self.placed = 0
        self.explicit = 0
        self.where: Counter[tuple[str, str, str]] = Counter()
        self._last: tuple[str, str] = ("", "")  # (device, dtype) of the case placed last

    def reset(self) -> None:
        self.placed = 0
        self.explicit = 0
        self.where.clear()
        self._last = ("", "")

    @property
    def rejected(self) -> Counter[str]:
        """The cases rejected, by reason."""
        by_reason: Counter[str] = Counter()
        for (_, _, reason), count in self.where.items():
            by_reason[reason] += count
        return by_reason

    def reject(self, reason: str, device: str | None = None, dtype: str | None = None) -> None:
        """Count one case rejected for ``reason``, on ``device`` in ``dtype`` (None: the case placed last)."""
        self.where[(device or self._last[0], dtype or self._last[1], reason)] += 1

    def placing(self, device: str, dtype: str) -> None:
        """The case about to be placed is on ``device`` in ``dtype`` (whose rejection by its error
        :func:`reject_known_error` counts there)."""
        self._last = (device, dtype)

    def place(self, count: int = 1) -> None:
        """Count one case placed (``count=-1``: withdrawn): an explicit example, or a drawn case (also
        outside a Hypothesis test)."""
        try:
            # Hypothesis runs explicit examples (and the replay of a failing case) as final
            explicit = current_build_context().is_final
        except InvalidArgument:  # not inside a Hypothesis test
            explicit = False
        if explicit:
            self.explicit += count
        else:
            self.placed += count


placements = _Placements()


def on_device(case: Case, device: str, relation: str | None = None) -> Case:
    """The case on ``device``. Examples the device cannot represent (float64 on MPS) are rejected,
    and so are inputs of a known upstream bug (:func:`linconv.known_bugs.avoided_bug`): a crash
    would kill the run instead of failing one example, and a known wrong result would fail every
    run that draws it, hide what else the search finds, swamp calibration data or be "caught" for
    the wrong reason."""
    if not supports_dtype(device, case.torch_dtype):
        placements.reject(f"{device} has no {case.dtype}", device, case.dtype)
        assume(False)
    placed = case.on(device)
    # a compiler's bug only in its execution lane (and, for one formulation's code, its relation)
    bug = avoided_bug(placed, execution=active_lane(), relation=relation)
    if bug is not None:
        event(f"avoided known {bug.kind} {bug.name} ({bug.link})")
        placements.reject(f"known {bug.kind} {bug.name}", device, case.dtype)
        assume(False)
    placements.placing(device, case.dtype)
    placements.place()
    return placed


def reject_known_error(error: BaseException, relation: str | None = None) -> None:
    """Reject the placed case whose run raised ``error`` if that is a known bug recognised by its
    error (:func:`linconv.known_bugs.known_error`: a compile error no signature on the case can
    describe) in this execution lane, present here: counted and reported as the bugs avoided
    beforehand are. Returns for any other error, which the caller re-raises."""
    bug = known_error(error, execution=active_lane(), relation=relation)
    if bug is None:
        return
    event(f"avoided known {bug.kind} {bug.name} ({bug.link}), recognised by its error")
    placements.place(-1)
    placements.reject(f"known {bug.kind} {bug.name}")
    assume(False)
