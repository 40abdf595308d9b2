"""Empty dimensions: a batch of no example, a Linear with no in features, handled wrongly (an
early return with the wrong shape or without the bias, a size inferred where there is none)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from linconv.converters import block_diagonal
from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.faults.record import fault
from linconv.relations.common import Formulation


@fault(
    relation="general_conv",
    formulation="conv2d",
    bug_class="empty",
    description="on an empty batch the conv returns early with an output of the input's spatial size",
)
def empty_batch_output_of_input_size(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if x.shape[0] == 0:
            return x.new_zeros((0, g.out_channels, *x.shape[2:]))
        return conv(x, p, g)

    return fn


@fault(
    relation="full_kernel",
    formulation="flatten_linear",
    bug_class="empty",
    description="flatten as x.reshape(N, -1): an empty batch raises (no size to infer -1 from)",
)
def flatten_infers_size_of_empty_batch(_linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return F.linear(x.reshape(x.shape[0], -1), block_diagonal(p.weight, g.groups), p.bias)

    return fn


@fault(
    relation="linear_empty_features",
    formulation="linear_nd",
    bug_class="empty",
    description="a Linear with no in features returns zeros (the empty sum) and forgets its bias",
)
def no_features_returns_zeros(linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if x.shape[1] == 0:
            return x.new_zeros((x.shape[0], g.out_channels, *x.shape[2:]))
        return linear(x, p, g)

    return fn
