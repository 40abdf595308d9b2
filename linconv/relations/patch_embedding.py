"""Patch embedding: a conv with stride == kernel (no padding, no dilation), the stem of a vision
transformer (``Conv2d(3, 768, 16, stride=16)``) or of ConvNeXt (``Conv2d(3, 96, 4, stride=4)``),
equals cutting the input into non-overlapping patches and one Linear on each patch
(:func:`linconv.converters.patchify`); a remainder that is not a whole patch is dropped by both.
Every rank is drawn by the same relation (1-D: sequence patches; 3-D: video tubelets).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from linconv import converters
from linconv.converters import block_diagonal, patchify
from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.relations.common import CONV_PRODUCT, MINOR_SHARE, SHARE, conv, half_precision_examples, requires
from linconv.relations.conditions import CONV, NO_HEAD, PATCH
from linconv.relations.converted import conv_module, converter_relation
from linconv.relations.record import FormulationSpec, Relation
from linconv.relations.registry import register
from strategies import patch_embedding_cases

__all__ = ["PATCH_EMBEDDING", "patch_linear", "patch_reductions"]

_MODULE = "properties/test_patch_embedding.py"
# the largest K the strategy draws: 4x4x4 patches of 32 channels (K = 2048)
LARGEST_PATCH_EMBEDDING = ConvGeometry(4, 32, 32, (8, 8, 8), kernel=4, stride=4)


def patch_linear(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """Patches ``[N, *grid, C*prod(k)]``, one Linear, channels back in front: ``[N, O, *grid]``."""
    return F.linear(patchify(x, g.kernel), block_diagonal(p.weight, g.groups), p.bias).movedim(-1, 1)


def patch_reductions(g: ConvGeometry, head_features: int = 0) -> dict[str, int]:
    """Terms per sum: output = C/g * prod(k); grad x = O/g (an input element lies in one patch at
    most); grad weight and bias = N * patches."""
    patches = math.prod(g.output_size())
    return {
        "output": g.reduction_length(),
        "x": g.out_per_group,
        "weight": g.batch * patches,
        "bias": g.batch * patches,
    }


def converted_patch_embedding(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    return converters.patch_embedding_to_linear(conv_module(p, g))(patchify(x, g.kernel)).movedim(-1, 1)


PATCH_EMBEDDING = register(
    Relation(
        name="patch_embedding",
        statement="a conv with stride == kernel (a patch embedding) equals non-overlapping patches and one Linear",
        strategy=patch_embedding_cases,
        formulations={
            "conv": FormulationSpec(conv, ("conv",), partial_sums="slow_conv", rounded=CONV_PRODUCT),
            "patch_linear": FormulationSpec(patch_linear, ("matmul",), rounded=CONV_PRODUCT),
        },
        reference=conv,
        grads=("x", "weight", "bias"),
        reductions=patch_reductions,
        calibrated=True,
        cross_device=True,
        property_module=_MODULE,
        applies_to=requires(CONV, PATCH, NO_HEAD),
        examples=half_precision_examples(LARGEST_PATCH_EMBEDDING),
        example_share=SHARE,
    )
)

converter_relation(
    "converted_patch_embedding",
    "patch_embedding_to_linear(conv) on patchify(x) equals the conv",
    converted_patch_embedding,
    conv,
    patch_embedding_cases,
    patch_reductions,
    CONV,
    PATCH,
    NO_HEAD,
    module=_MODULE,
    rounded=CONV_PRODUCT,
    examples=half_precision_examples(LARGEST_PATCH_EMBEDDING),
    example_share=MINOR_SHARE,
)
