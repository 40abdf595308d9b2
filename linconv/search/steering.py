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

    One target per dtype: Hypothesis climbs each target from its best example, so each dtype's
    own edge is climbed, not only that of the dtype with the largest ratios. It does NOT even out
    how often each dtype is drawn (measured: docs/calibration.md, "Search reach")."""
    if events:
        event(f"{result.case.dtype} / {'exact' if result.exact else 'error model'}")
    if math.isfinite(result.worst_ratio):
        target(result.worst_ratio, label=f"{result.relation} {result.case.dtype}: worst error/bound")
