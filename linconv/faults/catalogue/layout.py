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
    name="flatten_in_memory_order_3d",
    relation="full_kernel_3d",
    formulation="flatten_linear",
    bug_class="layout",
    description="flatten(1) of a channels_last_3d input follows memory (NDHWC) order, the weight expects NCDHW",
)
@fault(
    name="flatten_in_memory_order_1d",
    relation="full_kernel_1d",
    formulation="flatten_linear",
    bug_class="layout",
    description="flatten(1) of a sequence stored [N, L, C] follows memory (L, C) order, the weight expects (C, L)",
)
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
        # channels-last memory order fed to a weight laid out for channels-first flatten(1)
        return F.linear(x.movedim(1, -1).flatten(1), block_diagonal(p.weight, g.groups), p.bias)

    return fn


@fault(
    name="channels_last_3d_input_read_as_ncdhw",
    relation="pointwise_3d",
    formulation="conv3d",
    bug_class="layout",
    description="conv3d reads a channels_last_3d input's memory as if it were NCDHW",
)
@fault(
    name="sequence_read_as_channels_first",
    relation="pointwise_1d",
    formulation="conv1d",
    bug_class="layout",
    description="conv1d reads a sequence stored [N, L, C] (x.transpose(1, 2)) as if its memory were [N, C, L]",
)
def channels_last_input_read_as_channels_first(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return conv(read_as_contiguous(x) if is_channels_last_only(x) else x, p, g)

    return fn


@fault(
    relation="general_conv_3d",
    formulation="conv3d",
    bug_class="layout",
    description="a kernel with depth == width is read with depth and width swapped",
)
def weight_depth_width_swapped(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if g.kernel[0] == g.kernel[2]:
            p = replace(p, weight=p.weight.transpose(2, 4))
        return conv(x, p, g)

    return fn


@fault(
    relation="unpatchify",
    formulation="linear_unpatchify",
    bug_class="layout",
    description="on a channels_last input the un-patchify puts tap j of position i at j*grid + i instead of "
    "i*k + j (a pixel-shuffle order mix-up)",
)
def unpatchify_blocks_patch_major(unpatchify: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        y = unpatchify(x, p, g)
        if not is_channels_last_only(x):
            return y
        n, r = y.shape[0], g.rank
        # [N, O, g_1, k_1, ...] read back as [N, O, k_1, g_1, ...]
        split = y.reshape(n, g.out_channels, *(v for grid, k in zip(g.size, g.kernel, strict=True) for v in (grid, k)))
        order = (0, 1, *(v for axis in range(r) for v in (3 + 2 * axis, 2 + 2 * axis)))
        return split.permute(order).reshape(y.shape)

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


@fault(
    relation="linear_last_dim",
    formulation="linear_nd",
    bug_class="layout",
    description="a Linear on a 3-D or higher input that is not contiguous ([N, L, C] transposed from "
    "[N, C, L]) folds its leading dimensions in memory order",
)
def linear_folds_strided_input_in_memory_order(linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        rows = x.movedim(1, -1)  # the Linear's input [N, *size, C]
        if rows.dim() >= 3 and not rows.is_contiguous():
            x = read_as_contiguous(rows).movedim(-1, 1)
        return linear(x, p, g)

    return fn
