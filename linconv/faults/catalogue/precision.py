"""Accumulation in too low a precision."""

from __future__ import annotations

import torch

from linconv.converters import block_diagonal
from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.faults.catalogue.tensors import cast_params, issue
from linconv.faults.record import fault
from linconv.relations.common import Formulation


class _LinearBackward(torch.autograd.Function):
    """F.linear's own backward, for the faults below whose forward alone is broken: their forward
    saves ``x`` and ``weight`` and sets ``ctx.has_bias``."""

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        return grad @ weight, grad.t() @ x, grad.sum(0) if ctx.has_bias else None


class _LinearSummedInStorageDtype(_LinearBackward):
    """F.linear whose forward keeps the running sum of every output in the storage dtype; the
    backward is F.linear's own (only the forward's accumulation is broken)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        acc = x[:, 0:1] * weight[:, 0]  # [N, O], each product and partial sum rounded to x.dtype
        for k in range(1, x.shape[1]):
            acc += x[:, k : k + 1] * weight[:, k]
        return acc if bias is None else acc + bias


@fault(
    relation="general_conv",
    formulation="dense_linear",
    bug_class="precision",
    description="a float64 dense Linear computed in float32 and cast back",
    issue=issue(74438),
)
def float64_computed_in_float32(fn_: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if x.dtype != torch.float64:
            return fn_(x, p, g)
        return fn_(x.float(), cast_params(p, torch.float32), g).double()

    return fn


@fault(
    relation="full_kernel",
    formulation="flatten_linear",
    bug_class="precision",
    description="a float16/bfloat16 Linear keeps its running sum in the storage dtype",
    issue=issue(2391),
)
def half_accumulated_in_half(linear: Formulation) -> Formulation:
    """A reduction that keeps its running sum in the storage dtype (pytorch/pytorch#2391, #74438:
    half reductions accumulating in the output): every partial sum rounded to float16/bfloat16."""

    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if x.dtype not in (torch.float16, torch.bfloat16):
            return linear(x, p, g)
        return _LinearSummedInStorageDtype.apply(x.flatten(1), block_diagonal(p.weight, g.groups), p.bias)

    return fn


# The block a kernel sums in float32 before it adds the block's sum to the output.
HALF_BLOCK = 64


class _LinearBlocksAddedInStorageDtype(_LinearBackward):
    """F.linear whose forward sums blocks of HALF_BLOCK terms in float32, rounds each block's sum
    to the storage dtype and adds the blocks there; the backward is F.linear's own."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        acc = None
        for start in range(0, x.shape[1], HALF_BLOCK):
            block = x[:, start : start + HALF_BLOCK].float() @ weight[:, start : start + HALF_BLOCK].float().t()
            block = block.to(x.dtype)  # the block's float32 sum rounded to the storage dtype
            acc = block if acc is None else acc + block  # and added there
        return acc if bias is None else acc + bias


@fault(
    relation="full_kernel",
    formulation="flatten_linear",
    bug_class="precision",
    description=f"a float16/bfloat16 Linear adds the float32 sums of its {HALF_BLOCK}-term blocks in the storage dtype",
)
def half_blocks_added_in_half(linear: Formulation) -> Formulation:
    """A blocked reduction that keeps each block's sum in float32 but adds the blocks in the
    storage dtype (a split-K or K-tiled kernel whose epilogue accumulates into the float16/bfloat16
    output): K/64 roundings of the running sum. Dormant in float32/float64 and for K <= 64 (one
    block: a correct kernel). Invisible to the blunt model (C u M); the per-element model sees it
    where the result cancels (tests/test_sharpness.py)."""

    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if x.dtype not in (torch.float16, torch.bfloat16) or g.reduction_length() <= HALF_BLOCK:
            return linear(x, p, g)
        return _LinearBlocksAddedInStorageDtype.apply(x.flatten(1), block_diagonal(p.weight, g.groups), p.bias)

    return fn
