"""Classifier head: a conv head giving ``[N, K, 1, 1]`` with CrossEntropyLoss on target
``[N, 1, 1]`` equals a Linear head ``[N, K]`` with CrossEntropyLoss on target ``[N]`` — the loss,
its gradient w.r.t. the logits, and the gradients of input, weight and bias.

Error model on top of linconv.tolerance: with logit errors ``|d z_nk| <= beta_nk``, the
per-sample loss ``lse(z_n) - z_n[t]`` moves by at most ``2 max_k beta_nk`` (log-sum-exp and
the target pick are each 1-Lipschitz in the max norm); softmax moves by at most
``p_nk (exp(2 max_k beta_nk) - 1)``. The loss's own rounding adds ``C u`` times the size of
the terms it combines; softmax's adds ``p_nk (exp(C u (|z_nk| + |lse_n|)) - 1)`` (exp of an
argument rounded relative to its size). Gradients of x, W, b get the backward bound of the linear map plus the
upstream error pushed through ``|W|`` (a float64 run on absolute values).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from linconv import tolerance
from linconv.cases import Case
from linconv.check import (
    Comparison,
    Observer,
    RelationResult,
    RelationViolation,
    Workload,
    compare,
    flags_in_force,
    float64_cpu,
    input_rounding,
)
from linconv.converters import block_diagonal
from linconv.formulations import Params, conv2d
from linconv.relations import get_relation

__all__ = ["HEAD_FORMULATIONS", "HeadOutput", "check_classifier_head", "run_classifier_head"]

HeadOutput = tuple[torch.Tensor, torch.Tensor]  # (loss, logits as [N, K]); logits keep their graph
HeadFormulation = Callable[[torch.Tensor, Params, torch.Tensor, Case], HeadOutput]


def conv_head(x: torch.Tensor, p: Params, target: torch.Tensor, case: Case) -> HeadOutput:
    logits = conv2d(x, p, case.geometry)  # [N, K, 1, 1]
    if logits.requires_grad:  # not when timing the forward alone (linconv.timing)
        logits.retain_grad()
    loss = F.cross_entropy(logits, target.view(-1, 1, 1))
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


HEAD_FORMULATIONS: dict[str, HeadFormulation] = {"conv_head": conv_head, "linear_head": linear_head}
_OPS = {"conv_head": ("conv",), "linear_head": ("matmul",)}


def _run(fn: HeadFormulation, x: torch.Tensor, params: dict, target: torch.Tensor, case: Case, convert) -> dict:
    xl = convert(x).detach().requires_grad_(True)
    p = Params(**{n: None if v is None else convert(v).detach().requires_grad_(True) for n, v in params.items()})
    loss, logits = fn(xl, p, target, case)
    loss.backward()
    grads = {
        "grad logits": logits.grad.reshape(logits.shape[0], -1),
        "x": xl.grad,
        "weight": p.weight.grad,
        "bias": None if p.bias is None else p.bias.grad,
    }
    return {"loss": loss.detach(), "logits": logits.detach().reshape(logits.shape[0], -1), **grads}


def _workload(fn: HeadFormulation, x: torch.Tensor, params: dict, target: torch.Tensor, case: Case) -> Workload:
    """The check's run of ``fn`` and, for timing, its forward (loss, no autograd) and backward alone."""

    def forward() -> torch.Tensor:
        with torch.no_grad():
            return fn(x, Params(**params), target, case)[0]

    def backward():
        xl = x.detach().requires_grad_(True)
        p = Params(**{n: None if v is None else v.detach().requires_grad_(True) for n, v in params.items()})
        loss, _ = fn(xl, p, target, case)
        leaves = [t for t in (xl, p.weight, p.bias) if t is not None]
        return lambda: torch.autograd.grad(loss, leaves, retain_graph=True)

    return Workload(lambda: _run(fn, x, params, target, case, lambda v: v), forward, backward)


def _abs_backward(case: Case, params: dict, x: torch.Tensor, upstream: torch.Tensor) -> dict:
    """Gradients of ``<upstream, |W| (*) |x| + |b|>`` w.r.t. |x|, |W|, |b| (float64): the backward
    magnitudes of the linear map for an upstream of that size."""
    xa = float64_cpu(x).abs().requires_grad_(True)
    p = Params(**{n: None if v is None else float64_cpu(v).abs().requires_grad_(True) for n, v in params.items()})
    logits = conv2d(xa, p, case.geometry).flatten(1)
    (logits * upstream).sum().backward()
    return {"x": xa.grad, "weight": p.weight.grad, "bias": None if p.bias is None else p.bias.grad}


def run_classifier_head(
    case: Case, formulations: dict[str, HeadFormulation] | None = None, *, observer: Observer | None = None
) -> RelationResult:
    entries = formulations or HEAD_FORMULATIONS
    g = case.geometry
    t = case.build()
    params = {"weight": t.weight, "bias": t.bias}
    target_cpu = t.target.cpu()
    ref = _run(conv_head, t.x, params, target_cpu, case, float64_cpu)
    z, n = ref["logits"], g.batch
    reductions = get_relation("full_kernel").reductions(g, 0)
    logit_mag = conv2d(
        float64_cpu(t.x).abs(), Params(*(None if v is None else float64_cpu(v).abs() for v in (t.weight, t.bias))), g
    ).flatten(1)
    probs = torch.softmax(z, dim=1)
    onehot = F.one_hot(target_cpu, g.out_channels).double()
    lse = torch.logsumexp(z, dim=1)
    z_target = z.gather(1, target_cpu.view(-1, 1)).squeeze(1)
    comparisons: list[Comparison] = []
    backward_magnitudes: dict[tolerance.Precision, tuple[dict, dict]] = {}
    for name, fn in entries.items():
        ops = _OPS.get(name, ("conv", "matmul"))
        precision = tolerance.precision_of(case.torch_dtype, input_rounding=input_rounding(case, ops))
        u = precision.u_out
        underflow = float(torch.finfo(case.torch_dtype).smallest_normal)
        beta = tolerance.bound(z, logit_mag, reductions["output"], precision)
        beta_max = beta.max(dim=1).values
        c = tolerance.C_CALIBRATED
        loss_bound = (
            (2 * beta_max).mean()
            + c * (precision.u_mid + (n**0.5) * precision.u_acc) * (lse.abs() + z_target.abs()).mean()
            + u * ref["loss"].abs()
        )
        # softmax: exp of logits that are off by beta, and computed with a rounding of u |z - lse|
        exponent_err = 2 * beta_max.view(-1, 1) + c * u * (z.abs() + lse.abs().view(-1, 1))
        # + underflow: probabilities below the smallest normal may flush to zero
        upstream_err = (probs * torch.expm1(exponent_err) + c * u * (probs + onehot) + underflow) / n
        logit_grad_bound = upstream_err + u * ref["grad logits"].abs()
        work = _workload(fn, t.x, params, t.target, case)
        got = observer("classifier_head", name, case, work) if observer else work()
        comparisons.append(
            compare(name, "loss", got["loss"], ref["loss"], torch.zeros(()), 1, precision, False, limit=loss_bound)
        )
        comparisons.append(
            compare(
                name,
                "grad logits",
                got["grad logits"],
                ref["grad logits"],
                torch.zeros(()),
                1,
                precision,
                False,
                limit=logit_grad_bound,
            )
        )
        if precision not in backward_magnitudes:  # formulations with the same arithmetic share them
            backward_magnitudes[precision] = (
                _abs_backward(case, params, t.x, upstream_err),
                _abs_backward(case, params, t.x, ref["grad logits"].abs()),
            )
        through, magnitude = backward_magnitudes[precision]
        for tensor in ("x", "weight", "bias"):
            if ref[tensor] is None:
                continue
            limit = tolerance.bound(ref[tensor], magnitude[tensor], reductions[tensor], precision) + through[tensor]
            comparisons.append(
                compare(
                    name,
                    f"grad {tensor}",
                    got[tensor],
                    ref[tensor],
                    magnitude[tensor],
                    1,
                    precision,
                    False,
                    limit=limit,
                )
            )
    return RelationResult("classifier_head", case, tuple(comparisons), flags=flags_in_force())


def check_classifier_head(case: Case, formulations: dict[str, HeadFormulation] | None = None) -> RelationResult:
    __tracebackhide__ = True
    result = run_classifier_head(case, formulations)
    if result.violations:
        raise RelationViolation(result)
    return result
