"""Layout and strides: a memory format or a non-contiguous view read as if it were another."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from linconv.converters import block_diagonal
from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.faults.catalogue.tensors import CHANNELS_LAST, is_channels_last_only, issue, read_as_contiguous
from linconv.faults.record import fault
from linconv.relations.common import Formulation


@fault(
    relation="general_conv",
    formulation="conv2d",
    bug_class="layout",
    description="conv reads a channels_last input's memory as if it were NCHW",
    issue=issue(77299),
)
def channels_last_input_read_as_nchw(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return conv(read_as_contiguous(x) if is_channels_last_only(x) else x, p, g)

    return fn


@fault(
    relation="general_conv",
    formulation="conv2d",
    bug_class="strides",
    description="conv reads a channels_last (non-contiguous) weight with contiguous strides",
    issue=issue(16018),
)
def channels_last_weight_read_as_oihw(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if is_channels_last_only(p.weight):
            p = replace(p, weight=read_as_contiguous(p.weight))
        return conv(x, p, g)

    return fn


@fault(
    relation="pointwise",
    formulation="conv2d",
    bug_class="strides",
    description="conv reads a non-contiguous input view (every other column) as if it were contiguous",
    issue="https://github.com/pytorch/pytorch/pull/16301",
)
def strided_input_read_as_contiguous(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        dense = x.is_contiguous() or x.is_contiguous(memory_format=CHANNELS_LAST)
        return conv(x if dense else read_as_contiguous(x), p, g)

    return fn


@fault(
    relation="full_kernel",
    formulation="flatten_linear",
    bug_class="layout",
    description="flatten(1) of a channels_last input follows memory (NHWC) order, the weight expects NCHW",
)
def flatten_in_memory_order(linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if not is_channels_last_only(x):
            return linear(x, p, g)
        # NHWC memory order fed to a weight laid out for NCHW's flatten(1)
        return F.linear(x.permute(0, 2, 3, 1).flatten(1), block_diagonal(p.weight, g.groups), p.bias)

    return fn


@fault(
    relation="general_conv",
    formulation="conv2d",
    bug_class="layout",
    description="a square kernel is read transposed (kh and kw swapped)",
)
def weight_hw_transposed(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if g.kernel[0] == g.kernel[1]:
            p = replace(p, weight=p.weight.transpose(2, 3))
        return conv(x, p, g)

    return fn
