"""Relations: which formulations must compute the same map, one record each, in one registry.

- :mod:`~linconv.relations.record`: the :class:`Relation` record (statement, strategy,
  formulations, reference, compared tensors, reduction lengths, negative control, how it runs);
- :mod:`~linconv.relations.registry`: :func:`register`, :func:`get`, :func:`relations`;
- one module per relation family, each defining its formulations and registering its records:
  :mod:`~linconv.relations.pointwise`, :mod:`~linconv.relations.full_kernel`,
  :mod:`~linconv.relations.general_conv`, :mod:`~linconv.relations.composition`,
  :mod:`~linconv.relations.init`, :mod:`~linconv.relations.classifier_head`,
  :mod:`~linconv.relations.converted`, :mod:`~linconv.relations.conv_nd` (their Conv1d/Conv3d
  counterparts), :mod:`~linconv.relations.transposed`, :mod:`~linconv.relations.patch_embedding`;
- :mod:`~linconv.relations.common`: building blocks they share (the conv, flatten + Linear,
  reduction lengths) and :mod:`~linconv.relations.conditions` (where a relation applies).

Nothing outside a relation's own module names it by string: consumers iterate the registry.
Imports :mod:`linconv.measure` and below, the public :mod:`linconv.converters`, and the
top-level ``strategies`` package (for each relation's strategy).
"""

from __future__ import annotations

import importlib
import pkgutil

from linconv.core.cases import Case
from linconv.measure import Observer, RelationResult
from linconv.relations.execution import in_lane, lane_unavailable, run_in_lane
from linconv.relations.record import LINEAR_MAP, FormulationSpec, Kind, NegativeControl, Relation
from linconv.relations.registry import get, names, register, registered, relations, unregister

# Every module of this package but these is a relation family; importing one registers its
# relations, so a new family is one new module and nothing else.
INFRASTRUCTURE = ("common", "conditions", "execution", "record", "registry")
FAMILIES = tuple(m.name for m in pkgutil.iter_modules(__path__) if m.name not in INFRASTRUCTURE)
for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")

__all__ = [
    "FAMILIES",
    "LINEAR_MAP",
    "FormulationSpec",
    "Kind",
    "NegativeControl",
    "Relation",
    "check_relation",
    "get",
    "in_lane",
    "lane_unavailable",
    "names",
    "register",
    "registered",
    "relations",
    "run_relation",
    "unregister",
]


def _relation(relation: Relation | str) -> Relation:
    return relation if isinstance(relation, Relation) else get(relation)


def run_relation(
    relation: Relation | str,
    case: Case,
    *,
    observer: Observer | None = None,
    keep_outputs: bool = False,
    execution: str = "eager",
) -> RelationResult:
    """Measure ``case`` under ``relation`` (a record or a registered name); never raises for a
    numerical disagreement. ``execution``: an execution lane (linconv.lanes.execution), e.g.
    ``"compiled"``; the lane is entered for the call."""
    if execution != "eager":
        return run_in_lane(_relation(relation), case, execution)
    return _relation(relation).run(case, observer=observer, keep_outputs=keep_outputs)


def check_relation(
    relation: Relation | str, case: Case, *, observer: Observer | None = None, execution: str = "eager"
) -> RelationResult:
    """Like :func:`run_relation`, but raise when the relation does not hold."""
    __tracebackhide__ = True
    if execution != "eager":
        return run_in_lane(_relation(relation), case, execution, check=True)
    return _relation(relation).check(case, observer=observer)
