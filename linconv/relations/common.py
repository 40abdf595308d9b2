"""Building blocks the relations share: the conv as nn.ConvNd calls it, padding, flatten + Linear,
and the reduction lengths of a conv's sums. A formulation has the signature
``f(x, params, geometry) -> Tensor``."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from linconv.converters import block_diagonal
from linconv.core.cases import Case, Params
from linconv.core.geometry import ConvGeometry
from linconv.errormodel.intermediates import product_before_bias

__all__ = [
    "CONTROL_DTYPES",
    "CONV_FLAT_PRODUCT",
    "CONV_PRODUCT",
    "MINOR_SHARE",
    "SHARE",
    "Formulation",
    "LARGEST_FULL_KERNEL",
    "LARGEST_GENERAL",
    "LARGEST_POINTWISE",
    "composition_reductions",
    "conv",
    "conv_flat",
    "conv_reductions",
    "flatten_linear",
    "half_precision_examples",
    "pad",
    "requires",
]

Formulation = Callable[[torch.Tensor, Params, ConvGeometry], torch.Tensor]

# The dtypes of the negative controls (a ReLU, a softmax): the half-precision bounds (~1e-2
# relative) are too wide for a control at the strategies' scale.
CONTROL_DTYPES = ("float32", "float64")

# Shares of the profile's examples (Relation.example_share) for the relations added after the 2-D
# ones (Conv1d/Conv3d, transposed convs, patch embeddings): `tox -e verify` must stay within two
# minutes on 2 cores, and at full share they tripled the property run (docs/measurements.md). The
# relations themselves get half; init, the negative controls and the converters, whose 2-D
# counterparts run the same code at full share, a quarter.
SHARE = 0.5
MINOR_SHARE = 0.25


def pad(x: torch.Tensor, g: ConvGeometry) -> torch.Tensor:
    """``x`` with the geometry's explicit padding applied in its padding mode."""
    if not g.padded():
        return x
    mode = "constant" if g.padding_mode == "zeros" else g.padding_mode
    return F.pad(x, g.torch_pad(), mode=mode)


def conv(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """``F.convNd`` as nn.ConvNd calls it: non-zero padding modes pad first, zeros pass through.
    Looked up on ``F`` at each call, as nn.ConvNd does (a performance fault may wrap it)."""
    fn = getattr(F, f"conv{g.rank}d")
    if g.padding_mode != "zeros":
        return fn(pad(x, g), p.weight, p.bias, g.stride, 0, g.dilation, g.groups)
    return fn(x, p.weight, p.bias, g.stride, g.padding, g.dilation, g.groups)


def conv_flat(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """Full-kernel conv output ``[N, O, 1, ...]`` flattened to ``[N, O]`` (flatten, never squeeze)."""
    return conv(x, p, g).flatten(1)


def flatten_linear(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """Full-kernel conv as ``Linear(C*prod(size), O)`` on ``x.flatten(1)``: output ``[N, O]``."""
    return F.linear(x.flatten(1), block_diagonal(p.weight, g.groups), p.bias)


# R of the error model for a formulation of one conv (or its Linear): the product rounded before
# the bias add, |W x| in float64 (linconv.errormodel.intermediates). One object per map, so the
# formulations of a relation share one float64 run.
CONV_PRODUCT = product_before_bias(conv)
CONV_FLAT_PRODUCT = product_before_bias(conv_flat)


def half_precision_examples(geometry: ConvGeometry, *, head_features: int = 0) -> tuple[Case, ...]:
    """Explicit examples at a relation's largest reduction length K in both half-precision dtypes,
    where a reduction in too low a precision shows most: the ci profile's 100 drawn examples
    rarely reach the largest K in float16/bfloat16 (docs/calibration.md, "Search reach").
    bfloat16 on normal values and float16 on wide values (12 binades): each is measured to catch
    the 64-term blocks added in the storage dtype at K = 2048 (tests/test_sharpness.py). A run
    whose ``--dtypes`` leave them out skips them (properties/support.py)."""
    return (
        Case(geometry, dtype="bfloat16", values="normal", head_features=head_features),
        Case(geometry, dtype="float16", values="wide", head_features=head_features),
    )


# The largest K each strategy draws under the default size budget (tests/test_sharpness.py
# derives them from the strategies' rules): a 1x1 conv on 64 channels; a full kernel of 8x8 on
# 32 channels (K = 2048); a 5x5 kernel on 16 channels (K = 400), on a 6x6 input (2x2 outputs).
LARGEST_POINTWISE = ConvGeometry(4, 64, 64, (4, 4))
LARGEST_FULL_KERNEL = ConvGeometry(4, 32, 32, (8, 8), kernel=8)
LARGEST_GENERAL = ConvGeometry(4, 16, 16, (6, 6), kernel=5)


def conv_reductions(g: ConvGeometry, head_features: int = 0) -> dict[str, int]:
    """Terms per sum: output = C/g*prod(k); grad x <= O/g * (output positions a tap can reach);
    grad weight and bias = N * prod(output size)."""
    positions = math.prod(g.output_size())
    return {
        "output": g.reduction_length(),
        "x": g.out_per_group * min(g.taps, positions),
        "weight": g.batch * positions,
        "bias": g.batch * positions,
    }


def composition_reductions(g: ConvGeometry, head_features: int) -> dict[str, int]:
    """Two sums in a row: their lengths add (errors of the first pass through |W2|)."""
    first = conv_reductions(g)
    return {
        "output": first["output"] + g.out_features,
        "x": first["x"] + head_features,
        "weight": first["weight"] + head_features,
        "bias": first["bias"] + head_features,
        # the fused side reaches the head weight through the dense product: + in_features terms
        "head_weight": g.batch + g.in_features,
        "head_bias": g.batch,
    }


# The shape contracts' condition (linconv.relations.shape_contract): an invalid input.
INVALID = (lambda c: bool(c.invalid), "it needs an invalid input (invalid: more_channels, fewer_channels, ...)")

# A geometry with no in or out features is a Linear's (ConvGeometry): only the relations that
# say so (``requires(..., empty_features=True)``) take one; no conv formulation can.
_FEATURES = (
    lambda c: c.geometry.in_channels > 0 and c.geometry.out_channels > 0,
    "it needs in_channels and out_channels >= 1 (torch refuses a conv with no output channel)",
)


VALID = (lambda c: not c.invalid, "it needs a valid input (invalid must be empty: that is the shape contracts')")


def requires(*conditions: tuple[Callable[[Case], bool], str], empty_features: bool = False) -> Callable[[Case], str]:
    """An ``applies_to`` for a Relation: the reason of the first condition a case fails ("" if none).
    Unless ``empty_features``, the case needs in and out features; unless a condition reads
    ``invalid``, a valid input (the shape contracts list their own conditions)."""
    checked = conditions if empty_features else (_FEATURES, *conditions)
    if not any(condition is INVALID for condition in conditions):
        checked = (VALID, *checked)

    def applies_to(case: Case) -> str:
        return next((why for holds, why in checked if not holds(case)), "")

    return applies_to
