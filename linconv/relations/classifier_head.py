"""Classifier head: a conv head giving ``[N, K, 1, 1]`` with CrossEntropyLoss on target
``[N, 1, 1]`` equals a Linear head ``[N, K]`` with CrossEntropyLoss on target ``[N]`` — the loss,
its gradient w.r.t. the logits, and the gradients of input, weight and bias. CrossEntropyLoss
already holds log-softmax, so a softmax before it changes the loss (negative control).

The bounds: the logits get the linear map's error model (linconv.errormodel, through
:func:`~linconv.errormodel.formulation_precision` like every relation), the loss and its logit
gradient the cross-entropy terms of :mod:`linconv.errormodel.loss`; the gradients of x, W, b get
the backward bound of the linear map plus the logit-gradient error pushed through ``|W|`` (a
float64 run on absolute values).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from linconv.converters import block_diagonal
from linconv.core.cases import Case, Params
from linconv.errormodel import bound, formulation_precision, underflow_scale
from linconv.errormodel.constants import SOFTMAX_EFFECT
from linconv.errormodel.loss import cross_entropy_bounds
from linconv.errormodel.partial_sums import storage_partial_sums
from linconv.measure import Observer, RelationResult, Workload, compare, flags_in_force, float64_cpu
from linconv.relations.common import (
    CONTROL_DTYPES,
    CONV_FLAT_PRODUCT,
    LARGEST_FULL_KERNEL,
    conv,
    conv_reductions,
    half_precision_examples,
    requires,
)
from linconv.relations.conditions import FULL_KERNEL, NO_HEAD, RANK_2
from linconv.relations.record import FormulationSpec, NegativeControl, Relation
from linconv.relations.registry import register
from strategies import classifier_head_cases, dtypes

__all__ = ["CLASSIFIER_HEAD", "CLASSIFIER_HEAD_WITH_SOFTMAX", "LOSS_HEAD", "conv_head", "linear_head"]

HeadOutput = tuple[torch.Tensor, torch.Tensor]  # (loss, logits); logits keep their graph
HeadFormulation = Callable[[torch.Tensor, Params, torch.Tensor, Case], HeadOutput]
_GRADS = ("x", "weight", "bias")


def conv_head(x: torch.Tensor, p: Params, target: torch.Tensor, case: Case) -> HeadOutput:
    logits = conv(x, p, case.geometry)  # [N, K, 1, 1]
    if logits.requires_grad:  # not when timing the forward alone (linconv.timing)
        logits.retain_grad()
    loss = F.cross_entropy(logits, target.view(-1, *[1] * case.geometry.rank))
    return loss, logits


def linear_head(x: torch.Tensor, p: Params, target: torch.Tensor, case: Case) -> HeadOutput:
    logits = F.linear(x.flatten(1), block_diagonal(p.weight, case.geometry.groups), p.bias)
    if logits.requires_grad:
        logits.retain_grad()
    return F.cross_entropy(logits, target), logits


def softmax_then_cross_entropy(x: torch.Tensor, p: Params, target: torch.Tensor, case: Case) -> HeadOutput:
    """Negative control: CrossEntropyLoss already holds log-softmax; a softmax before it changes the loss."""
    _, logits = linear_head(x, p, target, case)
    return F.cross_entropy(F.softmax(logits, dim=1), target), logits


def _run(fn: HeadFormulation, x: torch.Tensor, params: Params, target: torch.Tensor, case: Case, convert) -> dict:
    xl = convert(x).detach().requires_grad_(True)
    p = Params(*(None if v is None else convert(v).detach().requires_grad_(True) for v in (params.weight, params.bias)))
    loss, logits = fn(xl, p, target, case)
    loss.backward()
    return {
        "loss": loss.detach(),
        "logits": logits.detach().reshape(logits.shape[0], -1),
        "grad logits": logits.grad.reshape(logits.shape[0], -1),
        "x": xl.grad,
        "weight": p.weight.grad,
        "bias": None if p.bias is None else p.bias.grad,
    }


def _workload(fn: HeadFormulation, x: torch.Tensor, params: Params, target: torch.Tensor, case: Case) -> Workload:
    """The check's run of ``fn`` and, for timing, its forward (loss, no autograd) and backward alone."""

    def forward() -> torch.Tensor:
        with torch.no_grad():
            return fn(x, params, target, case)[0]

    def backward():
        xl = x.detach().requires_grad_(True)
        p = Params(*(None if v is None else v.detach().requires_grad_(True) for v in (params.weight, params.bias)))
        loss, _ = fn(xl, p, target, case)
        leaves = [t for t in (xl, p.weight, p.bias) if t is not None]
        return lambda: torch.autograd.grad(loss, leaves, retain_graph=True)

    return Workload(lambda: _run(fn, x, params, target, case, lambda v: v), forward, backward)


def _abs_backward(case: Case, params: Params, x: torch.Tensor, upstream: torch.Tensor) -> dict:
    """Gradients of ``<upstream, |W| (*) |x| + |b|>`` w.r.t. |x|, |W|, |b| (float64): the backward
    magnitudes of the linear map for an upstream of that size."""
    xa = float64_cpu(x).abs().requires_grad_(True)
    p = Params(
        *(None if v is None else float64_cpu(v).abs().requires_grad_(True) for v in (params.weight, params.bias))
    )
    (conv(xa, p, case.geometry).flatten(1) * upstream).sum().backward()
    return {"x": xa.grad, "weight": p.weight.grad, "bias": None if p.bias is None else p.bias.grad}


@dataclass(frozen=True)
class _LossHead:
    """Formulations ``f(x, params, target, case) -> (loss, logits)`` of a classifier head."""

    name: str = "loss head"
    timed: bool = True
    compile_unavailable: str = ""
    # logits.retain_grad() is not traceable (AOTAutograd): the head compiles as two graphs, the
    # model's logits and the loss, as a training loop that compiles the model and the loss does
    graph_breaks: bool = True
    forward_only: bool = False  # the loss's gradients are part of what it compares

    def run(self, relation: Relation, case: Case, *, observer: Observer | None, keep_outputs: bool) -> RelationResult:
        t = case.build()
        params = Params(t.weight, t.bias)
        target = t.target.cpu()
        ref = _run(relation.reference, t.x, params, target, case, float64_cpu)
        reductions = relation.reduction_lengths(case)
        magnitude_params = Params(*(None if v is None else float64_cpu(v).abs() for v in (t.weight, t.bias)))
        logit_magnitude = conv(float64_cpu(t.x).abs(), magnitude_params, case.geometry).flatten(1)
        scale = underflow_scale([t.x, t.weight, t.bias])
        x64, params64 = float64_cpu(t.x), Params(*(None if v is None else float64_cpu(v) for v in (t.weight, t.bias)))
        rounded = {
            id(s.rounded): s.rounded(x64, params64, case.geometry)
            for s in relation.formulations.values()
            if s.rounded is not None
        }
        comparisons = []
        backward_magnitudes: dict = {}
        for name, spec in relation.formulations.items():
            precision = formulation_precision(case, spec.ops, scale=scale, reduction_length=reductions["output"])
            r = None if spec.rounded is None else rounded[id(spec.rounded)]
            logit_bound = bound(ref["logits"], logit_magnitude, reductions["output"], precision, rounded=r)
            head = cross_entropy_bounds(ref["logits"], target, logit_bound, ref["loss"], ref["grad logits"], precision)
            work = _workload(spec.fn, t.x, params, t.target, case)
            got = observer(relation.name, name, case, work) if observer else work()
            comparisons.append(compare(name, "loss", got["loss"], ref["loss"], limit=head.loss))
            comparisons.append(compare(name, "grad logits", got["grad logits"], ref["grad logits"],
                                       limit=head.grad_logits))  # fmt: skip
            if precision not in backward_magnitudes:  # formulations with the same arithmetic share them
                backward_magnitudes[precision] = (
                    _abs_backward(case, params, t.x, head.upstream),
                    _abs_backward(case, params, t.x, ref["grad logits"].abs()),
                )
            through, magnitude = backward_magnitudes[precision]
            partials = (
                storage_partial_sums(spec.partial_sums, case.geometry, t.x, t.weight) if spec.partial_sums else {}
            )
            for tensor in _GRADS:
                if ref[tensor] is None:
                    continue
                grad_precision = formulation_precision(
                    case,
                    spec.ops,
                    scale=scale,
                    storage_partial_sums=partials.get(tensor, 0),
                    reduction_length=reductions[tensor],
                )
                limit = bound(ref[tensor], magnitude[tensor], reductions[tensor], grad_precision) + through[tensor]
                comparisons.append(compare(name, f"grad {tensor}", got[tensor], ref[tensor], limit=limit))
        return RelationResult(relation.name, case, tuple(comparisons), flags=flags_in_force())


LOSS_HEAD = _LossHead()
_APPLIES = requires(RANK_2, FULL_KERNEL, NO_HEAD)
_MODULE = "properties/test_classifier_head.py"

CLASSIFIER_HEAD = register(
    Relation(
        name="classifier_head",
        statement="a conv head [N,K,1,1] + CrossEntropyLoss on [N,1,1] equals a Linear head [N,K] on [N]",
        strategy=classifier_head_cases,
        formulations={
            "conv_head": FormulationSpec(conv_head, ("conv",), partial_sums="slow_conv", rounded=CONV_FLAT_PRODUCT),
            "linear_head": FormulationSpec(linear_head, ("matmul",), rounded=CONV_FLAT_PRODUCT),
        },
        reference=conv_head,
        grads=_GRADS,
        reductions=conv_reductions,
        kind=LOSS_HEAD,
        calibrated=True,
        examples=half_precision_examples(LARGEST_FULL_KERNEL),
        property_module=_MODULE,
        applies_to=_APPLIES,
    )
)


def softmax_effect(case: Case) -> float:
    """How far (relative to the loss) the softmax moves the float64 loss."""
    t = case.build()
    x = float64_cpu(t.x)
    p = Params(float64_cpu(t.weight), None if t.bias is None else float64_cpu(t.bias))
    target = t.target.cpu()
    plain, _ = linear_head(x, p, target, case)
    softmaxed, _ = softmax_then_cross_entropy(x, p, target, case)
    return float((softmaxed - plain).abs() / plain.abs().clamp_min(torch.finfo(torch.float64).tiny))


CLASSIFIER_HEAD_WITH_SOFTMAX = register(
    Relation(
        name="classifier_head_with_softmax",
        statement="negative control: a softmax before CrossEntropyLoss (which holds log-softmax) changes the loss",
        strategy=lambda: classifier_head_cases(dtype_names=dtypes(allowed=CONTROL_DTYPES)),
        formulations={
            "softmax_then_ce": FormulationSpec(softmax_then_cross_entropy, ("matmul",), rounded=CONV_FLAT_PRODUCT)
        },
        reference=conv_head,
        grads=_GRADS,
        reductions=conv_reductions,
        kind=LOSS_HEAD,
        # with one class both losses are identically 0, and with near-equal logits the softmax
        # barely moves the loss: neither example can tell the two apart
        negative_control=NegativeControl(effect=softmax_effect, min_effect=SOFTMAX_EFFECT, decisive=("loss",)),
        dtypes=CONTROL_DTYPES,
        property_module=_MODULE,
        applies_to=_APPLIES,
    )
)
