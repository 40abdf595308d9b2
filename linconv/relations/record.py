"""The Relation record: everything about one relation, in one place (PyTorch's OpInfo is the model).

A relation names formulations that must agree with a float64 reference (or, for a negative
control, must NOT), the strategy its property draws cases from, the tensors it compares and the
length of each tensor's sums, and how it runs (:class:`Kind`). Every consumer reads the record:
the properties, the cross-device property, calibration, the fault search, the run report, the
corpus and the command line. A fault or an experiment swaps one formulation
(:meth:`Relation.with_formulation`); the reference is never replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from linconv.core.cases import DTYPES, Case, CaseTensors
from linconv.core.geometry import ConvGeometry
from linconv.measure import Observer, RelationResult, RelationViolation, measure_linear_map

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = ["LINEAR_MAP", "FormulationSpec", "Kind", "NegativeControl", "Relation"]


@dataclass(frozen=True)
class FormulationSpec:
    """One way to compute the relation's map, and what its arithmetic means for the error model."""

    fn: Callable[..., Any]
    ops: tuple[str, ...] = ()  # "conv" and/or "matmul": which kernels may round fp32 inputs (TF32)
    # gradients (by tensor name) whose sums run in the storage dtype, not in float32: the
    # backward of a gather/index_put is a scatter-add into a tensor of the parameter's dtype
    storage_accumulation: tuple[str, ...] = ()
    # a linconv.errormodel.partial_sums rule ("fold", "slow_conv"): backward kernels that add
    # partial sums in the storage dtype for float16/bfloat16 on the CPU
    partial_sums: str = ""
    # R of the error model: ``rounded(x, params, geometry)`` in float64, the magnitude of what its
    # forward rounds to the storage dtype before the result (linconv.errormodel.intermediates:
    # a product before the bias add, a stored hidden layer, a weight formed and rounded once);
    # None charges every intermediate rounding against M, the blunt model
    rounded: Callable[..., Any] | None = None
    # elements of the largest tensor it builds beyond the case's own (a dense matrix, im2col
    # columns) for a geometry: the strategies keep drawn cases within the size budget, but a real
    # layer (linconv.models) can be far larger, and there a formulation over budget is skipped
    workspace: Callable[[ConvGeometry], int] | None = None
    # it builds its weight from the source's parameters on every call (a dense matrix, a fused
    # weight, a converter): its time includes that conversion, so the model check reports it
    # but does not rank it against formulations that only apply their weight
    converts_per_call: bool = False
    # it breaks dynamo's graph on purpose (a converter constructs nn.Parameters, which dynamo does
    # not trace: a user converts eagerly, then compiles the result): a compiled execution lane
    # compiles it without fullgraph, and counts the breaks (linconv.relations.execution)
    graph_breaks: bool = False


@dataclass(frozen=True)
class NegativeControl:
    """The relation must NOT hold: its formulations compute a different map than the reference.

    ``effect(case)`` is how far, relatively and in float64, the two maps differ on the case; an
    example below ``min_effect`` cannot tell them apart and is assumed away, not counted.
    The control fires when a comparison of a ``decisive`` tensor is out of bound."""

    effect: Callable[[Case], float]
    min_effect: float
    decisive: tuple[str, ...] = ("output",)

    def informative(self, case: Case) -> bool:
        return self.effect(case) > self.min_effect

    def fired(self, result: RelationResult) -> bool:
        return any(c.tensor in self.decisive for c in result.violations)


class Kind(Protocol):
    """How a relation runs: measures a case and returns every comparison."""

    name: str
    timed: bool  # whether its formulations are timed in the property run
    # compiled execution lanes (linconv.relations.execution): why its formulations cannot be
    # compiled ("" when they can), whether they break the graph on purpose, and whether the kind
    # can measure the forward alone (an inference lane drops the gradients)
    compile_unavailable: str
    graph_breaks: bool
    forward_only: bool

    def run(
        self, relation: Relation, case: Case, *, observer: Observer | None, keep_outputs: bool
    ) -> RelationResult: ...


@dataclass(frozen=True)
class _LinearMap:
    """Formulations ``f(x, params, geometry) -> y`` of one linear map, forward and backward."""

    name: str = "linear map"
    timed: bool = True
    compile_unavailable: str = ""
    graph_breaks: bool = False
    forward_only: bool = True  # with grads=() only the forward is compared

    def run(self, relation: Relation, case: Case, *, observer: Observer | None, keep_outputs: bool) -> RelationResult:
        return measure_linear_map(relation, case, observer=observer, keep_outputs=keep_outputs)


LINEAR_MAP: Kind = _LinearMap()


def _applies_everywhere(case: Case) -> str:
    return ""


@dataclass(frozen=True)
class Relation:
    """One relation. ``reductions(geometry, head_features)`` gives the terms per sum of each
    compared tensor (``output`` and every name in ``grads``); ``applies_to(case)`` says why a
    case is outside the relation ("" when it is inside), so that a stored case that cannot apply
    is refused when it is read, not when it fails with a shape error."""

    name: str
    statement: str
    strategy: Callable[[], SearchStrategy[Case]]
    formulations: Mapping[str, FormulationSpec]
    reference: Callable[..., Any] | None = None
    grads: tuple[str, ...] = ()
    reductions: Callable[[ConvGeometry, int], dict[str, int]] | None = None
    kind: Kind = LINEAR_MAP
    negative_control: NegativeControl | None = None
    calibrated: bool = False  # its comparisons feed the calibration of C (docs/calibration.md)
    cross_device: bool = False  # the cross-device property compares its formulations CPU vs accelerator
    property_module: str = ""  # the module holding its property (empty: properties/test_registered.py)
    examples: tuple[Case, ...] = ()  # explicit examples its property always runs
    # the fraction of the profile's max_examples its property draws (the run's time budget:
    # docs/measurements.md); calibration and the fault search use their own budgets
    example_share: float = 1.0
    # the dtypes its strategy draws: its property runs one test per dtype (of those the run
    # selects), each with its share of the examples (linconv.plugins.options)
    dtypes: tuple[str, ...] = tuple(DTYPES)
    applies_to: Callable[[Case], str] = field(default=_applies_everywhere)
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"relation name must be an identifier, got {self.name!r}")
        if not self.formulations:
            raise ValueError(f"relation {self.name!r}: formulations must name at least one formulation")
        if not 0 < self.example_share <= 1:
            raise ValueError(f"relation {self.name!r}: example_share must be in (0, 1], got {self.example_share!r}")
        if not self.dtypes or not set(self.dtypes) <= set(DTYPES):
            raise ValueError(
                f"relation {self.name!r}: dtypes must be a non-empty subset of {DTYPES}, got {self.dtypes!r}"
            )

    @property
    def timed(self) -> bool:
        return self.kind.timed and self.negative_control is None

    def reduction_lengths(self, case: Case) -> dict[str, int]:
        if self.reductions is None:
            raise ValueError(f"relation {self.name!r} has no reduction lengths")
        return self.reductions(case.geometry, case.head_features)

    def run(self, case: Case, *, observer: Observer | None = None, keep_outputs: bool = False) -> RelationResult:
        """Measure ``case`` (never raises for a numerical disagreement)."""
        why = self.applies_to(case)
        if why:
            raise ValueError(f"relation {self.name!r} does not apply to case {case.to_json()}: {why}")
        return self.kind.run(self, case, observer=observer, keep_outputs=keep_outputs)

    @property
    def measures_supplied_tensors(self) -> bool:
        """Whether :meth:`run_on` can measure given tensors: a linear map's formulations can."""
        return self.kind is LINEAR_MAP

    def run_on(
        self,
        case: Case,
        tensors: CaseTensors,
        *,
        observer: Observer | None = None,
        backward: bool = True,
        references: dict | None = None,
    ) -> RelationResult:
        """Measure ``tensors`` (a real layer's weights and the activation it received, described
        by ``case``) instead of the tensors the case builds from its seed: the same reference, error
        model and compare. ``backward=False`` compares the forward output only; ``references`` (one
        dict per set of tensors) shares float64 references between relations."""
        if not self.measures_supplied_tensors:
            raise ValueError(f"relation {self.name!r} ({self.kind.name}) cannot measure supplied tensors")
        why = self.applies_to(case)
        if why:
            raise ValueError(f"relation {self.name!r} does not apply to case {case.describe()}: {why}")
        return measure_linear_map(
            self, case, observer=observer, tensors=tensors, backward=backward, references=references
        )

    def holds(self, result: RelationResult) -> bool:
        """The verdict: every comparison within bound, or for a negative control, the control fired."""
        if self.negative_control is not None:
            return self.negative_control.fired(result)
        return not result.violations

    def check(self, case: Case, *, observer: Observer | None = None) -> RelationResult:
        """Like :meth:`run`, but raise when the relation does not hold (RelationViolation, or an
        AssertionError for a negative control that did not fire)."""
        __tracebackhide__ = True
        result = self.run(case, observer=observer)
        if self.holds(result):
            return result
        if self.negative_control is None:
            raise RelationViolation(result)
        raise AssertionError(self.control_silent_message(result))

    def control_silent_message(self, result: RelationResult) -> str:
        decisive = ", ".join(self.negative_control.decisive) if self.negative_control else ""
        return (
            f"negative control '{self.name}' did not fire: every {decisive} comparison agreed with the reference "
            f"within bound (worst ratio {result.worst_ratio:.3g}); case {result.case.to_json()}"
        )

    def with_formulation(self, name: str, fn: Callable[..., Any]) -> Relation:
        """This relation with formulation ``name`` replaced (fault injection, experiments)."""
        if name not in self.formulations:
            raise ValueError(f"formulation must be one of {tuple(self.formulations)}, got {name!r}")
        entries = dict(self.formulations)
        entries[name] = replace(entries[name], fn=fn)
        return replace(self, formulations=entries)
