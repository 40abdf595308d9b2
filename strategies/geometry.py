"""Convolution geometries, valid by construction and inside the size budget.

Dimensions are drawn in an order where each upper bound is derived from what was drawn before
and from the budget (linconv.core.config.max_numel), so no example is rejected and none can exhaust
memory. Every draw's lower end is its simplest value, so shrinking moves toward a 1x1 conv on
one channel.
"""

from __future__ import annotations

from hypothesis import strategies as st

from linconv.core import config
from linconv.core.geometry import PADDING_MODES, ConvGeometry

__all__ = ["conv_geometries", "full_kernel_geometries", "pointwise_geometries"]

MAX_BATCH = 4
MAX_GROUPS = 4
MAX_CHANNELS_PER_GROUP = 64
MAX_KERNEL = 5
MAX_DILATION = 2
MAX_STRIDE = 3
MAX_EXTRA_SIZE = 6  # input size drawn in [smallest valid, smallest valid + this]
MAX_POINTWISE_SIZE = 12
MAX_FULL_KERNEL_SIZE = 8


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


def _smallest_size(effective: int, pad_lo: int, pad_hi: int, mode: str) -> int:
    need = max(1, effective - pad_lo - pad_hi)
    if mode == "reflect":
        need = max(need, max(pad_lo, pad_hi) + 1)
    elif mode == "circular":
        need = max(need, pad_lo, pad_hi)
    return need


@st.composite
def conv_geometries(draw, *, max_numel: int | None = None, dense: bool = True) -> ConvGeometry:
    """Any Conv2d: non-square kernels, stride, explicit/'same'/'valid' padding in every
    padding mode, dilation and groups. ``dense`` keeps the dense Linear within budget too."""
    budget = max_numel or config.max_numel()
    batch = draw(st.integers(1, MAX_BATCH), label="batch")
    kernel = (draw(st.integers(1, MAX_KERNEL), label="kh"), draw(st.integers(1, MAX_KERNEL), label="kw"))
    dilation = (draw(st.integers(1, MAX_DILATION), label="dh"), draw(st.integers(1, MAX_DILATION), label="dw"))
    effective = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    padding_style = draw(st.sampled_from(("pairs", "valid", "same")), label="padding_style")
    padding_mode = draw(st.sampled_from(PADDING_MODES), label="padding_mode")
    if padding_style == "same":
        stride = (1, 1)
        padding: tuple[int, int] | str = "same"
        pads = [((e - 1) // 2, e - 1 - (e - 1) // 2) for e in effective]
    else:
        stride = (draw(st.integers(1, MAX_STRIDE), label="sh"), draw(st.integers(1, MAX_STRIDE), label="sw"))
        if padding_style == "valid":
            padding, pads = "valid", [(0, 0), (0, 0)]
        else:
            ph = draw(st.integers(0, min(effective[0] - 1, 3)), label="ph")
            pw = draw(st.integers(0, min(effective[1] - 1, 3)), label="pw")
            padding, pads = (ph, pw), [(ph, ph), (pw, pw)]
    sizes = []
    for axis, label in enumerate(("height", "width")):
        lo = _smallest_size(effective[axis], *pads[axis], padding_mode)
        sizes.append(draw(st.integers(lo, lo + MAX_EXTRA_SIZE), label=label))
    height, width = sizes
    out_h = (height + sum(pads[0]) - effective[0]) // stride[0] + 1
    out_w = (width + sum(pads[1]) - effective[1]) // stride[1] + 1
    groups, cin, cout = draw(
        _channels(
            batch=batch,
            spatial_in=height * width,
            spatial_out=out_h * out_w,
            taps=kernel[0] * kernel[1],
            budget=budget,
            dense=dense,
            max_per_group=16,
        )
    )
    bias = draw(st.booleans(), label="bias")
    return ConvGeometry(
        batch, cin, cout, (height, width), kernel, stride, padding, dilation, groups, padding_mode, bias
    )


@st.composite
def pointwise_geometries(
    draw, *, max_numel: int | None = None, max_stride: int = MAX_STRIDE, dense: bool = False
) -> ConvGeometry:
    """1x1 convs: stride (the Linear then sees x[:, :, ::s, ::s]), groups, dilation (no effect).
    ``dense`` keeps the dense [out_features, in_features] matrix within budget too (composition
    fuses through it)."""
    budget = max_numel or config.max_numel()
    batch = draw(st.integers(1, MAX_BATCH), label="batch")
    height = draw(st.integers(1, MAX_POINTWISE_SIZE), label="height")
    width = draw(st.integers(1, MAX_POINTWISE_SIZE), label="width")
    stride = (draw(st.integers(1, max_stride), label="sh"), draw(st.integers(1, max_stride), label="sw"))
    dilation = (draw(st.integers(1, MAX_DILATION), label="dh"), draw(st.integers(1, MAX_DILATION), label="dw"))
    out_hw = ((height - 1) // stride[0] + 1) * ((width - 1) // stride[1] + 1)
    groups, cin, cout = draw(
        _channels(
            batch=batch,
            spatial_in=height * width,
            spatial_out=out_hw,
            taps=1,
            budget=budget,
            dense=dense,
            max_per_group=MAX_CHANNELS_PER_GROUP,
        )
    )
    bias = draw(st.booleans(), label="bias")
    return ConvGeometry(batch, cin, cout, (height, width), (1, 1), stride, (0, 0), dilation, groups, "zeros", bias)


@st.composite
def full_kernel_geometries(draw, *, max_numel: int | None = None, dense: bool = False) -> ConvGeometry:
    """Kernels that cover the whole (possibly non-square) input, no padding: output 1x1."""
    budget = max_numel or config.max_numel()
    batch = draw(st.integers(1, MAX_BATCH), label="batch")
    height = draw(st.integers(1, MAX_FULL_KERNEL_SIZE), label="height")
    width = draw(st.integers(1, MAX_FULL_KERNEL_SIZE), label="width")
    stride = (draw(st.integers(1, MAX_STRIDE), label="sh"), draw(st.integers(1, MAX_STRIDE), label="sw"))
    groups, cin, cout = draw(
        _channels(
            batch=batch,
            spatial_in=height * width,
            spatial_out=1,
            taps=height * width,
            budget=budget,
            dense=dense,
            max_per_group=MAX_CHANNELS_PER_GROUP,
        )
    )
    bias = draw(st.booleans(), label="bias")
    return ConvGeometry(
        batch, cin, cout, (height, width), (height, width), stride, (0, 0), (1, 1), groups, "zeros", bias
    )
