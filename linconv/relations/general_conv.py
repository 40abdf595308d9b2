"""General conv: any ``Conv2d`` (stride, padding incl. ``'same'``/``'valid'`` and every padding
mode, dilation, groups) equals unfold (im2col) + matmul, and equals a dense ("Toeplitz") Linear
on the flattened input."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from linconv.converters import dense_conv_weight
from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.relations.common import (
    CONV_PRODUCT,
    LARGEST_GENERAL,
    conv,
    conv_reductions,
    half_precision_examples,
    pad,
    requires,
)
from linconv.relations.conditions import NO_HEAD, RANK_2
from linconv.relations.record import FormulationSpec, Relation
from linconv.relations.registry import register
from strategies import general_cases

__all__ = ["GENERAL_CONV", "dense_linear", "dense_rounded", "unfold_matmul", "unfold_numel"]


def unfold_matmul(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """im2col: gather every receptive field as a column, then one (grouped) matmul."""
    n = x.shape[0]
    out_h, out_w = g.output_size()
    cols = F.unfold(pad(x, g), g.kernel, dilation=g.dilation, stride=g.stride)
    cols = cols.view(n, g.groups, g.reduction_length(), out_h * out_w)
    w = p.weight.reshape(g.groups, g.out_per_group, g.reduction_length())
    y = torch.matmul(w, cols).reshape(n, g.out_channels, out_h, out_w)
    return y if p.bias is None else y + p.bias.view(1, -1, 1, 1)


def dense_rounded(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor | float:
    """R of the dense Linear (float64; any rank, transposed too): the product before the bias add,
    and the dense weight's entries where a padding mode maps several taps of one output onto one
    input. Those add up in the storage dtype (``scatter_add_`` in dense_conv_weight): ``m`` taps,
    ``m - 1`` roundings, each at most ``u`` times the sum of their ``|w|``."""
    flat = x.flatten(1)
    r: torch.Tensor | float = 0.0
    if p.bias is not None:
        r = F.linear(flat, dense_conv_weight(p.weight, g)).abs()
    if g.padding_mode != "zeros":  # a tap on zero padding adds 0.0: exact
        taps = dense_conv_weight(torch.ones_like(p.weight), g)
        if taps.numel() and float(taps.max()) > 1:
            summed = (taps - 1).clamp_min(0) * dense_conv_weight(p.weight.abs(), g)
            r = r + F.linear(flat.abs(), summed)
    return r if isinstance(r, float) else r.view(x.shape[0], *g.output_shape[1:])


def unfold_numel(g: ConvGeometry) -> int:
    """Elements of the im2col columns: every receptive field of every output position."""
    return g.batch * g.in_channels * g.taps * math.prod(g.output_size())


def dense_linear(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """The conv as one dense ("Toeplitz") Linear on the flattened input."""
    dense = dense_conv_weight(p.weight, g)  # first: it refuses a geometry that does not fit
    positions = g.out_features // g.out_channels
    bias = None if p.bias is None else p.bias.repeat_interleave(positions)
    y = F.linear(x.flatten(1), dense, bias)
    return y.view(x.shape[0], *g.output_shape[1:])


GENERAL_CONV = register(
    Relation(
        name="general_conv",
        statement="any Conv2d equals unfold + matmul and a dense Linear on the flattened input",
        strategy=general_cases,
        formulations={
            "conv2d": FormulationSpec(conv, ("conv",), partial_sums="slow_conv", rounded=CONV_PRODUCT),
            "unfold_matmul": FormulationSpec(
                unfold_matmul, ("matmul",), partial_sums="fold", workspace=unfold_numel, rounded=CONV_PRODUCT
            ),
            "dense_linear": FormulationSpec(
                dense_linear,
                ("matmul",),
                storage_accumulation=("weight",),
                rounded=dense_rounded,
                workspace=ConvGeometry.dense_numel,
                converts_per_call=True,
            ),
        },
        reference=conv,
        grads=("x", "weight", "bias"),
        reductions=conv_reductions,
        calibrated=True,
        cross_device=True,
        property_module="properties/test_general_conv.py",
        examples=half_precision_examples(LARGEST_GENERAL),
        applies_to=requires(RANK_2, NO_HEAD),
    )
)
