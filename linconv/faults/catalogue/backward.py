"""Backward: a wrong gradient for one argument (an autograd.Function with a broken backward)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from linconv.converters import block_diagonal
from linconv.core.cases import Case, Params
from linconv.core.geometry import ConvGeometry
from linconv.faults.catalogue.tensors import issue
from linconv.faults.record import fault
from linconv.relations.common import Formulation, conv, pad


class _LinearGradWeightFirstSample(torch.autograd.Function):
    """F.linear whose weight gradient sums over the first sample only (a batched reduction that
    stops after its first iteration); the input and bias gradients are right."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_bias = grad.sum(0) if ctx.has_bias else None
        return grad @ weight, grad[:1].t() @ x[:1], grad_bias


class _ConvWithBackward(torch.autograd.Function):
    """F.conv2d (padding already applied) with an explicit backward through torch.nn.grad; the
    subclasses below break one of its three gradients."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, dilation, groups):
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, dilation, groups, bias is not None)
        return F.conv2d(x, weight, bias, stride, 0, dilation, groups)

    @classmethod
    def grads(cls, x, weight, grad, stride, dilation, groups):
        grad_x = torch.nn.grad.conv2d_input(x.shape, weight, grad, stride, 0, dilation, groups)
        grad_w = torch.nn.grad.conv2d_weight(x, weight.shape, grad, stride, 0, dilation, groups)
        return grad_x, grad_w, grad.sum((0, 2, 3))

    @classmethod
    def backward(cls, ctx, grad):
        x, weight = ctx.saved_tensors
        stride, dilation, groups, has_bias = ctx.conf
        grad_x, grad_w, grad_b = cls.grads(x, weight, grad, stride, dilation, groups)
        return grad_x, grad_w, grad_b if has_bias else None, None, None, None


class _ConvGradBiasFirstPosition(_ConvWithBackward):
    @classmethod
    def grads(cls, x, weight, grad, stride, dilation, groups):
        grad_x, grad_w, _ = super().grads(x, weight, grad, stride, dilation, groups)
        return grad_x, grad_w, grad[:, :, 0, 0].sum(0)  # the spatial sum forgotten


class _ConvGradInputUnflipped(_ConvWithBackward):
    @classmethod
    def grads(cls, x, weight, grad, stride, dilation, groups):
        _, grad_w, grad_b = super().grads(x, weight, grad, stride, dilation, groups)
        # correlation where the transposed conv needs the kernel flipped (or vice versa)
        grad_x = torch.nn.grad.conv2d_input(x.shape, weight.flip(2, 3), grad, stride, 0, dilation, groups)
        return grad_x, grad_w, grad_b


def _conv_with(function: type[_ConvWithBackward]) -> Callable[[Formulation], Formulation]:
    def wrap(_conv: Formulation) -> Formulation:
        def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
            return function.apply(pad(x, g), p.weight, p.bias, g.stride, g.dilation, g.groups)

        return fn

    return wrap


class _CrossEntropyGradNotAveraged(torch.autograd.Function):
    """cross_entropy(reduction='mean') whose backward forgets the 1/N of the mean."""

    @staticmethod
    def forward(ctx, logits, target):
        ctx.save_for_backward(logits, target)
        return F.cross_entropy(logits, target)

    @staticmethod
    def backward(ctx, grad):
        logits, target = ctx.saved_tensors
        onehot = F.one_hot(target, logits.shape[1]).movedim(-1, 1).to(logits.dtype)
        return (torch.softmax(logits, dim=1) - onehot) * grad, None


@fault(
    relation="full_kernel",
    formulation="flatten_linear",
    bug_class="backward",
    description="Linear's weight gradient sums over the first sample only (autograd.Function with a wrong backward)",
    issue=issue(51430),
)
def linear_grad_weight_first_sample(_linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return _LinearGradWeightFirstSample.apply(x.flatten(1), block_diagonal(p.weight, g.groups), p.bias)

    return fn


@fault(
    relation="pointwise",
    formulation="conv2d",
    bug_class="backward",
    description="conv's bias gradient sums over the batch but only the first output position",
)
def conv_grad_bias_first_position(conv: Formulation) -> Formulation:
    return _conv_with(_ConvGradBiasFirstPosition)(conv)


@fault(
    relation="general_conv",
    formulation="conv2d",
    bug_class="backward",
    description="conv's input gradient uses the kernel without the 180-degree flip",
    issue=issue(63314),
)
def conv_grad_input_unflipped(conv: Formulation) -> Formulation:
    return _conv_with(_ConvGradInputUnflipped)(conv)


@fault(
    relation="classifier_head",
    formulation="conv_head",
    bug_class="backward",
    description="CrossEntropyLoss(reduction='mean') backward forgets the 1/N of the mean",
    issue=issue(55657),
)
def cross_entropy_grad_not_averaged(_conv_head: Callable) -> Callable:
    def head(x: torch.Tensor, p: Params, target: torch.Tensor, case: Case) -> tuple:
        logits = conv(x, p, case.geometry)
        logits.retain_grad()
        return _CrossEntropyGradNotAveraged.apply(logits, target.view(-1, *[1] * case.geometry.rank)), logits

    return head
