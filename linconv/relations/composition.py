"""Composition: ``Linear . Conv2d`` (1x1, full-kernel or general) with no activation between them
equals ONE fused Linear, forward and backward; with a ReLU between them it does not (negative
control)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from linconv.converters import fused_linear_parameters
from linconv.core.cases import Case, Params
from linconv.core.geometry import ConvGeometry
from linconv.errormodel.constants import RELU_EFFECT
from linconv.errormodel.intermediates import parameters_rounded_once, stored_hidden_layer
from linconv.measure import float64_cpu
from linconv.relations.common import (
    CONTROL_DTYPES,
    LARGEST_FULL_KERNEL,
    composition_reductions,
    conv,
    half_precision_examples,
    requires,
)
from linconv.relations.conditions import HEAD, RANK_2
from linconv.relations.record import FormulationSpec, NegativeControl, Relation
from linconv.relations.registry import register
from strategies import composition_cases, dtypes, value_kinds

__all__ = [
    "COMPOSITION",
    "COMPOSITION_WITH_ACTIVATION",
    "FUSED_ROUNDED",
    "HIDDEN_ROUNDED",
    "conv_relu_linear",
    "conv_then_linear",
    "fused_linear",
    "fused_parameters",
]


def conv_then_linear(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """``Linear(Conv2d(x).flatten(1))`` with no activation between them."""
    return F.linear(conv(x, p, g).flatten(1), p.head_weight, p.head_bias)


def conv_relu_linear(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """The negative control: a ReLU between conv and Linear; no single Linear equals it."""
    return F.linear(F.relu(conv(x, p, g)).flatten(1), p.head_weight, p.head_bias)


def fused_parameters(p: Params, g: ConvGeometry) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The fused Linear's weight and bias (formed in float64, rounded once to the dtype)."""
    if p.head_weight is None:
        raise ValueError("fused_parameters: params.head_weight is required (the Linear after the conv)")
    return fused_linear_parameters(p.weight, p.bias, p.head_weight, p.head_bias, g)


def fused_linear(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """The one Linear that ``Linear . Conv2d`` collapses to, on ``x.flatten(1)``."""
    weight, bias = fused_parameters(p, g)
    return F.linear(x.flatten(1), weight, bias)


# R: the fused weight and bias are rounded once, then the product before the bias add
FUSED_ROUNDED = parameters_rounded_once(fused_parameters)
# R: the conv's product before its bias, its stored output through |head_weight|, the head's product
HIDDEN_ROUNDED = stored_hidden_layer(conv)

_FUSED = FormulationSpec(
    fused_linear, ("matmul",), workspace=ConvGeometry.dense_numel, converts_per_call=True, rounded=FUSED_ROUNDED
)


def relu_effect(case: Case) -> float:
    """How far (relative to the largest output) the ReLU moves the map, in float64."""
    t = case.build()
    p = Params(*(None if v is None else float64_cpu(v) for v in (t.weight, t.bias, t.head_weight, t.head_bias)))
    x = float64_cpu(t.x)
    plain = conv_then_linear(x, p, case.geometry)
    if plain.numel() == 0:  # an empty batch cannot tell the two maps apart
        return 0.0
    gap = (conv_relu_linear(x, p, case.geometry) - plain).abs().max()
    return float(gap / plain.abs().max().clamp_min(torch.finfo(torch.float64).tiny))


COMPOSITION = register(
    Relation(
        name="composition",
        statement="Linear . Conv2d with no activation equals one fused Linear",
        strategy=composition_cases,
        formulations={
            "conv_then_linear": FormulationSpec(
                conv_then_linear, ("conv", "matmul"), partial_sums="slow_conv", rounded=HIDDEN_ROUNDED
            ),
            "fused_linear": _FUSED,
        },
        reference=conv_then_linear,
        grads=("x", "weight", "bias", "head_weight", "head_bias"),
        reductions=composition_reductions,
        calibrated=True,
        cross_device=True,
        property_module="properties/test_composition.py",
        examples=half_precision_examples(LARGEST_FULL_KERNEL, head_features=16),
        applies_to=requires(RANK_2, HEAD),
        notes="the fused parameters are formed differentiably, so gradients reach both layers' parameters",
    )
)


def _control_cases():
    # Normal values in float32/float64: about half the conv outputs are negative. The
    # half-precision bounds (~1e-2 relative) are too wide for a control at this scale.
    return composition_cases(values=value_kinds(allowed=("normal",)), dtype_names=dtypes(allowed=CONTROL_DTYPES))


COMPOSITION_WITH_ACTIVATION = register(
    Relation(
        name="composition_with_activation",
        statement="negative control: with a ReLU between conv and Linear, the fused Linear does NOT match",
        strategy=_control_cases,
        formulations={"fused_linear": _FUSED},
        reference=conv_relu_linear,
        reductions=composition_reductions,
        negative_control=NegativeControl(effect=relu_effect, min_effect=RELU_EFFECT, decisive=("output",)),
        dtypes=CONTROL_DTYPES,
        property_module="properties/test_composition.py",
        applies_to=requires(RANK_2, HEAD),
    )
)
