"""Fault injection: a deliberately broken formulation on ONE side of a relation.

A :class:`Fault` is data: which relation and formulation it replaces, the wrapper that turns the
correct formulation into the broken one, the class of PyTorch bug it models, and whether it is
harmful (the suite must report it) or benign (a legitimate change of rounding the suite must
NOT report). The float64 reference is never replaced, so a fault is seen exactly as a backend
bug would be: one formulation drifts from the reference.

Three families of relations take three kinds of formulation:

* the linear-map relations of :data:`linconv.relations.RELATIONS`: ``f(x, params, geometry) -> y``;
* ``init`` (:data:`linconv.initialization.INIT_FORMULATIONS`): ``f(case) -> (weight, bias)``;
* ``classifier_head`` (:data:`linconv.classifier_head.HEAD_FORMULATIONS`):
  ``f(x, params, target, case) -> (loss, logits)``.

A fault's ``wrap`` takes the correct formulation of its kind and returns the broken one. The
catalogue lives in :mod:`linconv.fault_catalogue`; the Hypothesis search over it in
:mod:`linconv.fault_search`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from linconv.cases import Case
from linconv.check import RelationResult, run_relation

__all__ = [
    "SPECIAL_FAMILIES",
    "Fault",
    "all_faults",
    "get_fault",
    "inject",
    "injected",
]

# Relations whose formulations are not f(x, params, geometry): name -> the module-level dict of
# formulations that their run function reads when called without an explicit one.
SPECIAL_FAMILIES = ("init", "classifier_head")


def _special_formulations(relation: str) -> dict[str, Any]:
    if relation == "init":
        from linconv.initialization import INIT_FORMULATIONS

        return INIT_FORMULATIONS
    from linconv.classifier_head import HEAD_FORMULATIONS

    return HEAD_FORMULATIONS


@dataclass(frozen=True)
class Fault:
    """One injected fault (or benign perturbation) on one formulation of one relation."""

    name: str
    bug_class: str
    description: str
    relation: str
    formulation: str
    wrap: Callable[[Callable], Callable]
    harmful: bool = True
    issue: str = ""  # a representative upstream issue, where one is known

    def __post_init__(self) -> None:
        formulations = self._formulations()
        if self.formulation not in formulations:
            raise ValueError(
                f"fault {self.name!r}: formulation must be one of {tuple(formulations)} "
                f"for relation {self.relation!r}, got {self.formulation!r}"
            )

    def _formulations(self) -> dict[str, Any]:
        if self.relation in SPECIAL_FAMILIES:
            return _special_formulations(self.relation)
        from linconv.relations import get_relation

        return {name: spec.fn for name, spec in get_relation(self.relation).formulations.items()}

    def faulty(self) -> Callable:
        """The broken formulation (the correct one wrapped)."""
        return self.wrap(self._formulations()[self.formulation])

    def runner(self) -> Callable[[Case], RelationResult]:
        """``case -> RelationResult`` for the relation with this fault on its one formulation."""
        if self.relation == "init":
            from linconv.initialization import INIT_FORMULATIONS, run_init

            entries = {**INIT_FORMULATIONS, self.formulation: self.faulty()}
            return lambda case: run_init(case, entries)
        if self.relation == "classifier_head":
            from linconv.classifier_head import HEAD_FORMULATIONS, run_classifier_head

            heads = {**HEAD_FORMULATIONS, self.formulation: self.faulty()}
            return lambda case: run_classifier_head(case, heads)
        from linconv.relations import get_relation

        relation = get_relation(self.relation).with_formulation(self.formulation, self.faulty())
        return lambda case: run_relation(relation, case)

    def short(self) -> str:
        return f"{self.name} ({self.relation}/{self.formulation})"


def inject(fault: Fault) -> Callable[[], None]:
    """Install ``fault`` process-wide (what ``pytest --inject-fault`` does): the relation's entry
    in RELATIONS, or the init/head formulation dict, now holds the broken formulation. Returns
    the function that restores the original."""
    if fault.relation in SPECIAL_FAMILIES:
        entries = _special_formulations(fault.relation)
        original = entries[fault.formulation]
        entries[fault.formulation] = fault.faulty()

        def restore_special() -> None:
            entries[fault.formulation] = original

        return restore_special
    from linconv.relations import RELATIONS

    relation = RELATIONS[fault.relation]
    RELATIONS[fault.relation] = relation.with_formulation(fault.formulation, fault.faulty())

    def restore() -> None:
        RELATIONS[fault.relation] = relation

    return restore


@contextmanager
def injected(fault: Fault) -> Iterator[Fault]:
    restore = inject(fault)
    try:
        yield fault
    finally:
        restore()


def all_faults() -> tuple[Fault, ...]:
    from linconv.fault_catalogue import FAULTS

    return FAULTS


def get_fault(name: str) -> Fault:
    faults = {f.name: f for f in all_faults()}
    try:
        return faults[name]
    except KeyError:
        raise ValueError(
            f"fault must be one of the {len(faults)} names that `python -m linconv faults --list` prints, got {name!r}"
        ) from None
