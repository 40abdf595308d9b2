"""Run a relation on a case: each formulation forward and backward against a float64 reference.

``run_relation`` measures (it never raises for a numerical disagreement); ``check_relation``
raises :class:`RelationViolation` with a message that reads as a bug report: relation,
formulation, tensor, worst index, both values, error, bound, the case, flags and torch version.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from linconv import tolerance
from linconv.cases import Case, CaseTensors
from linconv.formulations import Params
from linconv.partial_sums import storage_partial_sums
from linconv.relations import Relation, get_relation

__all__ = [
    "SPECIAL_RELATIONS",
    "Comparison",
    "RelationResult",
    "RelationViolation",
    "Workload",
    "check_relation",
    "compare",
    "flags_in_force",
    "float64_cpu",
    "input_rounding",
    "run_relation",
    "unravel",
]

_PARAM_NAMES = ("weight", "bias", "head_weight", "head_bias")


@dataclass(frozen=True)
class Workload:
    """One formulation on one case. Calling it runs what the check compares (forward and
    backward; ``(output, grads)`` for the relations of linconv.relations). ``forward`` (no
    autograd) and ``backward`` (records one forward, returns a callable that runs only its
    backward) re-run the same tensors so an observer can time each half; ``backward`` is None
    where no gradient is compared."""

    run: Callable[[], Any]
    forward: Callable[[], torch.Tensor]
    backward: Callable[[], Callable[[], object] | None] | None = None

    def __call__(self) -> Any:
        return self.run()


# Called as observer(relation, formulation, case, workload) for each formulation; it must return
# workload() and may time workload.forward / .backward (the timing recorder, linconv.timing).
Observer = Callable[[str, str, Case, Workload], Any]


@dataclass(frozen=True)
class Comparison:
    """One computed tensor against the reference: the worst element by error / bound."""

    formulation: str
    tensor: str
    exact: bool
    ratio: float
    index: tuple[int, ...] = ()
    value: float = 0.0
    reference: float = 0.0
    error: float = 0.0
    bound: float = 0.0
    problem: str = ""  # a shape mismatch or missing gradient, stated in words
    c_needed: float = math.nan  # smallest error-model constant C that covers this tensor (calibration)

    @property
    def ok(self) -> bool:
        return not self.problem and self.ratio <= 1.0

    def describe(self) -> str:
        if self.problem:
            return f"{self.formulation} {self.tensor}: {self.problem}"
        lane = "exact lane (bit-for-bit)" if self.exact else "error model"
        return (
            f"{self.formulation} {self.tensor} at index {list(self.index)}: got {self.value!r}, "
            f"float64 reference {self.reference!r}, |error| {self.error:.3e} > bound {self.bound:.3e} "
            f"(ratio {self.ratio:.3g}, {lane})"
        )


@dataclass(frozen=True)
class RelationResult:
    relation: str
    case: Case
    comparisons: tuple[Comparison, ...]
    flags: str = ""
    torch_version: str = field(default_factory=lambda: torch.__version__)
    # formulation -> (forward output, its bound), float64 on the CPU; only with keep_outputs=True
    outputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def violations(self) -> tuple[Comparison, ...]:
        return tuple(c for c in self.comparisons if not c.ok)

    @property
    def worst_ratio(self) -> float:
        """Largest error / bound over all non-exact comparisons (0 when there are none)."""
        ratios = [c.ratio for c in self.comparisons if not c.exact and not c.problem]
        return max(ratios, default=0.0)

    @property
    def exact(self) -> bool:
        return all(c.exact for c in self.comparisons)

    def message(self) -> str:
        lines = [f"relation '{self.relation}' violated: {len(self.violations)} comparison(s) out of bound"]
        lines += [f"  - {c.describe()}" for c in self.violations]
        lines += [
            f"case: {self.case.to_json()}",
            f"torch {self.torch_version}; device {self.case.device}; dtype {self.case.dtype}; flags: {self.flags}",
            "reproduce:",
            *("    " + line for line in self.case.reproduction(self.relation).splitlines()),
        ]
        return "\n".join(lines)


class RelationViolation(AssertionError):
    def __init__(self, result: RelationResult) -> None:
        super().__init__(result.message())
        self.result = result


def _params(t: CaseTensors) -> dict[str, torch.Tensor | None]:
    return {name: getattr(t, name) for name in _PARAM_NAMES}


def _leaves(
    x: torch.Tensor, params: dict[str, torch.Tensor | None], grads: tuple[str, ...], convert: Callable
) -> tuple[torch.Tensor, Params]:
    def leaf(name: str, t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None:
            return None
        return convert(t).detach().requires_grad_(name in grads)

    return leaf("x", x), Params(**{n: leaf(n, t) for n, t in params.items()})  # type: ignore[arg-type]


def _forward_backward(
    fn: Callable, x: torch.Tensor, params: dict, grads: tuple[str, ...], upstream: torch.Tensor, g, convert: Callable
) -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
    xl, p = _leaves(x, params, grads, convert)
    y = fn(xl, p, g)
    if grads and y.shape == upstream.shape:
        (y * convert(upstream)).sum().backward()
    leaves = {"x": xl, **{n: getattr(p, n) for n in _PARAM_NAMES}}
    return y.detach(), {n: None if leaves[n] is None else leaves[n].grad for n in grads}


def _workload(
    fn: Callable, x: torch.Tensor, params: dict, grads: tuple[str, ...], upstream: torch.Tensor, g
) -> Workload:
    def run() -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
        return _forward_backward(fn, x, params, grads, upstream, g, lambda v: v)

    def forward() -> torch.Tensor:
        with torch.no_grad():
            return fn(x, Params(**params), g)

    def backward() -> Callable[[], object] | None:
        xl, p = _leaves(x, params, grads, lambda v: v)
        y = fn(xl, p, g)
        if y.shape != upstream.shape:
            return None
        leaves = [t for t in (xl, *(getattr(p, n) for n in _PARAM_NAMES)) if t is not None and t.requires_grad]
        return lambda: torch.autograd.grad(y, leaves, upstream, retain_graph=True)

    return Workload(run, forward, backward if grads else None)


def float64_cpu(t: torch.Tensor) -> torch.Tensor:
    """A float64, CPU, contiguous copy: the reference runs on the canonical layout, so that a
    layout bug in torch (a channels_last or unusual-stride path) cannot hide in the reference too
    (docs/robustness.md: torch 2.13's float64 grouped conv with a non-canonical batch stride)."""
    return t.detach().to("cpu", torch.float64).contiguous()


def _absfloat64_cpu(t: torch.Tensor) -> torch.Tensor:
    return float64_cpu(t).abs()


def input_rounding(case: Case, ops: tuple[str, ...]) -> float:
    if case.torch_dtype != torch.float32:
        return 0.0
    from linconv.precision import input_unit_roundoff

    device_type = torch.device(case.device).type
    return max(input_unit_roundoff(device_type, op) for op in ops)


def underflow_scale(x: torch.Tensor, upstream: torch.Tensor, params: dict[str, torch.Tensor | None]) -> float:
    """S of linconv.tolerance: the largest factor an underflowed intermediate can be multiplied by."""
    tensors = [x, upstream, *(p for p in params.values() if p is not None)]
    return max([1.0] + [float(t.detach().abs().max()) for t in tensors if t.numel()])


def unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Multi-index of a flat position (torch.unravel_index costs milliseconds per call)."""
    index = []
    for size in reversed(shape):
        flat, rest = divmod(flat, size)
        index.append(rest)
    return tuple(reversed(index))


def compare(
    formulation: str,
    tensor: str,
    computed: torch.Tensor | None,
    reference: torch.Tensor,
    magnitude: torch.Tensor,
    reduction: int,
    precision: tolerance.Precision,
    exact: bool,
    *,
    limit: torch.Tensor | None = None,
) -> Comparison:
    """The worst element of ``computed`` against ``reference`` by error / bound; ``limit``
    replaces the error-model bound where a relation derives its own (classifier head)."""
    if computed is None:
        computed = torch.zeros_like(reference)
    if tuple(computed.shape) != tuple(reference.shape):
        return Comparison(
            formulation,
            tensor,
            exact,
            math.inf,
            problem=f"shape {tuple(computed.shape)} differs from the reference's {tuple(reference.shape)}",
        )
    value = float64_cpu(computed)
    error = (value - reference).abs()
    if exact:
        c_needed = math.nan
        limit = torch.zeros_like(reference)
        ratio = torch.where(error == 0, 0.0, math.inf)
    else:
        c_needed = math.nan
        if limit is None:
            limit = tolerance.bound(reference, magnitude, reduction, precision)
            c_needed = tolerance.required_c(reference, magnitude, error, reduction, precision)
        limit = limit.expand_as(reference)
        ratio = error / limit
    ratio = torch.nan_to_num(ratio, nan=math.inf, posinf=math.inf)
    if ratio.numel() == 0:
        return Comparison(formulation, tensor, exact, 0.0)
    flat = int(torch.argmax(ratio))
    index = unravel(flat, tuple(ratio.shape))
    return Comparison(
        formulation=formulation,
        tensor=tensor,
        exact=exact,
        ratio=float(ratio.flatten()[flat]),
        index=index,
        value=float(value.flatten()[flat]),
        reference=float(reference.flatten()[flat]),
        error=float(error.flatten()[flat]),
        bound=float(limit.flatten()[flat]),
        c_needed=c_needed,
    )


def flags_in_force() -> str:
    from linconv.precision import read_flags

    return read_flags().describe()


def run_relation(
    relation: Relation | str, case: Case, *, observer: Observer | None = None, keep_outputs: bool = False
) -> RelationResult:
    """Measure every formulation of ``relation`` on ``case`` against the float64 reference.

    ``keep_outputs`` stores each formulation's forward output and its bound (float64, CPU) in
    ``RelationResult.outputs``, for comparisons across devices."""
    if isinstance(relation, str) and relation in SPECIAL_RELATIONS:
        return SPECIAL_RELATIONS[relation](case, observer)
    rel = get_relation(relation) if isinstance(relation, str) else relation
    g = case.geometry
    t = case.build()
    params = _params(t)
    grads = tuple(n for n in rel.grads if n == "x" or params.get(n) is not None)
    reductions = rel.reductions(g, case.head_features)

    # The reference and the magnitudes |W| (*) |x| + |b| (and their backward analogues) are the
    # reference formulation in float64 on the CPU, on the values and on their absolute values.
    ref_shape = rel.reference(
        float64_cpu(t.x), Params(**{n: None if v is None else float64_cpu(v) for n, v in params.items()}), g
    ).shape
    upstream = case.upstream(ref_shape)
    ref_out, ref_grads = _forward_backward(rel.reference, t.x, params, grads, upstream, g, float64_cpu)
    mag_out, mag_grads = _forward_backward(rel.reference, t.x, params, grads, upstream, g, _absfloat64_cpu)
    limit = tolerance.exactly_representable_below(case.torch_dtype)
    integer_lane = case.values == "integer"

    def exact_lane(magnitude: torch.Tensor) -> bool:
        return integer_lane and (magnitude.numel() == 0 or float(magnitude.max()) < limit)

    comparisons: list[Comparison] = []
    outputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    scale = underflow_scale(t.x, upstream, params)
    for name, spec in rel.formulations.items():
        precision = tolerance.precision_of(
            case.torch_dtype, input_rounding=input_rounding(case, spec.ops), underflow_scale=scale
        )

        work = _workload(spec.fn, t.x, params, grads, upstream, g)
        out, got_grads = observer(rel.name, name, case, work) if observer else work()
        comparisons.append(
            compare(name, "output", out, ref_out, mag_out, reductions["output"], precision, exact_lane(mag_out))
        )
        if tuple(out.shape) != tuple(ref_out.shape):
            continue
        if keep_outputs:
            bound = (
                torch.zeros_like(ref_out)
                if exact_lane(mag_out)
                else tolerance.bound(ref_out, mag_out, reductions["output"], precision)
            )
            outputs[name] = (float64_cpu(out), bound)
        partials = storage_partial_sums(spec.partial_sums, g, t.x, t.weight) if spec.partial_sums else {}
        for grad_name in grads:
            ref_grad = ref_grads[grad_name]
            mag = mag_grads[grad_name]
            assert ref_grad is not None and mag is not None
            grad_precision = precision
            if grad_name in spec.storage_accumulation or grad_name in partials:
                grad_precision = tolerance.precision_of(
                    case.torch_dtype,
                    input_rounding=precision.u_in,
                    storage_accumulation=grad_name in spec.storage_accumulation,
                    storage_partial_sums=partials.get(grad_name, 0),
                    underflow_scale=scale,
                )
            comparisons.append(
                compare(
                    name,
                    f"grad {grad_name}",
                    got_grads[grad_name],
                    ref_grad,
                    mag,
                    reductions[grad_name],
                    grad_precision,
                    exact_lane(mag),
                )
            )
    return RelationResult(rel.name, case, tuple(comparisons), flags=flags_in_force(), outputs=outputs)


def _run_init(case: Case, observer: Observer | None = None) -> RelationResult:
    from linconv.initialization import run_init

    return run_init(case)  # parameter creation only: nothing to time


def _run_classifier_head(case: Case, observer: Observer | None = None) -> RelationResult:
    from linconv.classifier_head import run_classifier_head

    return run_classifier_head(case, observer=observer)


# Relations whose check is not "formulations of one linear map": exact parameter equality
# (init) and a loss with its own error model (classifier head). Looked up by name.
SPECIAL_RELATIONS: dict[str, Callable[[Case, Observer | None], RelationResult]] = {
    "init": _run_init,
    "classifier_head": _run_classifier_head,
}


def check_relation(relation: Relation | str, case: Case, *, observer: Observer | None = None) -> RelationResult:
    """Like :func:`run_relation`, but raise :class:`RelationViolation` when any comparison fails."""
    __tracebackhide__ = True
    result = run_relation(relation, case, observer=observer)
    if result.violations:
        raise RelationViolation(result)
    return result
