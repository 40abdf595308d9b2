"""Pointwise: ``Conv2d(C, O, 1)`` equals ``Linear(C, O)`` over the channel axis (strided: on
``x[:, :, ::s, ::s]``; grouped: a block-diagonal Linear)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from linconv.converters import block_diagonal
from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.relations.common import (
    CONV_PRODUCT,
    LARGEST_POINTWISE,
    conv,
    conv_reductions,
    half_precision_examples,
    requires,
)
from linconv.relations.conditions import NO_HEAD, POINTWISE, RANK_2
from linconv.relations.record import FormulationSpec, Relation
from linconv.relations.registry import register
from strategies import pointwise_cases

__all__ = ["POINTWISE", "linear_over_channels"]


def linear_over_channels(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """Pointwise conv as a Linear over the channel axis: subsample, NCHW->NHWC, Linear, back."""
    sh, sw = g.stride
    nhwc = x[:, :, ::sh, ::sw].permute(0, 2, 3, 1)
    return F.linear(nhwc, block_diagonal(p.weight, g.groups), p.bias).permute(0, 3, 1, 2)


POINTWISE = register(
    Relation(
        name="pointwise",
        statement="Conv2d(C, O, 1) equals Linear(C, O) over the channel axis "
        "(strided: on x[:, :, ::s, ::s]; grouped: block-diagonal)",
        strategy=pointwise_cases,
        formulations={
            "conv2d": FormulationSpec(conv, ("conv",), partial_sums="slow_conv", rounded=CONV_PRODUCT),
            "linear_over_channels": FormulationSpec(linear_over_channels, ("matmul",), rounded=CONV_PRODUCT),
        },
        reference=conv,
        grads=("x", "weight", "bias"),
        reductions=conv_reductions,
        calibrated=True,
        cross_device=True,
        property_module="properties/test_pointwise.py",
        examples=half_precision_examples(LARGEST_POINTWISE),
        applies_to=requires(RANK_2, POINTWISE, NO_HEAD),
    )
)
