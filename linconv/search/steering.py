"""Steer the search toward the edge of the bound, and label what it drew."""

from __future__ import annotations

import math

from hypothesis import event, target

from linconv.measure import RelationResult

__all__ = ["steer"]


def steer(result: RelationResult, *, events: bool = True) -> None:
    """``target`` the worst error/bound (so the search climbs toward the edge) and, with
    ``events``, count the example by dtype and lane for ``--hypothesis-show-statistics``.
    ``target`` rejects an infinite value, which a violation may carry: it is left out, so that the
    violation itself is what the test reports.

    One target per dtype: Hypothesis spends the second half of its budget climbing each target
    from its best example, so a single target let the dtype with the largest ratios take most of
    that half (a ci run drew float16 9 times in 100 full-kernel examples, float64 9 times in 100
    general ones; docs/calibration.md, "Search reach"). Per dtype, each climbs its own edge."""
    if events:
        event(f"{result.case.dtype} / {'exact' if result.exact else 'error model'}")
    if math.isfinite(result.worst_ratio):
        target(result.worst_ratio, label=f"{result.relation} {result.case.dtype}: worst error/bound")
