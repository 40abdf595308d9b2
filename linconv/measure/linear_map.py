"""Measure a relation between formulations of one linear map: each formulation forward and
backward against the float64 reference, through the error model.

The reference and the magnitudes ``|W| (*) |x| + |b|`` (and their backward analogues) are the
relation's reference formulation in float64 on the CPU, on the values and on their absolute
values. Every formulation's output and every compared gradient goes through
:func:`linconv.measure.compare.compare`; the exact lane (integer values whose sums are exact)
demands equality.

The tensors are the case's own (built from its seed), or supplied: a real layer's weights and the
activation it received (``tensors=``, linconv.models). The case then describes them (geometry,
dtype, layout, device) and the same reference, error model and compare apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

from linconv.core.cases import Case, CaseTensors, Params
from linconv.core.geometry import ConvGeometry
from linconv.errormodel import bound, exactly_representable_below, formulation_precision, underflow_scale
from linconv.errormodel.partial_sums import storage_partial_sums
from linconv.measure.compare import Comparison, compare, float64_cpu
from linconv.measure.result import RelationResult, flags_in_force
from linconv.measure.workload import Observer, Workload

__all__ = ["LinearMapRelation", "measure_linear_map"]

Formulation = Callable[[torch.Tensor, Params, ConvGeometry], torch.Tensor]


class _Spec(Protocol):
    fn: Formulation
    ops: tuple[str, ...]
    storage_accumulation: tuple[str, ...]
    partial_sums: str
    rounded: Callable | None


class LinearMapRelation(Protocol):
    """What the measurement reads of a relation (linconv.relations.Relation has it)."""

    name: str
    formulations: dict[str, Any]
    reference: Formulation
    grads: tuple[str, ...]

    def reduction_lengths(self, case: Case) -> dict[str, int]: ...


def _absfloat64_cpu(t: torch.Tensor) -> torch.Tensor:
    return float64_cpu(t).abs()


def _leaves(x: torch.Tensor, params: Params, grads: tuple[str, ...], convert: Callable) -> tuple[torch.Tensor, Params]:
    def leaf(name: str, t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else convert(t).detach().requires_grad_(name in grads)

    return leaf("x", x), Params(**{n: leaf(n, t) for n, t in params.as_dict().items()})


def _forward(fn: Formulation, x, params: Params, grads, g, convert) -> tuple[torch.Tensor, torch.Tensor, Params]:
    xl, p = _leaves(x, params, grads, convert)
    return fn(xl, p, g), xl, p


def _backward(y, xl, p: Params, grads, upstream) -> dict[str, torch.Tensor | None]:
    if grads and y.shape == upstream.shape and y.requires_grad:
        # the upstream gradient reaches the backward kernels as it is stored (Case.param_layout)
        y.backward(upstream.to(y.dtype))
    leaves = {"x": xl, **p.as_dict()}
    return {n: None if leaves[n] is None else leaves[n].grad for n in grads}


def _workload(fn: Formulation, x: torch.Tensor, params: Params, grads: tuple[str, ...], upstream, g) -> Workload:
    def run() -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
        y, xl, p = _forward(fn, x, params, grads, g, lambda v: v)
        return y.detach(), _backward(y, xl, p, grads, upstream)

    def forward() -> torch.Tensor:
        with torch.no_grad():
            return fn(x, params, g)

    def backward() -> Callable[[], object] | None:
        y, xl, p = _forward(fn, x, params, grads, g, lambda v: v)
        if y.shape != upstream.shape:
            return None
        leaves = [t for t in (xl, *p.as_dict().values()) if t is not None and t.requires_grad]
        return lambda: torch.autograd.grad(y, leaves, upstream, retain_graph=True)

    return Workload(run, forward, backward if grads else None)


def _references(reference: Formulation, case: Case, t: CaseTensors, grads: tuple[str, ...]) -> tuple:
    """The float64 reference and magnitudes ``|W| (*) |x| + |b|`` (forward, and backward where
    gradients are compared), on the CPU, from contiguous copies."""
    g, params = case.geometry, t.params
    ref_y, xl, p = _forward(reference, t.x, params, grads, g, float64_cpu)
    mag_y, mag_xl, mag_p = _forward(reference, t.x, params, grads, g, _absfloat64_cpu)
    upstream = None
    ref_grads: dict[str, torch.Tensor | None] = {}
    mag_grads: dict[str, torch.Tensor | None] = {}
    if grads:
        upstream = case.upstream(ref_y.shape)
        ref_grads = _backward(ref_y, xl, p, grads, float64_cpu(upstream))
        mag_grads = _backward(mag_y, mag_xl, mag_p, grads, _absfloat64_cpu(upstream))
    return ref_y.detach(), mag_y.detach(), upstream, ref_grads, mag_grads


def _rounded(specs, case: Case, t: CaseTensors) -> dict[int, torch.Tensor | float | None]:
    """R of the error model for each formulation's output, by ``id(spec.rounded)`` (formulations
    that round the same things share it): float64, on the CPU, from contiguous copies."""
    found: dict[int, torch.Tensor | float | None] = {}
    x = p = None
    for spec in specs:
        fn = getattr(spec, "rounded", None)
        if fn is None or id(fn) in found:
            continue
        if x is None:
            x = float64_cpu(t.x)
            p = Params(**{n: None if v is None else float64_cpu(v) for n, v in t.params.as_dict().items()})
        with torch.no_grad():
            found[id(fn)] = fn(x, p, case.geometry)
    return found


def _supplied(case: Case, tensors: CaseTensors) -> CaseTensors:
    """``tensors``, once their shapes, dtype and device are found to be the ones ``case`` describes."""
    g, head = case.geometry, case.head_features
    expected = {
        "x": g.input_shape,
        "weight": g.weight_shape,
        "bias": (g.out_channels,) if g.bias else None,
        "head_weight": (head, g.out_features) if head else None,
        "head_bias": (head,) if head else None,
    }
    for name, shape in expected.items():
        t = getattr(tensors, name)
        if name == "head_bias" and t is None:
            continue  # a Linear without bias
        got = None if t is None else tuple(t.shape)
        if got != shape:
            raise ValueError(f"supplied tensor {name} must have shape {shape} for case {case.describe()}, got {got}")
        if t is not None and (t.dtype != case.torch_dtype or t.device != torch.device(case.device)):
            raise ValueError(
                f"supplied tensor {name} must be {case.dtype} on {case.device}, got {t.dtype} on {t.device}"
            )
    return tensors


def measure_linear_map(
    relation: LinearMapRelation,
    case: Case,
    *,
    observer: Observer | None = None,
    keep_outputs: bool = False,
    tensors: CaseTensors | None = None,
    backward: bool = True,
    references: dict | None = None,
) -> RelationResult:
    """Measure every formulation of ``relation`` on ``case`` against the float64 reference.

    ``keep_outputs`` stores each formulation's forward output and its bound (float64, CPU) in
    ``RelationResult.outputs``, for comparisons across devices. ``tensors`` replaces the tensors
    the case builds from its seed (a real layer's; their shapes must be the case's);
    ``backward=False`` compares the forward output only. ``references``, a dict shared by the
    relations measured on the same ``tensors``, keeps each reference formulation's float64 results
    so that relations with the same reference compute them once (a real layer's are costly)."""
    g = case.geometry
    t = case.build() if tensors is None else _supplied(case, tensors)
    params = t.params
    present = params.as_dict()
    grads = tuple(n for n in relation.grads if n == "x" or present.get(n) is not None) if backward else ()
    reductions = relation.reduction_lengths(case)

    key = (relation.reference, grads)
    if references is not None and key in references:
        ref_out, mag_out, upstream, ref_grads, mag_grads = references[key]
    else:
        ref_out, mag_out, upstream, ref_grads, mag_grads = _references(relation.reference, case, t, grads)
        if references is not None:
            references[key] = (ref_out, mag_out, upstream, ref_grads, mag_grads)

    limit = exactly_representable_below(case.torch_dtype)
    integer_lane = case.values == "integer"

    def exact_lane(magnitude: torch.Tensor) -> bool:
        return integer_lane and (magnitude.numel() == 0 or float(magnitude.max()) < limit)

    comparisons: list[Comparison] = []
    outputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    scale = underflow_scale([t.x, upstream, *present.values()])
    rounded = _rounded(relation.formulations.values(), case, t)
    for name, spec in relation.formulations.items():
        partials = storage_partial_sums(spec.partial_sums, g, t.x, t.weight) if spec.partial_sums else {}
        # a forward that adds partial sums in the storage dtype (col2im of a slow transposed conv)
        precision = formulation_precision(
            case,
            spec.ops,
            scale=scale,
            storage_partial_sums=partials.get("output", 0),
            reduction_length=reductions["output"],
        )
        r = None if getattr(spec, "rounded", None) is None else rounded[id(spec.rounded)]
        work = _workload(spec.fn, t.x, params, grads, upstream, g)
        out, got_grads = observer(relation.name, name, case, work) if observer else work()
        exact = exact_lane(mag_out)
        comparisons.append(
            compare(
                name,
                "output",
                out,
                ref_out,
                magnitude=mag_out,
                reduction=reductions["output"],
                precision=precision,
                exact=exact,
                rounded=r,
            )
        )
        if tuple(out.shape) != tuple(ref_out.shape):
            continue
        if keep_outputs:
            limit_out = (
                torch.zeros_like(ref_out)
                if exact
                else bound(ref_out, mag_out, reductions["output"], precision, rounded=r)
            )
            outputs[name] = (float64_cpu(out), limit_out)
        for grad_name in grads:
            grad_precision = formulation_precision(
                case,
                spec.ops,
                scale=scale,
                storage_accumulation=grad_name in spec.storage_accumulation,
                storage_partial_sums=partials.get(grad_name, 0),
                reduction_length=reductions[grad_name],
            )
            magnitude = mag_grads[grad_name]
            comparisons.append(
                compare(
                    name,
                    f"grad {grad_name}",
                    got_grads[grad_name],
                    ref_grads[grad_name],
                    magnitude=magnitude,
                    reduction=reductions[grad_name],
                    precision=grad_precision,
                    exact=exact_lane(magnitude),
                )
            )
    return RelationResult(relation.name, case, tuple(comparisons), flags=flags_in_force(), outputs=outputs)
