"""The fault-injection benchmark: the property search run against each fault of the catalogue.

For each fault, the search draws cases from the strategy of its relation's record (the strategy
the relation's property draws from), with the settings of the ``ci`` profile (derandomised, no
database, 100 examples; linconv.search.profiles), steers with the same ``target`` the properties
use, and stops at the first violation, which it then shrinks. A harmful fault must be caught; a
benign one must not be.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, Verbosity, example, given, settings

from linconv.core.cases import Case
from linconv.faults.record import Fault
from linconv.lanes.execution import COMPILE_EXAMPLES, execution_lane
from linconv.measure import RelationResult
from linconv.relations import get, in_lane
from linconv.search.placement import on_device, reject_known_error
from linconv.search.profiles import profile
from linconv.search.steering import steer

__all__ = ["Outcome", "ci_max_examples", "default_examples", "markdown_table", "search"]


def ci_max_examples() -> int:
    """The ``ci`` profile's example budget: the fault search runs what a ci run would."""
    return profile("ci").max_examples


class _Detected(Exception):
    def __init__(self, result: RelationResult | None, case: Case, error: BaseException | None = None) -> None:
        super().__init__(case.to_json())
        self.result, self.case, self.error = result, case, error


@dataclass(frozen=True)
class Outcome:
    """What the search saw under one fault."""

    fault: Fault
    caught: bool
    examples: int  # examples run up to and including the first violation (all of them when none)
    seconds_to_detection: float | None
    seconds: float  # the whole search, shrinking included
    case: Case | None = None  # the shrunk counterexample
    caught_by: str = ""  # "relation: formulation tensor" of the first violated comparison
    detail: str = ""
    worst_ratio: float = 0.0  # the faulted formulation's largest error/bound when nothing was caught
    worst_case: Case | None = None  # ... and the case it was seen on
    worst_detail: str = ""

    @property
    def as_expected(self) -> bool:
        return self.caught == self.fault.harmful

    def to_dict(self) -> dict:
        return {
            "fault": self.fault.name,
            "bug_class": self.fault.bug_class,
            "relation": self.fault.relation,
            "formulation": self.fault.formulation,
            "harmful": self.fault.harmful,
            "caught": self.caught,
            "as_expected": self.as_expected,
            "caught_by": self.caught_by,
            "examples": self.examples,
            "seconds_to_detection": self.seconds_to_detection,
            "seconds": self.seconds,
            "case": None if self.case is None else self.case.to_dict(),
            "detail": self.detail,
            "worst_ratio": self.worst_ratio,
            "worst_case": None if self.worst_case is None else self.worst_case.to_dict(),
            "worst_detail": self.worst_detail,
            "issue": self.fault.issue,
        }


def default_examples(fault: Fault) -> int:
    """The ci profile's examples; in a compiled execution lane, at most the lanes' budget."""
    return ci_max_examples() if fault.lane == "eager" else min(ci_max_examples(), COMPILE_EXAMPLES)


def search(
    fault: Fault,
    *,
    max_examples: int | None = None,
    shrink: bool = True,
    device: str = "cpu",
    explicit: bool = True,
) -> Outcome:
    """Run the relation's property search with ``fault`` injected, in the fault's execution lane;
    stop at the first violation.

    ``explicit`` runs the relation's explicit examples first, as its property does (the largest
    K in half precision, linconv.relations.common.half_precision_examples); False leaves the
    drawn examples alone, to show that the search itself reaches a corner."""
    with execution_lane(fault.lane):
        run = in_lane(fault.faulted_relation(), fault.lane).run
        return _search(fault, run, max_examples, shrink, device, explicit)


def _search(fault: Fault, run, max_examples: int | None, shrink: bool, device: str, explicit: bool) -> Outcome:
    relation = get(fault.relation)
    strategy = relation.strategy()
    seen: dict = {"examples": 0, "first": None, "worst": 0.0, "worst_case": None, "worst_detail": ""}
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target] + ([Phase.shrink] if shrink else [])
    started = time.perf_counter()

    @settings(
        profile("ci"),
        max_examples=max_examples or default_examples(fault),
        phases=phases,
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=strategy)
    def probe(case: Case) -> None:
        case = on_device(case, device, fault.relation)  # as the properties do
        try:
            result = run(case)
        except Exception as exc:  # a fault that raises is caught as surely as a wrong value
            # ... but a known compile error recognised by its error is the compiler's, not the
            # fault's: the case is rejected (not counted), as the properties reject it (properties/support.py)
            reject_known_error(exc, fault.relation)
            _first(seen, started)
            raise _Detected(None, case, exc) from exc
        if result.violations:
            _first(seen, started)
            raise _Detected(result, case)
        if seen["first"] is None:
            seen["examples"] += 1
        steer(result, events=False)
        worst = _worst_of(result, fault.formulation)
        if worst > seen["worst"] or seen["worst_case"] is None:
            seen.update(worst=worst, worst_case=case, worst_detail=_describe_worst(result, worst))

    if explicit:
        for case in relation.examples:  # as properties/support.py adds them
            probe = example(case=case)(probe)
    try:
        probe()
    except _Detected as found:
        return Outcome(
            fault,
            True,
            seen["examples"],
            seen["first"],
            time.perf_counter() - started,
            found.case,
            _caught_by(fault, found),
            _detail(found),
        )
    return Outcome(
        fault,
        False,
        seen["examples"],
        None,
        time.perf_counter() - started,
        worst_ratio=seen["worst"],
        worst_case=seen["worst_case"],
        worst_detail=seen["worst_detail"],
    )


def _worst_of(result: RelationResult, formulation: str) -> float:
    """Largest error/bound of the faulted formulation's comparisons (all of them where the
    relation names its comparisons otherwise, as init does)."""
    mine = [c.ratio for c in result.comparisons if c.formulation == formulation and not c.exact and not c.problem]
    return max(mine, default=result.worst_ratio)


def _describe_worst(result: RelationResult, ratio: float) -> str:
    return next((c.describe() for c in result.comparisons if c.ratio == ratio), "")


def _first(seen: dict, started: float) -> None:
    if seen["first"] is None:
        seen["examples"] += 1
        seen["first"] = time.perf_counter() - started


def _caught_by(fault: Fault, found: _Detected) -> str:
    if found.result is None:
        return f"{fault.relation}: raised {type(found.error).__name__}"
    first = found.result.violations[0]
    return f"{fault.relation}: {first.formulation} {first.tensor}"


def _detail(found: _Detected) -> str:
    if found.result is None:
        return f"{type(found.error).__name__}: {found.error}"
    return found.result.violations[0].describe()


def markdown_table(outcomes: Iterable[Outcome]) -> str:
    rows = [
        "| fault | bug class | harmful | caught? | by | examples | s to detection | shrunk case |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        verdict = ("yes" if o.caught else "no") + ("" if o.as_expected else " **UNEXPECTED**")
        seconds = "" if o.seconds_to_detection is None else f"{o.seconds_to_detection:.2f}"
        case = "" if o.case is None else f"`{o.case.describe()}`"
        if o.case is None and o.worst_case is not None:
            case = f"worst at `{o.worst_case.describe()}`"
        by = o.caught_by or f"(worst error/bound {o.worst_ratio:.2f})"
        lane = "" if o.fault.lane == "eager" else f" ({o.fault.lane})"
        rows.append(
            f"| {o.fault.name}{lane} | {o.fault.bug_class} | {'yes' if o.fault.harmful else 'no'} | {verdict} | "
            f"{by} | {o.examples} | {seconds} | {case} |"
        )
    return "\n".join(rows)


def outcomes_json(outcomes: Iterable[Outcome]) -> str:
    return json.dumps([o.to_dict() for o in outcomes], indent=2, sort_keys=True)
