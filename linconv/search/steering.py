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
    violation itself is what the test reports."""
    if events:
        event(f"{result.case.dtype} / {'exact' if result.exact else 'error model'}")
    if math.isfinite(result.worst_ratio):
        target(result.worst_ratio, label=f"{result.relation}: worst error/bound")
