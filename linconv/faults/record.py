"""Fault injection: a deliberately broken formulation on ONE side of a relation.

A :class:`Fault` is data: which relation and formulation it replaces, the wrapper that turns the
correct formulation into the broken one, the class of PyTorch bug it models, and whether it is
harmful (the suite must report it) or benign (a legitimate change of rounding the suite must
NOT report). The float64 reference is never replaced, so a fault is seen exactly as a backend
bug would be: one formulation drifts from the reference. A fault never changes the registry:
:meth:`Fault.faulted_relation` is the relation a run under the fault checks.

Faults are registered next to their wrappers with the :func:`fault` decorator (the catalogue,
:mod:`linconv.faults.catalogue`, one module per bug class).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from linconv.core.cases import Case
from linconv.measure import RelationResult
from linconv.relations import Relation, get
from linconv.relations.execution import run_in_lane

__all__ = [
    "BUG_CLASSES",
    "Fault",
    "all_faults",
    "fault",
    "get_fault",
]

# The classes of real PyTorch bugs the catalogue models, and the benign changes it must not flag.
BUG_CLASSES = {
    "layout": "layout / memory-format mix-up",
    "strides": "non-contiguous tensor read with the wrong strides",
    "groups": "grouped conv with few channels per group",
    "edges": "stride / padding edge rows",
    "bias": "lost or doubled bias",
    "precision": "accumulation in too low a precision",
    "backward": "wrong gradient for one argument",
    "tiles": "stale tiles for large batches",
    "shapes": "silent truncation instead of a shape error",
    "empty": "wrong on an empty dimension",
    "fan_in": "wrong fan-in in init",
    "lowering": "a compiler's wrong lowering or folding of one pattern",
    "one_term": "one dropped term (sharpness probe)",
    "benign_order": "benign: reordered reduction",
    "benign_rounding": "benign: different rounding",
}

_FAULTS: dict[str, Fault] = {}


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
    # the execution lane (linconv.lanes.execution) the fault shows in and its search runs in: a
    # compiler's fault wraps the formulation so that it misbehaves only while being compiled
    lane: str = "eager"

    def __post_init__(self) -> None:
        formulations = get(self.relation).formulations
        if self.formulation not in formulations:
            raise ValueError(
                f"fault {self.name!r}: formulation must be one of {tuple(formulations)} "
                f"for relation {self.relation!r}, got {self.formulation!r}"
            )
        if self.bug_class not in BUG_CLASSES.values():
            raise ValueError(f"fault {self.name!r}: bug_class must be one of {list(BUG_CLASSES.values())}")
        from linconv.lanes.execution import get_lane

        get_lane(self.lane)  # ValueError naming the lanes

    def faulty(self) -> Callable:
        """The broken formulation (the correct one wrapped)."""
        return self.wrap(get(self.relation).formulations[self.formulation].fn)

    def faulted_relation(self) -> Relation:
        """The relation with this fault on its one formulation (the registry keeps the correct one)."""
        return get(self.relation).with_formulation(self.formulation, self.faulty())

    def runner(self) -> Callable[[Case], RelationResult]:
        """``case -> RelationResult`` for the relation with this fault, in the fault's execution lane
        (entered for each call; the fault search enters it once for the whole search instead)."""
        relation = self.faulted_relation()
        if self.lane == "eager":
            return relation.run
        return lambda case: run_in_lane(relation, case, self.lane)

    def short(self) -> str:
        where = "" if self.lane == "eager" else f", {self.lane}"
        return f"{self.name} ({self.relation}/{self.formulation}{where})"


def fault(
    *,
    relation: str,
    formulation: str,
    bug_class: str,
    description: str,
    name: str = "",
    harmful: bool = True,
    issue: str = "",
    lane: str = "eager",
) -> Callable[[Callable], Callable]:
    """Register the decorated wrapper as a fault (named after it unless ``name`` is given);
    stack several to register one wrapper on several relations."""

    def register(wrap: Callable) -> Callable:
        entry = Fault(name or wrap.__name__, BUG_CLASSES[bug_class], description, relation, formulation, wrap,
                      harmful, issue, lane)  # fmt: skip
        if entry.name in _FAULTS:
            raise ValueError(f"fault {entry.name!r} is registered twice")
        _FAULTS[entry.name] = entry
        return wrap

    return register


def all_faults() -> tuple[Fault, ...]:
    import linconv.faults.catalogue  # noqa: F401  (registers the catalogue)

    return tuple(_FAULTS.values())


def get_fault(name: str) -> Fault:
    faults = {f.name: f for f in all_faults()}
    try:
        return faults[name]
    except KeyError:
        raise ValueError(
            f"fault must be one of the {len(faults)} names that `python -m linconv faults --list` prints, got {name!r}"
        ) from None
