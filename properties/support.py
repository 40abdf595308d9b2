"""Glue between the relation registry and Hypothesis: one property per relation, each run through
the same path — place the case on the device, measure, steer the search, record the example in
the run report, fail readably and pin the case to the failure so the capture plugin keeps it."""

from __future__ import annotations

import math
from collections.abc import Callable

from hypothesis import assume, example, given, note, settings

from linconv.core import config
from linconv.core.cases import Case
from linconv.corpus import capture
from linconv.measure import RelationResult, RelationViolation
from linconv.plugins.session import SESSION
from linconv.relations import get
from linconv.search.placement import on_device, reject_known_error
from linconv.search.steering import steer

__all__ = ["relation_property", "verify", "verify_violated"]


def verify(name: str, case: Case, device: str) -> RelationResult:
    """Every formulation of relation ``name`` within its error bound of the float64 reference."""
    __tracebackhide__ = True
    relation = SESSION.relation(name)
    case = on_device(case, device, name)
    note(f"reproduce: {case.reproduction(name, SESSION.execution)}")
    try:
        result = relation.run(case, observer=SESSION.observer if relation.timed else None)
        steer(result)
        SESSION.record(relation, result)
        if not relation.holds(result):
            raise RelationViolation(result)
    except Exception as exc:
        reject_known_error(exc, name)  # a known compile error recognised by its error: the case is rejected
        capture.remember(exc, name, case)  # pin the case to the failure: the regression plugin keeps the final one
        raise
    return result


def verify_violated(name: str, case: Case, device: str) -> RelationResult:
    """Negative control: relation ``name`` must NOT hold on this case (an example that cannot tell
    the two maps apart is assumed away)."""
    __tracebackhide__ = True
    relation = SESSION.relation(name)
    control = relation.negative_control
    assert control is not None, f"relation {name!r} is not a negative control"
    case = on_device(case, device, name)
    assume(control.informative(case))
    note(f"reproduce: {case.reproduction(name, SESSION.execution)}")
    try:
        result = relation.run(case)
    except Exception as exc:
        reject_known_error(exc, name)
        raise
    SESSION.record(relation, result)
    if not relation.holds(result):
        exc = AssertionError(relation.control_silent_message(result))
        capture.remember(exc, name, case, result)
        raise exc
    return result


def relation_property(name: str) -> Callable[..., None]:
    """The property of relation ``name``: ``@given`` its strategy (plus its explicit examples),
    checked on the ``device`` parameter with :func:`verify`, or :func:`verify_violated` for a
    negative control; ``example_share`` of the profile's examples."""
    relation = get(name)
    check = verify_violated if relation.negative_control is not None else verify

    def test(case: Case, device: str) -> None:
        # an explicit example runs in the test of its dtype (one test per dtype: the drawn_dtype
        # parameter) and is skipped in the others and when the run leaves its dtype out (--dtypes), as
        # a drawn one would never be drawn there (assume() in an explicit example skips it)
        drawn = config.drawn_dtype()
        assume(case.dtype == drawn if drawn is not None else case.dtype in config.selected_dtypes())
        check(name, case, device)

    test.__doc__ = relation.statement
    test.__name__ = test.__qualname__ = f"test_{name}"
    test = given(case=relation.strategy())(test)
    if relation.example_share < 1:  # a share of the profile loaded for this run (read at collection)
        budget = max(1, math.ceil(relation.example_share * settings.default.max_examples))
        test = settings(max_examples=budget)(test)
    for case in relation.examples:
        test = example(case=case)(test)
    test.linconv_relation = name  # type: ignore[attr-defined]
    return test
