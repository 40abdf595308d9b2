"""Groups, stride and padding: the edge rows, the padding value, the filters of each group."""

from __future__ import annotations

from dataclasses import replace

import torch

from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.faults.catalogue.tensors import issue
from linconv.faults.record import fault
from linconv.relations.common import Formulation

# oneDNN's grouped-conv bug (pytorch/pytorch#18463) needed input channels per group < 16; the
# general-conv strategy draws at most 16 per group, so "few" here is < 4.
FEW_CHANNELS_PER_GROUP = 4


@fault(
    name="grouped_conv_transpose_wrong_group_filters",
    relation="conv_transpose",
    formulation="conv_transpose",
    bug_class="groups",
    description=f"a transposed conv with groups > 1 and < {FEW_CHANNELS_PER_GROUP} input channels per group: "
    "group k uses group k-1's filters",
)
@fault(
    relation="general_conv",
    formulation="conv2d",
    bug_class="groups",
    description=f"with groups > 1 and < {FEW_CHANNELS_PER_GROUP} input channels per group, "
    "group k uses group k-1's filters",
    issue="https://github.com/pytorch/pytorch/pull/18463",
)
def grouped_conv_wrong_group_filters(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if g.groups > 1 and g.in_per_group < FEW_CHANNELS_PER_GROUP:
            # group k gets group k-1's filters (a transposed weight [C, O/g, k] has its groups along C)
            shift = g.in_per_group if g.transposed else g.out_per_group
            p = replace(p, weight=p.weight.roll(shift, dims=0))
        return conv(x, p, g)

    return fn


@fault(
    name="strided_last_position_from_previous_1d",
    relation="general_conv_1d",
    formulation="conv1d",
    bug_class="edges",
    description="with stride > 1 the last output position repeats the one before (edge never computed)",
)
@fault(
    name="strided_last_plane_from_previous_3d",
    relation="general_conv_3d",
    formulation="conv3d",
    bug_class="edges",
    description="with a depth stride > 1 the last output plane repeats the plane before (edge never computed)",
)
@fault(
    relation="general_conv",
    formulation="conv2d",
    bug_class="edges",
    description="with a vertical stride > 1 the last output row repeats the row above (edge row never computed)",
)
def strided_last_row_from_previous(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        y = conv(x, p, g)
        if g.stride[0] > 1 and y.shape[2] >= 2:
            y = torch.cat([y[:, :, :-1], y[:, :, -2:-1]], dim=2)
        return y

    return fn


@fault(
    relation="general_conv",
    formulation="unfold_matmul",
    bug_class="edges",
    description="padding_mode='zeros' pads with the edge values (a non-zero pad value)",
    issue=issue(37844),
)
def zero_padding_replicates_edge(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if g.padding_mode == "zeros" and g.padded():
            g = replace(g, padding_mode="replicate")
        return conv(x, p, g)

    return fn


@fault(
    relation="pointwise",
    formulation="linear_over_channels",
    bug_class="edges",
    description="a strided 1x1 conv samples rows/columns i*s+1 instead of i*s",
)
def strided_sample_offset_by_one(linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        (sh, sw), (h, w) = g.stride, x.shape[2:]
        if (sh, sw) == (1, 1):
            return linear(x, p, g)
        rows = (torch.arange(0, h, sh) + 1).clamp(max=h - 1).to(x.device)
        cols = (torch.arange(0, w, sw) + 1).clamp(max=w - 1).to(x.device)
        sampled = x.index_select(2, rows).index_select(3, cols)
        return linear(sampled, p, replace(g, stride=(1, 1), size=(len(rows), len(cols))))

    return fn


@fault(
    relation="conv_transpose",
    formulation="conv_transpose",
    bug_class="edges",
    description="the output_padding positions at the end of each dimension are never written (left zero)",
)
def output_padding_left_zero(conv_transpose: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        y = conv_transpose(x, p, g)
        for axis, extra in enumerate(g.output_padding):  # type: ignore[arg-type]
            if extra:
                keep = torch.ones(y.shape[2 + axis], dtype=y.dtype, device=y.device)
                keep[-extra:] = 0
                y = y * keep.view(-1, *[1] * (g.rank - 1 - axis))
        return y

    return fn


@fault(
    relation="patch_embedding",
    formulation="patch_linear",
    bug_class="edges",
    description="an input that is not a whole number of patches loses its remainder at the start "
    "(first rows/columns dropped) instead of at the end",
)
def patch_remainder_cropped_at_the_start(patches: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        starts = [n % k for n, k in zip(x.shape[2:], g.kernel, strict=True)]
        return patches(x[(slice(None), slice(None), *(slice(start, None) for start in starts))], p, g)

    return fn
