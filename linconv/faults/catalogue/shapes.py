"""Shapes and tiles: silent truncation instead of a shape error, stale tiles for some batch sizes."""

from __future__ import annotations

import copy

import torch

from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.faults.catalogue.tensors import issue
from linconv.faults.record import fault
from linconv.relations.common import Formulation

TILE_ROWS = 2


@fault(
    name="stale_last_batch_tile_3d",
    relation="composition_3d",
    formulation="fused_linear",
    bug_class="tiles",
    description=f"the fused Linear after a Conv3d runs the batch in tiles of {TILE_ROWS} rows; "
    "the last tile keeps the previous tile's output",
)
@fault(
    name="stale_last_batch_tile_1d",
    relation="composition_1d",
    formulation="fused_linear",
    bug_class="tiles",
    description=f"the fused Linear after a Conv1d runs the batch in tiles of {TILE_ROWS} rows; "
    "the last tile keeps the previous tile's output",
)
@fault(
    relation="composition",
    formulation="fused_linear",
    bug_class="tiles",
    description=f"the fused Linear runs the batch in tiles of {TILE_ROWS} rows; "
    "the last tile keeps the previous tile's output",
    issue=issue(106749),
)
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


@fault(
    relation="pointwise",
    formulation="linear_over_channels",
    bug_class="shapes",
    description="a strided 1x1 conv's output size computed as floor(H/s): the last row/column silently dropped",
    issue=issue(62539),
)
def output_size_floor_truncates(linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        (sh, sw), (h, w) = g.stride, x.shape[2:]
        return linear(x, p, g)[:, :, : h // sh, : w // sw]  # floor(H/s), not floor((H-1)/s) + 1

    return fn


@fault(
    relation="full_kernel",
    formulation="conv2d",
    bug_class="shapes",
    description="the full-kernel conv output [N,O,1,1] squeezed: the batch axis vanishes at N=1",
)
def squeeze_instead_of_flatten(conv_flat: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return conv_flat(x, p, g).squeeze()  # [N, O] -> [O] at batch 1

    return fn


@fault(
    relation="shape_contract_linear",
    formulation="flatten_linear",
    bug_class="shapes",
    description="a Linear handed more features than it takes silently drops the extra ones instead of raising",
)
def linear_truncates_extra_features(linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return linear(x[:, : p.weight.shape[1]], p, g)  # the conv layout's channels are the features

    return fn


@fault(
    relation="shape_contract_conv",
    formulation="conv2d",
    bug_class="shapes",
    description="groups that do not divide the channels are silently replaced by the groups the weight implies",
)
def conv_groups_taken_from_the_weight(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if x.shape[1] % g.groups:
            implied = x.shape[1] // p.weight.shape[1]
            if implied >= 1 and x.shape[1] % implied == 0 and p.weight.shape[0] % implied == 0:
                g = copy.copy(g)
                object.__setattr__(g, "groups", implied)
        return conv(x, p, g)

    return fn
