"""Views: a weight, bias or upstream gradient that is a view (a slice of a larger parameter, a tied
``weight.t()``, an HWIO checkpoint permuted back) read as if it were a contiguous tensor."""

from __future__ import annotations

from dataclasses import replace

import torch

from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.faults.catalogue.tensors import CHANNELS_LAST, is_channels_last_only, issue, read_as_contiguous
from linconv.faults.record import fault
from linconv.relations.common import Formulation


def _plain_view(t: torch.Tensor | None) -> bool:
    """A view neither contiguous nor channels-last: the layouts a kernel that checks only
    ``is_contiguous()`` / ``channels_last`` gets wrong."""
    return t is not None and not t.is_contiguous() and not is_channels_last_only(t)


@fault(
    name="linear_weight_view_read_as_contiguous",
    relation="linear_last_dim",
    formulation="linear_nd",
    bug_class="strides",
    description="the Linear reads a weight that is a view (sliced, transposed, permuted) with contiguous strides",
    issue=issue(1246),
)
@fault(
    relation="pointwise",
    formulation="linear_over_channels",
    bug_class="strides",
    description="the Linear reads a weight that is a view (sliced, transposed, permuted) with contiguous strides",
    issue=issue(1246),
)
def weight_view_read_as_contiguous(linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if _plain_view(p.weight):
            p = replace(p, weight=read_as_contiguous(p.weight))
        return linear(x, p, g)

    return fn


@fault(
    relation="full_kernel",
    formulation="flatten_linear",
    bug_class="strides",
    description="a bias that is a slice of a larger parameter is read from the start of its storage (offset ignored)",
)
def bias_view_offset_ignored(linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if p.bias is not None and p.bias.storage_offset():
            p = replace(p, bias=p.bias.as_strided(p.bias.shape, p.bias.stride(), 0))
        return linear(x, p, g)

    return fn


class _GradOutputReadAsContiguous(torch.autograd.Function):
    """Identity forward; backward hands on an upstream gradient that is a plain view (sliced,
    transposed, permuted) read with contiguous strides, as a backward kernel that assumes a
    contiguous ``grad_output`` would."""

    @staticmethod
    def forward(ctx, y):
        return y.view_as(y)

    @staticmethod
    def backward(ctx, grad):
        return read_as_contiguous(grad) if _plain_view(grad) else grad


@fault(
    relation="general_conv",
    formulation="conv2d",
    bug_class="backward",
    description="the conv's backward reads an upstream gradient that is a view (sliced, permuted) as contiguous",
)
def upstream_view_read_as_contiguous(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return _GradOutputReadAsContiguous.apply(conv(x, p, g))

    return fn


@fault(
    name="weight_copied_contiguous_linear",
    relation="linear_last_dim",
    formulation="linear_nd",
    bug_class="benign_rounding",
    description="the Linear copies a weight view to a contiguous tensor first (layout only)",
    harmful=False,
)
@fault(
    relation="general_conv",
    formulation="conv2d",
    bug_class="benign_rounding",
    description="the conv copies its weight, bias and upstream gradient views to contiguous tensors first "
    "(layout only)",
    harmful=False,
)
def weight_copied_contiguous(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        dense = replace(p, weight=p.weight.contiguous(), bias=None if p.bias is None else p.bias.contiguous())
        return _Contiguous.apply(conv(x, dense, g))

    return fn


class _Contiguous(torch.autograd.Function):
    """Identity forward; backward hands on a contiguous copy of the upstream gradient."""

    @staticmethod
    def forward(ctx, y):
        return y.view_as(y)

    @staticmethod
    def backward(ctx, grad):
        return grad.contiguous()


@fault(
    relation="pointwise",
    formulation="conv2d",
    bug_class="benign_rounding",
    description="the 1x1 conv's weight copied to channels_last memory first (layout only)",
    harmful=False,
)
def weight_copied_channels_last(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return conv(x, replace(p, weight=p.weight.contiguous(memory_format=CHANNELS_LAST)), g)

    return fn
