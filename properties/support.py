"""Glue between the relations and Hypothesis: run, steer the search, report, fail readably."""

from __future__ import annotations

import math

from hypothesis import event, note, target

from linconv import capture
from linconv.cases import Case
from linconv.check import RelationResult, RelationViolation, run_relation
from linconv.known_bugs import on_device
from linconv.relations import Relation
from linconv.session import SESSION

__all__ = ["on_device", "verify", "verify_violated"]


def _observe(relation: str, result: RelationResult) -> None:
    lane = "exact" if result.exact else "error model"
    event(f"{result.case.dtype} / {lane}")
    if math.isfinite(result.worst_ratio):  # target() rejects inf, which would mask the violation raised next
        target(result.worst_ratio, label=f"{relation}: worst error/bound")
    SESSION.record_result(result)


def verify(relation: str | Relation, case: Case, device: str) -> RelationResult:
    """Every formulation of ``relation`` within its error bound of the float64 reference."""
    __tracebackhide__ = True
    case = on_device(case, device)
    name = relation if isinstance(relation, str) else relation.name
    note(f"reproduce: {case.reproduction(name)}")
    try:
        result = run_relation(relation, case, observer=SESSION.observer)
        _observe(result.relation, result)
        if result.violations:
            raise RelationViolation(result)
    except Exception as exc:  # pin the case to the failure: the regression plugin keeps the final one
        capture.remember(exc, name, case)
        raise
    return result


def verify_violated(relation: str | Relation, case: Case, device: str) -> RelationResult:
    """Negative control: the relation must NOT hold on this case."""
    __tracebackhide__ = True
    case = on_device(case, device)
    result = run_relation(relation, case)
    SESSION.record_result(result, expect_violation=True)
    if not result.violations:
        exc = AssertionError(
            f"negative control '{result.relation}' did not fire: every formulation agreed with the "
            f"reference within bound (worst ratio {result.worst_ratio:.3g}); case {case.to_json()}"
        )
        capture.remember(exc, result.relation, case, result)
        raise exc
    return result
