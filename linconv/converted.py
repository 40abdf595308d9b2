"""Formulations through the public converters: build the modules a user has, convert them, run
the result. Relations over these check that what the converters hand out computes the map."""

from __future__ import annotations

import torch
from torch import nn

from linconv import converters
from linconv.formulations import Params
from linconv.geometry import ConvGeometry

__all__ = ["conv_module", "converted_dense", "converted_full_kernel", "converted_fused", "converted_pointwise",
           "linear_module"]  # fmt: skip


def _param(t: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(t.detach(), requires_grad=t.requires_grad)


def conv_module(p: Params, g: ConvGeometry) -> nn.Conv2d:
    """An nn.Conv2d of geometry ``g`` holding ``p.weight`` / ``p.bias`` (no default init runs)."""
    conv = nn.Conv2d(g.in_channels, g.out_channels, g.kernel, g.stride, g.padding, g.dilation, g.groups,
                     bias=g.bias, padding_mode=g.padding_mode, device="meta")  # fmt: skip
    conv.weight = _param(p.weight)
    if p.bias is not None:
        conv.bias = _param(p.bias)
    return conv


def linear_module(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    linear.weight = _param(weight)
    if bias is not None:
        linear.bias = _param(bias)
    return linear


def converted_pointwise(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    linear = converters.conv1x1_to_linear(conv_module(p, g))
    return linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def converted_full_kernel(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    return converters.full_kernel_conv_to_linear(conv_module(p, g))(x.flatten(1))


def converted_dense(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    linear = converters.conv_to_dense_linear(conv_module(p, g), (g.height, g.width))
    return linear(x.flatten(1)).view(x.shape[0], *g.output_shape[1:])


def converted_fused(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    assert p.head_weight is not None
    head = linear_module(p.head_weight, p.head_bias)
    return converters.fuse_linear_after_conv(conv_module(p, g), head, (g.height, g.width))(x.flatten(1))
