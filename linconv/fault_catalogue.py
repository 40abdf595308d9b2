"""The fault catalogue: broken formulations, each modelled on a class of real PyTorch bug, and
benign perturbations that only change rounding.

Every wrapper breaks ONE formulation of ONE relation and leaves the float64 reference alone
(see linconv.faults). Harmful faults are silent: they return tensors of plausible values (or a
shape the caller did not ask for) instead of raising, as the bugs they model did. Each fault
fires only under the condition its bug class needs (channels_last input, groups with few
channels, stride > 1, batch 1, a half dtype ...), so the search has to find that corner.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from linconv.cases import Case
from linconv.faults import Fault
from linconv.formulations import Params, block_diagonal, conv2d
from linconv.geometry import ConvGeometry

__all__ = ["FAULTS"]

# Formulation signatures (linconv.faults): f(x, params, geometry) -> y for linear-map relations.
Formulation = Callable[[torch.Tensor, Params, ConvGeometry], torch.Tensor]

_CHANNELS_LAST = torch.channels_last


def _issue(number: int) -> str:
    return f"https://github.com/pytorch/pytorch/issues/{number}"


def _is_channels_last_only(t: torch.Tensor) -> bool:
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=_CHANNELS_LAST)


def _contiguous_strides(shape: torch.Size) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _read_as_contiguous(t: torch.Tensor) -> torch.Tensor:
    """The same storage read with the strides of a contiguous tensor: what a kernel that ignores
    the strides it is handed computes on."""
    return t.as_strided(t.shape, _contiguous_strides(t.shape), t.storage_offset())


# --- layout and memory format ------------------------------------------------------------------


def channels_last_input_read_as_nchw(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return conv(_read_as_contiguous(x) if _is_channels_last_only(x) else x, p, g)

    return fn


def channels_last_weight_read_as_oihw(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if _is_channels_last_only(p.weight):
            p = replace(p, weight=_read_as_contiguous(p.weight))
        return conv(x, p, g)

    return fn


def strided_input_read_as_contiguous(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        dense = x.is_contiguous() or x.is_contiguous(memory_format=_CHANNELS_LAST)
        return conv(x if dense else _read_as_contiguous(x), p, g)

    return fn


def flatten_in_memory_order(linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if not _is_channels_last_only(x):
            return linear(x, p, g)
        # NHWC memory order fed to a weight laid out for NCHW's flatten(1)
        return F.linear(x.permute(0, 2, 3, 1).flatten(1), block_diagonal(p.weight, g.groups), p.bias)

    return fn


# --- groups, stride, padding -------------------------------------------------------------------

# oneDNN's grouped-conv bug (pytorch/pytorch#18463) needed input channels per group < 16; the
# general-conv strategy draws at most 16 per group, so "few" here is < 4.
FEW_CHANNELS_PER_GROUP = 4


def grouped_conv_wrong_group_filters(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if g.groups > 1 and g.in_per_group < FEW_CHANNELS_PER_GROUP:
            p = replace(p, weight=p.weight.roll(g.out_per_group, dims=0))  # group k gets group k-1's filters
        return conv(x, p, g)

    return fn


def strided_last_row_from_previous(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        y = conv(x, p, g)
        if g.stride[0] > 1 and y.shape[2] >= 2:
            y = torch.cat([y[:, :, :-1], y[:, :, -2:-1]], dim=2)
        return y

    return fn


def zero_padding_replicates_edge(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if g.padding_mode == "zeros" and any(g.pad_amounts()):
            g = replace(g, padding_mode="replicate")
        return conv(x, p, g)

    return fn


def strided_sample_offset_by_one(linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        (sh, sw), (h, w) = g.stride, x.shape[2:]
        if (sh, sw) == (1, 1):
            return linear(x, p, g)
        rows = (torch.arange(0, h, sh) + 1).clamp(max=h - 1).to(x.device)
        cols = (torch.arange(0, w, sw) + 1).clamp(max=w - 1).to(x.device)
        sampled = x.index_select(2, rows).index_select(3, cols)
        return linear(sampled, p, replace(g, stride=(1, 1), height=len(rows), width=len(cols)))

    return fn


def output_size_floor_truncates(linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        (sh, sw), (h, w) = g.stride, x.shape[2:]
        return linear(x, p, g)[:, :, : h // sh, : w // sw]  # floor(H/s), not floor((H-1)/s) + 1

    return fn


def weight_hw_transposed(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if g.kernel[0] == g.kernel[1]:
            p = replace(p, weight=p.weight.transpose(2, 3))
        return conv(x, p, g)

    return fn


# --- bias --------------------------------------------------------------------------------------


def bias_lost_at_batch_one(fn_: Callable) -> Callable:
    def fn(x: torch.Tensor, p: Params, *rest):
        if x.shape[0] == 1 and p.bias is not None:
            p = replace(p, bias=None)
        return fn_(x, p, *rest)

    return fn


def bias_added_twice_channels_last(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        y = conv(x, p, g)
        if p.bias is not None and _is_channels_last_only(x):
            y = y + p.bias.view(1, -1, 1, 1)
        return y

    return fn


# --- precision of the accumulation -------------------------------------------------------------


def _cast_params(p: Params, dtype: torch.dtype) -> Params:
    return Params(*(None if t is None else t.to(dtype) for t in (p.weight, p.bias, p.head_weight, p.head_bias)))


def float64_computed_in_float32(fn_: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if x.dtype != torch.float64:
            return fn_(x, p, g)
        return fn_(x.float(), _cast_params(p, torch.float32), g).double()

    return fn


class _LinearSummedInStorageDtype(torch.autograd.Function):
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

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        return grad @ weight, grad.t() @ x, grad.sum(0) if ctx.has_bias else None


def half_accumulated_in_half(linear: Formulation) -> Formulation:
    """A reduction that keeps its running sum in the storage dtype (pytorch/pytorch#2391, #74438:
    half reductions accumulating in the output): every partial sum rounded to float16/bfloat16."""

    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if x.dtype not in (torch.float16, torch.bfloat16):
            return linear(x, p, g)
        return _LinearSummedInStorageDtype.apply(x.flatten(1), block_diagonal(p.weight, g.groups), p.bias)

    return fn


# --- backward: a wrong gradient for one argument ------------------------------------------------


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


def linear_grad_weight_first_sample(_linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return _LinearGradWeightFirstSample.apply(x.flatten(1), block_diagonal(p.weight, g.groups), p.bias)

    return fn


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


def _explicitly_padded(x: torch.Tensor, g: ConvGeometry) -> torch.Tensor:
    top, bottom, left, right = g.pad_amounts()
    if not any((top, bottom, left, right)):
        return x
    mode = "constant" if g.padding_mode == "zeros" else g.padding_mode
    return F.pad(x, (left, right, top, bottom), mode=mode)


def _conv_with(function: type[_ConvWithBackward]) -> Callable[[Formulation], Formulation]:
    def wrap(_conv: Formulation) -> Formulation:
        def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
            return function.apply(_explicitly_padded(x, g), p.weight, p.bias, g.stride, g.dilation, g.groups)

        return fn

    return wrap


# --- batch tiling ------------------------------------------------------------------------------

TILE_ROWS = 2


def stale_last_batch_tile(fn_: Formulation) -> Formulation:
    """Rows processed in tiles of TILE_ROWS; the last tile's output is not written and still holds
    the previous tile's (pytorch/pytorch#106749, #189495: results that depend on the batch size)."""

    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        y = fn_(x, p, g)
        n = y.shape[0]
        last = ((n - 1) // TILE_ROWS) * TILE_ROWS
        if last == 0:
            return y
        rows = torch.arange(n, device=y.device)
        rows[last:] -= TILE_ROWS
        return y[rows]

    return fn


# --- squeeze and silent shapes -----------------------------------------------------------------


def squeeze_instead_of_flatten(conv_flat: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return conv_flat(x, p, g).squeeze()  # [N, O] -> [O] at batch 1

    return fn


# --- one-term errors: the sharpness probes -----------------------------------------------------


def _without_last_channel(x: torch.Tensor) -> torch.Tensor:
    return x.index_fill(1, torch.tensor([x.shape[1] - 1], device=x.device), 0)


def drop_last_input_channel(fn_: Callable) -> Callable:
    """Input channel C-1 never reaches the sum: one term per output of a 1x1 conv, kh*kw terms
    for a larger kernel (a packing loop one channel short)."""

    def fn(x: torch.Tensor, *rest):
        return fn_(_without_last_channel(x), *rest)

    return fn


def drop_one_input_term(fn_: Callable) -> Callable:
    """One input element (last channel, last row, last column) never reaches the sum: exactly
    one term of every full-kernel output."""

    def fn(x: torch.Tensor, *rest):
        mask = torch.ones_like(x)
        mask[:, -1, -1, -1] = 0
        return fn_(x * mask, *rest)

    return fn


# --- initialisation ----------------------------------------------------------------------------


def _seeded_parameters(case: Case, shape: tuple[int, ...], fan: int, bias_fan: int) -> tuple:
    """torch's default init (kaiming_uniform_(a=sqrt(5)) then U(+-1/sqrt(fan_in)) for the bias,
    torch/nn/modules/conv.py and linear.py, reset_parameters) with the fans given explicitly, in
    the same draw order and arithmetic: with the right fans it reproduces nn.Conv2d/nn.Linear
    bit for bit (tests/test_faults.py checks that)."""
    device = torch.device(case.device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if device.type != "cpu" else "cuda"):
        torch.manual_seed(case.seed)
        weight = torch.empty(shape, dtype=case.torch_dtype, device=device)
        gain = nn.init.calculate_gain("leaky_relu", math.sqrt(5))
        weight.uniform_(-math.sqrt(3.0) * (gain / math.sqrt(fan)), math.sqrt(3.0) * (gain / math.sqrt(fan)))
        bias = None
        if case.geometry.bias:
            bias = torch.empty(shape[0], dtype=case.torch_dtype, device=device)
            bias.uniform_(-1 / math.sqrt(bias_fan), 1 / math.sqrt(bias_fan))
    return weight.flatten(1), bias


def conv_init_with_fans(fan_in: Callable[[ConvGeometry], int]) -> Callable[[Case], tuple]:
    def build(case: Case) -> tuple:
        g = case.geometry
        fan = fan_in(g)
        return _seeded_parameters(case, g.weight_shape, fan, fan)

    return build


def init_fan_in_ignores_groups(_conv_defaults: Callable) -> Callable:
    return conv_init_with_fans(lambda g: g.in_channels * g.kernel[0] * g.kernel[1])


def init_linear_fan_out(_linear_defaults: Callable) -> Callable:
    def build(case: Case) -> tuple:
        g = case.geometry
        fan_in = g.reduction_length()
        return _seeded_parameters(case, (g.out_channels, fan_in), g.out_channels, fan_in)  # bias keeps fan_in

    return build


# --- classifier head ---------------------------------------------------------------------------


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


def cross_entropy_grad_not_averaged(_conv_head: Callable) -> Callable:
    def head(x: torch.Tensor, p: Params, target: torch.Tensor, case: Case) -> tuple:
        logits = conv2d(x, p, case.geometry)
        logits.retain_grad()
        return _CrossEntropyGradNotAveraged.apply(logits, target.view(-1, 1, 1)), logits

    return head


# --- benign: the same sums in another order, or rounded differently ----------------------------


def _same_layout(like: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``values`` in ``like``'s strides (differentiably): a reordering must not change the layout too.
    (flip + flatten of a channels_last batch-1 tensor leaves a batch stride below C*H*W, which
    trips a torch 2.13 CPU bug in the grouped conv weight gradient: docs/robustness.md.)"""
    return torch.empty_like(like).copy_(values)


def reduction_channels_reversed(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        flipped = _same_layout(x, x.unflatten(1, (g.groups, g.in_per_group)).flip(2).flatten(1, 2))
        return conv(flipped, replace(p, weight=_same_layout(p.weight, p.weight.flip(1))), g)

    return fn


def reduction_split_in_halves(_linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        xf, w = x.flatten(1), block_diagonal(p.weight, g.groups)
        half = xf.shape[1] // 2
        return F.linear(xf[:, :half], w[:, :half]) + F.linear(xf[:, half:], w[:, half:], p.bias)

    return fn


def _all_integers(*tensors: torch.Tensor | None) -> bool:
    return all(t is None or bool((t == t.round()).all()) for t in tensors)


def one_ulp_output_noise(fn_: Formulation) -> Formulation:
    """A faithfully (not correctly) rounded kernel: a third of the outputs one ulp up, a third
    one ulp down. Integer data (the exact lane: every sum representable) is left exact, as a
    faithful kernel leaves it; there a one-ulp error would be a real bug."""

    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        y = fn_(x, p, g)
        if _all_integers(x, p.weight, p.bias, p.head_weight, p.head_bias):
            return y
        gen = torch.Generator().manual_seed(y.numel())
        step = (torch.randint(0, 3, y.shape, generator=gen) - 1).to(y.device)
        toward = torch.where(step > 0, math.inf, -math.inf).to(y.dtype)
        noisy = torch.where(step == 0, y.detach(), torch.nextafter(y.detach(), toward))
        return y + (noisy - y.detach())  # noisy forward, the exact backward of the formulation

    return fn


def computed_in_float64(fn_: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return fn_(x.double(), _cast_params(p, torch.float64), g).to(x.dtype)

    return fn


def channels_last_copy(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return conv(x.contiguous(memory_format=_CHANNELS_LAST), p, g)

    return fn


# --- the catalogue -----------------------------------------------------------------------------

_LAYOUT = "layout / memory-format mix-up"
_STRIDES = "non-contiguous tensor read with the wrong strides"
_GROUPS = "grouped conv with few channels per group"
_EDGES = "stride / padding edge rows"
_BIAS = "lost or doubled bias"
_PRECISION = "accumulation in too low a precision"
_BACKWARD = "wrong gradient for one argument"
_TILES = "stale tiles for large batches"
_SHAPES = "silent truncation instead of a shape error"
_INIT = "wrong fan-in in init"
_ONE_TERM = "one dropped term (sharpness probe)"
_BENIGN_ORDER = "benign: reordered reduction"
_BENIGN_ROUNDING = "benign: different rounding"

FAULTS: tuple[Fault, ...] = (
    # layout and strides
    Fault(
        "channels_last_input_read_as_nchw",
        _LAYOUT,
        "conv reads a channels_last input's memory as if it were NCHW",
        "general_conv",
        "conv2d",
        channels_last_input_read_as_nchw,
        issue=_issue(77299),
    ),
    Fault(
        "channels_last_weight_read_as_oihw",
        _STRIDES,
        "conv reads a channels_last (non-contiguous) weight with contiguous strides",
        "general_conv",
        "conv2d",
        channels_last_weight_read_as_oihw,
        issue=_issue(16018),
    ),
    Fault(
        "strided_input_read_as_contiguous",
        _STRIDES,
        "conv reads a non-contiguous input view (every other column) as if it were contiguous",
        "pointwise",
        "conv2d",
        strided_input_read_as_contiguous,
        issue="https://github.com/pytorch/pytorch/pull/16301",
    ),
    Fault(
        "flatten_in_memory_order",
        _LAYOUT,
        "flatten(1) of a channels_last input follows memory (NHWC) order, the weight expects NCHW",
        "full_kernel",
        "flatten_linear",
        flatten_in_memory_order,
    ),
    # groups, stride, padding
    Fault(
        "grouped_conv_wrong_group_filters",
        _GROUPS,
        f"with groups > 1 and < {FEW_CHANNELS_PER_GROUP} input channels per group, group k uses group k-1's filters",
        "general_conv",
        "conv2d",
        grouped_conv_wrong_group_filters,
        issue="https://github.com/pytorch/pytorch/pull/18463",
    ),
    Fault(
        "strided_last_row_from_previous",
        _EDGES,
        "with a vertical stride > 1 the last output row repeats the row above (edge row never computed)",
        "general_conv",
        "conv2d",
        strided_last_row_from_previous,
    ),
    Fault(
        "zero_padding_replicates_edge",
        _EDGES,
        "padding_mode='zeros' pads with the edge values (a non-zero pad value)",
        "general_conv",
        "unfold_matmul",
        zero_padding_replicates_edge,
        issue=_issue(37844),
    ),
    Fault(
        "strided_sample_offset_by_one",
        _EDGES,
        "a strided 1x1 conv samples rows/columns i*s+1 instead of i*s",
        "pointwise",
        "linear_over_channels",
        strided_sample_offset_by_one,
    ),
    Fault(
        "weight_hw_transposed",
        _LAYOUT,
        "a square kernel is read transposed (kh and kw swapped)",
        "general_conv",
        "conv2d",
        weight_hw_transposed,
    ),
    # bias
    Fault(
        "bias_lost_at_batch_one",
        _BIAS,
        "Linear drops its bias when the batch has one row (a separate batch-1 path)",
        "full_kernel",
        "flatten_linear",
        bias_lost_at_batch_one,
        issue=_issue(136338),
    ),
    Fault(
        "head_bias_lost_at_batch_one",
        _BIAS,
        "the Linear classifier head drops its bias at batch 1",
        "classifier_head",
        "linear_head",
        bias_lost_at_batch_one,
    ),
    Fault(
        "bias_added_twice_channels_last",
        _BIAS,
        "on a channels_last input the bias is added by the kernel and again by the epilogue",
        "general_conv",
        "unfold_matmul",
        bias_added_twice_channels_last,
    ),
    # precision
    Fault(
        "float64_computed_in_float32",
        _PRECISION,
        "a float64 dense Linear computed in float32 and cast back",
        "general_conv",
        "dense_linear",
        float64_computed_in_float32,
        issue=_issue(74438),
    ),
    Fault(
        "half_accumulated_in_half",
        _PRECISION,
        "a float16/bfloat16 Linear keeps its running sum in the storage dtype",
        "full_kernel",
        "flatten_linear",
        half_accumulated_in_half,
        issue=_issue(2391),
    ),
    # backward
    Fault(
        "linear_grad_weight_first_sample",
        _BACKWARD,
        "Linear's weight gradient sums over the first sample only (autograd.Function with a wrong backward)",
        "full_kernel",
        "flatten_linear",
        linear_grad_weight_first_sample,
        issue=_issue(51430),
    ),
    Fault(
        "conv_grad_bias_first_position",
        _BACKWARD,
        "conv's bias gradient sums over the batch but only the first output position",
        "pointwise",
        "conv2d",
        _conv_with(_ConvGradBiasFirstPosition),
    ),
    Fault(
        "conv_grad_input_unflipped",
        _BACKWARD,
        "conv's input gradient uses the kernel without the 180-degree flip",
        "general_conv",
        "conv2d",
        _conv_with(_ConvGradInputUnflipped),
        issue=_issue(63314),
    ),
    Fault(
        "cross_entropy_grad_not_averaged",
        _BACKWARD,
        "CrossEntropyLoss(reduction='mean') backward forgets the 1/N of the mean",
        "classifier_head",
        "conv_head",
        cross_entropy_grad_not_averaged,
        issue=_issue(55657),
    ),
    # batch tiles
    Fault(
        "stale_last_batch_tile",
        _TILES,
        f"the fused Linear runs the batch in tiles of {TILE_ROWS} rows; the last tile keeps the previous tile's output",
        "composition",
        "fused_linear",
        stale_last_batch_tile,
        issue=_issue(106749),
    ),
    # shapes
    Fault(
        "output_size_floor_truncates",
        _SHAPES,
        "a strided 1x1 conv's output size computed as floor(H/s): the last row/column silently dropped",
        "pointwise",
        "linear_over_channels",
        output_size_floor_truncates,
        issue=_issue(62539),
    ),
    Fault(
        "squeeze_instead_of_flatten",
        _SHAPES,
        "the full-kernel conv output [N,O,1,1] squeezed: the batch axis vanishes at N=1",
        "full_kernel",
        "conv2d",
        squeeze_instead_of_flatten,
    ),
    # init
    Fault(
        "init_fan_in_ignores_groups",
        _INIT,
        "Conv2d init computes fan-in as C*kh*kw instead of C/groups*kh*kw",
        "init",
        "conv2d",
        init_fan_in_ignores_groups,
        issue=_issue(23854),
    ),
    Fault(
        "init_linear_fan_out",
        _INIT,
        "Linear init uses fan_out (out_features) where kaiming_uniform_ takes fan_in",
        "init",
        "linear",
        init_linear_fan_out,
        issue=_issue(23854),
    ),
    # one dropped term per relation (issue 2's sharpness requirement)
    Fault(
        "drop_channel_pointwise",
        _ONE_TERM,
        "input channel C-1 dropped from the Linear over channels (one term per output)",
        "pointwise",
        "linear_over_channels",
        drop_last_input_channel,
    ),
    Fault(
        "drop_channel_full_kernel",
        _ONE_TERM,
        "input channel C-1 dropped from the flattened Linear (H*W terms per output)",
        "full_kernel",
        "flatten_linear",
        drop_last_input_channel,
    ),
    Fault(
        "drop_term_full_kernel",
        _ONE_TERM,
        "one input element dropped from the flattened Linear (exactly one term per output)",
        "full_kernel",
        "flatten_linear",
        drop_one_input_term,
    ),
    Fault(
        "drop_channel_general_conv",
        _ONE_TERM,
        "input channel C-1 dropped from unfold + matmul",
        "general_conv",
        "unfold_matmul",
        drop_last_input_channel,
    ),
    Fault(
        "drop_channel_composition",
        _ONE_TERM,
        "input channel C-1 dropped from the fused Linear",
        "composition",
        "fused_linear",
        drop_last_input_channel,
    ),
    Fault(
        "drop_channel_classifier_head",
        _ONE_TERM,
        "input channel C-1 dropped from the Linear classifier head",
        "classifier_head",
        "linear_head",
        drop_last_input_channel,
    ),
    # benign
    Fault(
        "reduction_channels_reversed",
        _BENIGN_ORDER,
        "the conv sums its input channels in reverse order (channels and filters flipped together)",
        "general_conv",
        "conv2d",
        reduction_channels_reversed,
        harmful=False,
    ),
    Fault(
        "reduction_split_in_halves",
        _BENIGN_ORDER,
        "the flattened Linear sums each half of K separately, then adds the halves",
        "full_kernel",
        "flatten_linear",
        reduction_split_in_halves,
        harmful=False,
    ),
    Fault(
        "one_ulp_output_noise",
        _BENIGN_ROUNDING,
        "outputs moved one ulp up or down at random (faithful instead of correct rounding)",
        "general_conv",
        "unfold_matmul",
        one_ulp_output_noise,
        harmful=False,
    ),
    Fault(
        "computed_in_float64",
        _BENIGN_ROUNDING,
        "the 1x1 conv computed in float64 and rounded once to the case's dtype",
        "pointwise",
        "conv2d",
        computed_in_float64,
        harmful=False,
    ),
    Fault(
        "channels_last_copy",
        _BENIGN_ROUNDING,
        "the conv's input copied to channels_last first (another kernel, another summation order)",
        "general_conv",
        "conv2d",
        channels_last_copy,
        harmful=False,
    ),
)
