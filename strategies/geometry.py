"""Convolution geometries, valid by construction and inside the size budget.

Dimensions are drawn in an order where each upper bound is derived from what was drawn before
and from the budget (linconv.core.config.max_numel), so no example is rejected and none can exhaust
memory. Every draw's lower end is its simplest value, so shrinking moves toward a 1x1 conv on
one channel. ``rank`` picks Conv1d, Conv2d (the default) or Conv3d geometries; a rank-2 draw is
the same sequence of draws as before ranks existed, so derandomised runs keep their examples.
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

from linconv.core import config
from linconv.core.geometry import PADDING_MODES, ConvGeometry

__all__ = [
    "conv_geometries",
    "conv_transpose_geometries",
    "full_kernel_geometries",
    "linear_geometries",
    "patch_geometries",
    "pointwise_geometries",
    "unpatchify_geometries",
]

MAX_BATCH = 4
MAX_GROUPS = 4
MAX_CHANNELS_PER_GROUP = 64
MAX_KERNEL = 5
MAX_DILATION = 2
MAX_STRIDE = 3
MAX_EXTRA_SIZE = 6  # input size drawn in [smallest valid, smallest valid + this]
MAX_POINTWISE_SIZE = 12
MAX_FULL_KERNEL_SIZE = 8
MAX_PATCH = 4  # patch side of patch embeddings / un-patchify (their real sizes, 16 or 4, only cost time)
MAX_GRID = 5  # patches per dimension
RANKS = (1, 2, 3)  # drawn by the strategies of relations that cover every rank, simplest first
# labels of each spatial dimension's draws, by rank (2-D keeps its original labels)
_AXES = {1: ("l",), 2: ("h", "w"), 3: ("d", "h", "w")}
_SIZE_LABELS = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def _cap(budget: int, per_unit: int, upper: int) -> int:
    """Largest count c <= upper with c * per_unit <= budget (at least 1)."""
    return max(1, min(upper, budget // max(per_unit, 1)))


@st.composite
def _channels(
    draw, *, batch: int, spatial_in: int, spatial_out: int, taps: int, budget: int, dense: bool, max_per_group: int
) -> tuple[int, int, int]:
    """(groups, in_channels, out_channels) so that input, output, weight, unfold columns and
    (when ``dense``) the dense matrix all stay within ``budget`` elements."""
    dense_unit = spatial_in * spatial_out if dense else 0

    def in_cost(c: int) -> int:  # cost of the in_channels count c (out_channels counted as c too)
        return max(batch * c * spatial_in, batch * c * taps * spatial_out, c * c * dense_unit, c * c * taps)

    groups = draw(st.integers(1, MAX_GROUPS), label="groups")
    while groups > 1 and in_cost(groups) > budget:
        groups -= 1
    per_group_in = 1
    while per_group_in < max_per_group and in_cost(groups * (per_group_in + 1)) <= budget:
        per_group_in += 1
    cin = groups * draw(st.integers(1, per_group_in), label="in_channels_per_group")

    def out_cost(o: int) -> int:
        return max(batch * o * spatial_out, o * cin * dense_unit, o * (cin // groups) * taps)

    per_group_out = 1
    while per_group_out < max_per_group and out_cost(groups * (per_group_out + 1)) <= budget:
        per_group_out += 1
    cout = groups * draw(st.integers(1, per_group_out), label="out_channels_per_group")
    return groups, cin, cout


def _draw_ints(draw, lo: int, hi, name: str, rank: int) -> tuple[int, ...]:
    """One int per spatial dimension, ``hi`` an int or a function of the dimension's index."""
    return tuple(
        draw(st.integers(lo, hi(axis) if callable(hi) else hi), label=f"{name}{_AXES[rank][axis]}")
        for axis in range(rank)
    )


@st.composite
def _sizes(draw, lows: list[int], highs: list[int], cost, budget: int, rank: int) -> tuple[int, ...]:
    """Spatial sizes in [low, high] per dimension, drawn in order; each upper end is lowered until
    ``cost(sizes)`` (with the dimensions not yet drawn at their low end) fits ``budget``. The
    constants keep 2-D draws far inside the default budget, so only 3-D (and tight budgets) are
    capped."""
    sizes = list(lows)
    for axis in range(rank):
        hi = highs[axis]
        while hi > lows[axis] and cost([*sizes[:axis], hi, *lows[axis + 1 :]]) > budget:
            hi -= 1
        sizes[axis] = draw(st.integers(lows[axis], hi), label=_SIZE_LABELS[rank][axis])
    return tuple(sizes)


def _smallest_size(effective: int, pad_lo: int, pad_hi: int, mode: str) -> int:
    need = max(1, effective - pad_lo - pad_hi)
    if mode == "reflect":
        need = max(need, max(pad_lo, pad_hi) + 1)
    elif mode == "circular":
        need = max(need, pad_lo, pad_hi)
    return need


@st.composite
def conv_geometries(draw, *, max_numel: int | None = None, dense: bool = True, rank: int = 2) -> ConvGeometry:
    """Any ConvNd (``rank`` 1, 2 or 3): non-square kernels, stride, explicit/'same'/'valid' padding
    in every padding mode, dilation and groups. ``dense`` keeps the dense Linear within budget too."""
    budget = max_numel or config.max_numel()
    batch = draw(st.integers(1, MAX_BATCH), label="batch")
    kernel = _draw_ints(draw, 1, MAX_KERNEL, "k", rank)
    dilation = _draw_ints(draw, 1, MAX_DILATION, "d", rank)
    effective = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    padding_style = draw(st.sampled_from(("pairs", "valid", "same")), label="padding_style")
    padding_mode = draw(st.sampled_from(PADDING_MODES), label="padding_mode")
    if padding_style == "same":
        stride = (1,) * rank
        padding: tuple[int, ...] | str = "same"
        pads = [((e - 1) // 2, e - 1 - (e - 1) // 2) for e in effective]
    else:
        stride = _draw_ints(draw, 1, MAX_STRIDE, "s", rank)
        if padding_style == "valid":
            padding, pads = "valid", [(0, 0)] * rank
        else:
            padding = _draw_ints(draw, 0, lambda axis: min(effective[axis] - 1, 3), "p", rank)
            pads = [(p, p) for p in padding]

    def outputs(sizes: list[int]) -> list[int]:
        return [(n + lo + hi - e) // s + 1 for n, (lo, hi), e, s in zip(sizes, pads, effective, stride, strict=True)]

    taps = math.prod(kernel)

    def cost(sizes: list[int]) -> int:  # one channel: what _channels cannot lower
        spatial_in, spatial_out = math.prod(sizes), math.prod(outputs(sizes))
        return max(batch * spatial_in, batch * taps * spatial_out, spatial_in * spatial_out if dense else 0)

    lows = [_smallest_size(e, *pad, padding_mode) for e, pad in zip(effective, pads, strict=True)]
    sizes = draw(_sizes(lows, [lo + MAX_EXTRA_SIZE for lo in lows], cost, budget, rank))
    groups, cin, cout = draw(
        _channels(
            batch=batch,
            spatial_in=math.prod(sizes),
            spatial_out=math.prod(outputs(list(sizes))),
            taps=taps,
            budget=budget,
            dense=dense,
            max_per_group=16,
        )
    )
    bias = draw(st.booleans(), label="bias")
    return ConvGeometry(batch, cin, cout, sizes, kernel, stride, padding, dilation, groups, padding_mode, bias)


@st.composite
def pointwise_geometries(
    draw, *, max_numel: int | None = None, max_stride: int = MAX_STRIDE, dense: bool = False, rank: int = 2
) -> ConvGeometry:
    """1x1 convs: stride (the Linear then sees x[:, :, ::s, ::s]), groups, dilation (no effect).
    ``dense`` keeps the dense [out_features, in_features] matrix within budget too (composition
    fuses through it)."""
    budget = max_numel or config.max_numel()
    batch = draw(st.integers(1, MAX_BATCH), label="batch")

    def cost(sizes: list[int]) -> int:  # stride 1 (drawn next) is the largest output
        spatial = math.prod(sizes)
        return max(batch * spatial, spatial * spatial if dense else 0)

    sizes = draw(_sizes([1] * rank, [MAX_POINTWISE_SIZE] * rank, cost, budget, rank))
    stride = _draw_ints(draw, 1, max_stride, "s", rank)
    dilation = _draw_ints(draw, 1, MAX_DILATION, "d", rank)
    out = math.prod((n - 1) // s + 1 for n, s in zip(sizes, stride, strict=True))
    groups, cin, cout = draw(
        _channels(
            batch=batch,
            spatial_in=math.prod(sizes),
            spatial_out=out,
            taps=1,
            budget=budget,
            dense=dense,
            max_per_group=MAX_CHANNELS_PER_GROUP,
        )
    )
    bias = draw(st.booleans(), label="bias")
    ones = (1,) * rank
    return ConvGeometry(batch, cin, cout, sizes, ones, stride, (0,) * rank, dilation, groups, "zeros", bias)


@st.composite
def full_kernel_geometries(draw, *, max_numel: int | None = None, dense: bool = False, rank: int = 2) -> ConvGeometry:
    """Kernels that cover the whole (possibly non-square) input, no padding: output 1x1."""
    budget = max_numel or config.max_numel()
    batch = draw(st.integers(1, MAX_BATCH), label="batch")
    sizes = tuple(draw(st.integers(1, MAX_FULL_KERNEL_SIZE), label=label) for label in _SIZE_LABELS[rank])
    stride = _draw_ints(draw, 1, MAX_STRIDE, "s", rank)
    groups, cin, cout = draw(
        _channels(
            batch=batch,
            spatial_in=math.prod(sizes),
            spatial_out=1,
            taps=math.prod(sizes),
            budget=budget,
            dense=dense,
            max_per_group=MAX_CHANNELS_PER_GROUP,
        )
    )
    bias = draw(st.booleans(), label="bias")
    return ConvGeometry(batch, cin, cout, sizes, sizes, stride, (0,) * rank, (1,) * rank, groups, "zeros", bias)


def _ranks(rank: int | None) -> st.SearchStrategy[int]:
    return st.sampled_from(RANKS) if rank is None else st.just(rank)


MAX_LINEAR_ROWS = 24  # rows N*prod(size) of a Linear's input: one formulation calls it per row
MAX_LINEAR_FEATURES = 512


@st.composite
def linear_geometries(draw, *, max_numel: int | None = None, empty_features: bool = False) -> ConvGeometry:
    """A Linear over the last dimension of ``[N, *size, C]`` (1 to 3 ``size`` dims drawn), as the
    geometry of the matching 1x1 conv on ``[N, C, *size]`` (stride, dilation and groups 1).
    ``empty_features``: in_features or out_features is 0 (the other drawn as usual)."""
    budget = max_numel or config.max_numel()
    rank = draw(_ranks(None), label="rank")
    batch = draw(st.integers(1, MAX_BATCH), label="batch")
    sizes = draw(_sizes([1] * rank, [MAX_POINTWISE_SIZE] * rank, lambda s: batch * math.prod(s), MAX_LINEAR_ROWS, rank))
    rows = batch * math.prod(sizes)
    cin = draw(st.integers(1, _cap(budget, rows, MAX_LINEAR_FEATURES)), label="in_features")
    cout = draw(st.integers(1, _cap(budget, max(rows, cin), MAX_LINEAR_FEATURES)), label="out_features")
    if empty_features:
        if draw(st.booleans(), label="empty_out_features"):
            cout = 0
        else:
            cin = 0
    bias = draw(st.booleans(), label="bias")
    ones = (1,) * rank
    return ConvGeometry(batch, cin, cout, sizes, ones, ones, (0,) * rank, ones, 1, "zeros", bias)


@st.composite
def conv_transpose_geometries(draw, *, max_numel: int | None = None, rank: int | None = None) -> ConvGeometry:
    """Any ConvTransposeNd (``rank`` 1, 2 or 3; ``None``: drawn): kernel, stride, padding, output
    padding (below the stride or the dilation, as torch allows), dilation and groups. The dense
    matrix (the relation's dense Linear) stays within budget."""
    budget = max_numel or config.max_numel()
    rank = draw(_ranks(rank), label="rank")
    batch = draw(st.integers(1, MAX_BATCH), label="batch")
    kernel = _draw_ints(draw, 1, MAX_KERNEL, "k", rank)
    stride = _draw_ints(draw, 1, MAX_STRIDE, "s", rank)
    dilation = _draw_ints(draw, 1, MAX_DILATION, "d", rank)
    effective = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    output_padding = _draw_ints(draw, 0, lambda axis: max(stride[axis], dilation[axis]) - 1, "op", rank)
    padding = _draw_ints(draw, 0, lambda axis: min(effective[axis] - 1, 3), "p", rank)

    def outputs(sizes: list[int]) -> list[int]:
        return [
            (n - 1) * s - 2 * p + e + op
            for n, s, p, e, op in zip(sizes, stride, padding, effective, output_padding, strict=True)
        ]

    def cost(sizes: list[int]) -> int:
        spatial_in, spatial_out = math.prod(sizes), math.prod(outputs(sizes))
        return max(batch * spatial_in, batch * spatial_out, spatial_in * spatial_out)

    # the smallest input with an output of at least one position
    lows = [
        1 + max(0, -(-(2 * p + 1 - e - op) // s))
        for s, p, e, op in zip(stride, padding, effective, output_padding, strict=True)
    ]
    sizes = draw(_sizes(lows, [lo + MAX_EXTRA_SIZE for lo in lows], cost, budget, rank))
    groups, cin, cout = draw(
        _channels(
            batch=batch,
            spatial_in=math.prod(sizes),
            spatial_out=math.prod(outputs(list(sizes))),
            taps=math.prod(kernel),
            budget=budget,
            dense=True,
            max_per_group=16,
        )
    )
    bias = draw(st.booleans(), label="bias")
    return ConvGeometry(
        batch, cin, cout, sizes, kernel, stride, padding, dilation, groups, "zeros", bias,
        transposed=True, output_padding=output_padding,
    )  # fmt: skip


@st.composite
def patch_geometries(
    draw, *, max_numel: int | None = None, rank: int | None = None, transposed: bool = False
) -> ConvGeometry:
    """Non-overlapping patches (stride == kernel, no padding, no dilation; ``rank`` ``None``: drawn).
    A patch embedding (``transposed=False``) reads an input of ``grid * patch + remainder``
    positions per dimension (the remainder, which the conv drops, included); its transposed
    counterpart, the un-patchify of a decoder, maps a ``grid`` input to ``grid * patch``."""
    budget = max_numel or config.max_numel()
    rank = draw(_ranks(rank), label="rank")
    batch = draw(st.integers(1, MAX_BATCH), label="batch")
    patch = _draw_ints(draw, 1, MAX_PATCH, "patch_", rank)
    grid = _draw_ints(draw, 1, MAX_GRID, "grid_", rank)
    if transposed:
        sizes, spatial_out = grid, math.prod(g * p for g, p in zip(grid, patch, strict=True))
    else:
        sizes = tuple(
            g * p + draw(st.integers(0, p - 1), label=f"remainder_{axis}")
            for g, p, axis in zip(grid, patch, _AXES[rank], strict=True)
        )
        spatial_out = math.prod(grid)
    taps = math.prod(patch)
    groups, cin, cout = draw(
        _channels(
            batch=batch,
            spatial_in=math.prod(sizes),
            spatial_out=spatial_out,
            taps=taps,
            budget=budget,
            dense=False,
            max_per_group=MAX_CHANNELS_PER_GROUP,
        )
    )
    bias = draw(st.booleans(), label="bias")
    return ConvGeometry(
        batch, cin, cout, sizes, patch, patch, (0,) * rank, (1,) * rank, groups, "zeros", bias, transposed=transposed
    )


def unpatchify_geometries(*, max_numel: int | None = None, rank: int | None = None) -> st.SearchStrategy[ConvGeometry]:
    """ConvTransposeNd with stride == kernel (no padding, output padding or dilation): un-patchify."""
    return patch_geometries(max_numel=max_numel, rank=rank, transposed=True)
