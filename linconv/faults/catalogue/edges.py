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
            p = replace(p, weight=p.weight.roll(g.out_per_group, dims=0))  # group k gets group k-1's filters
        return conv(x, p, g)

    return fn


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
