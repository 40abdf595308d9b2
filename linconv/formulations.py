"""Formulations: the same linear map computed several ways.

Every formulation has the signature ``f(x, params, geometry) -> Tensor``. Relations
(linconv.relations) group them; the check (linconv.check) runs each one forward and backward
and compares it with a float64 reference through the error model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from linconv.converters import block_diagonal, dense_conv_weight, fused_linear_parameters
from linconv.geometry import ConvGeometry

__all__ = [
    "Formulation",
    "Params",
    "conv2d",
    "conv2d_flat",
    "conv_relu_linear",
    "conv_then_linear",
    "dense_linear",
    "flatten_linear",
    "fused_linear",
    "linear_over_channels",
    "unfold_matmul",
]


@dataclass(frozen=True)
class Params:
    """Parameters a formulation may read; the ones it does not use stay None."""

    weight: torch.Tensor
    bias: torch.Tensor | None = None
    head_weight: torch.Tensor | None = None
    head_bias: torch.Tensor | None = None


Formulation = Callable[[torch.Tensor, Params, ConvGeometry], torch.Tensor]


def _pad(x: torch.Tensor, g: ConvGeometry) -> torch.Tensor:
    top, bottom, left, right = g.pad_amounts()
    if (top, bottom, left, right) == (0, 0, 0, 0):
        return x
    mode = "constant" if g.padding_mode == "zeros" else g.padding_mode
    return F.pad(x, (left, right, top, bottom), mode=mode)


def conv2d(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """``F.conv2d`` as nn.Conv2d calls it: non-zero padding modes pad first, zeros pass through."""
    if g.padding_mode != "zeros":
        return F.conv2d(_pad(x, g), p.weight, p.bias, g.stride, 0, g.dilation, g.groups)
    return F.conv2d(x, p.weight, p.bias, g.stride, g.padding, g.dilation, g.groups)


def conv2d_flat(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """Full-kernel conv output ``[N, O, 1, 1]`` flattened to ``[N, O]`` (flatten, never squeeze)."""
    return conv2d(x, p, g).flatten(1)


def linear_over_channels(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """Pointwise conv as a Linear over the channel axis: subsample, NCHW->NHWC, Linear, back."""
    sh, sw = g.stride
    nhwc = x[:, :, ::sh, ::sw].permute(0, 2, 3, 1)
    return F.linear(nhwc, block_diagonal(p.weight, g.groups), p.bias).permute(0, 3, 1, 2)


def flatten_linear(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """Full-kernel conv as ``Linear(C*H*W, O)`` on ``x.flatten(1)``: output ``[N, O]``."""
    return F.linear(x.flatten(1), block_diagonal(p.weight, g.groups), p.bias)


def unfold_matmul(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """im2col: gather every receptive field as a column, then one (grouped) matmul."""
    n = x.shape[0]
    out_h, out_w = g.output_size()
    cols = F.unfold(_pad(x, g), g.kernel, dilation=g.dilation, stride=g.stride)
    cols = cols.view(n, g.groups, g.reduction_length(), out_h * out_w)
    w = p.weight.reshape(g.groups, g.out_per_group, g.reduction_length())
    y = torch.matmul(w, cols).reshape(n, g.out_channels, out_h, out_w)
    return y if p.bias is None else y + p.bias.view(1, -1, 1, 1)


def dense_linear(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """The conv as one dense ("Toeplitz") Linear on the flattened input."""
    out_h, out_w = g.output_size()
    bias = None if p.bias is None else p.bias.repeat_interleave(out_h * out_w)
    y = F.linear(x.flatten(1), dense_conv_weight(p.weight, g), bias)
    return y.view(x.shape[0], g.out_channels, out_h, out_w)


def conv_then_linear(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """``Linear(Conv2d(x).flatten(1))`` with no activation between them."""
    return F.linear(conv2d(x, p, g).flatten(1), p.head_weight, p.head_bias)


def conv_relu_linear(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """The negative control: a ReLU between conv and Linear; no single Linear equals it."""
    return F.linear(F.relu(conv2d(x, p, g)).flatten(1), p.head_weight, p.head_bias)


def fused_linear(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """The one Linear that ``Linear . Conv2d`` collapses to, on ``x.flatten(1)``."""
    if p.head_weight is None:
        raise ValueError("fused_linear: params.head_weight is required (the Linear after the conv)")
    weight, bias = fused_linear_parameters(p.weight, p.bias, p.head_weight, p.head_bias, g)
    return F.linear(x.flatten(1), weight, bias)
