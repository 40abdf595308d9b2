"""Benign: the same sums in another order, or rounded differently. The suite must NOT flag these."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F

from linconv.converters import block_diagonal
from linconv.core.cases import Params, channels_last
from linconv.core.geometry import ConvGeometry
from linconv.faults.catalogue.tensors import CHANNELS_LAST, all_integers, cast_params, same_layout
from linconv.faults.record import fault
from linconv.relations.common import Formulation


@fault(
    relation="general_conv",
    formulation="conv2d",
    bug_class="benign_order",
    description="the conv sums its input channels in reverse order (channels and filters flipped together)",
    harmful=False,
)
def reduction_channels_reversed(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        flipped = same_layout(x, x.unflatten(1, (g.groups, g.in_per_group)).flip(2).flatten(1, 2))
        return conv(flipped, replace(p, weight=same_layout(p.weight, p.weight.flip(1))), g)

    return fn


@fault(
    relation="full_kernel",
    formulation="flatten_linear",
    bug_class="benign_order",
    description="the flattened Linear sums each half of K separately, then adds the halves",
    harmful=False,
)
def reduction_split_in_halves(_linear: Formulation) -> Formulation:
    """The two halves are summed and added in the accumulation format (float32 for
    float16/bfloat16, as the kernels accumulate), then rounded once: another order, the same
    precision. Rounding each half to the storage dtype first would be two partial sums added in
    float16/bfloat16, the class of the harmful half_blocks_added_in_half, which the per-element
    bound sees (bfloat16 error/bound up to 4.4 at K = 2048; docs/faults.md)."""

    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        xf, w = x.flatten(1), block_diagonal(p.weight, g.groups)
        half = xf.shape[1] // 2
        acc = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        xf, w = xf.to(acc), w.to(acc)
        bias = None if p.bias is None else p.bias.to(acc)
        y = F.linear(xf[:, :half], w[:, :half]) + F.linear(xf[:, half:], w[:, half:], bias)
        return y.to(x.dtype)

    return fn


@fault(
    relation="general_conv",
    formulation="unfold_matmul",
    bug_class="benign_rounding",
    description="outputs moved one ulp up or down at random (faithful instead of correct rounding)",
    harmful=False,
)
def one_ulp_output_noise(fn_: Formulation) -> Formulation:
    """A faithfully (not correctly) rounded kernel: a third of the outputs one ulp up, a third
    one ulp down. Integer data (the exact lane: every sum representable) is left exact, as a
    faithful kernel leaves it; there a one-ulp error would be a real bug."""

    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        y = fn_(x, p, g)
        if all_integers(x, p.weight, p.bias, p.head_weight, p.head_bias):
            return y
        gen = torch.Generator().manual_seed(y.numel())
        step = (torch.randint(0, 3, y.shape, generator=gen) - 1).to(y.device)
        toward = torch.where(step > 0, math.inf, -math.inf).to(y.dtype)
        noisy = torch.where(step == 0, y.detach(), torch.nextafter(y.detach(), toward))
        return y + (noisy - y.detach())  # noisy forward, the exact backward of the formulation

    return fn


@fault(
    relation="pointwise",
    formulation="conv2d",
    bug_class="benign_rounding",
    description="the 1x1 conv computed in float64 and rounded once to the case's dtype",
    harmful=False,
)
def computed_in_float64(fn_: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return fn_(x.double(), cast_params(p, torch.float64), g).to(x.dtype)

    return fn


@fault(
    relation="general_conv",
    formulation="conv2d",
    bug_class="benign_rounding",
    description="the conv's input copied to channels_last first (another kernel, another summation order)",
    harmful=False,
)
def channels_last_copy(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return conv(x.contiguous(memory_format=CHANNELS_LAST), p, g)

    return fn


@fault(
    name="channels_last_copy_unpatchify",
    relation="unpatchify",
    formulation="conv_transpose",
    bug_class="benign_rounding",
    description="the un-patchify's input copied to channels-last memory first",
    harmful=False,
)
@fault(
    name="channels_last_copy_conv_transpose",
    relation="conv_transpose",
    formulation="conv_transpose",
    bug_class="benign_rounding",
    description="the transposed conv's input copied to channels-last memory first",
    harmful=False,
)
@fault(
    name="channels_last_copy_patch_embedding",
    relation="patch_embedding",
    formulation="conv",
    bug_class="benign_rounding",
    description="the patch embedding's input copied to channels-last memory first",
    harmful=False,
)
@fault(
    name="channels_last_copy_3d",
    relation="general_conv_3d",
    formulation="conv3d",
    bug_class="benign_rounding",
    description="the Conv3d's input copied to channels_last_3d first (another kernel, another summation order)",
    harmful=False,
)
@fault(
    name="channels_last_copy_1d",
    relation="general_conv_1d",
    formulation="conv1d",
    bug_class="benign_rounding",
    description="the Conv1d's input copied to [N, L, C] memory first (a transposed sequence)",
    harmful=False,
)
def channels_last_copy_any_rank(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return conv(channels_last(x), p, g)

    return fn
