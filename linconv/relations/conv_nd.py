"""Conv1d and Conv3d: the Conv2d relations in one and three dimensions.

For each rank N in (1, 3), registered by :func:`register_rank`:

- ``pointwise_Nd``: ``ConvNd(C, O, 1)`` equals ``Linear(C, O)`` over the channel axis (strided:
  on ``x[:, :, ::s, ...]``; grouped: block-diagonal). With the ``channels_last`` layout a Conv1d
  input is stored ``[N, L, C]`` (what a sequence model hands over after ``transpose(1, 2)``) and a
  Conv3d input ``channels_last_3d``;
- ``full_kernel_Nd``: a kernel that covers the input equals ``Linear(C*prod(size), O)`` on
  ``x.flatten(1)``;
- ``general_conv_Nd``: any ConvNd equals im2col (``Tensor.unfold`` per spatial dimension:
  ``F.unfold`` is 2-D only) + matmul, and a dense Linear;
- ``composition_Nd``: ``Linear . ConvNd`` with no activation equals one fused Linear; and its
  negative control ``composition_Nd_with_activation`` (a ReLU between them);
- ``init_Nd``: ``ConvNd(C, O, k, groups=g)`` and ``Linear(C/g*prod(k), O)`` get bit-identical
  default parameters under one seed;
- ``converted_pointwise_Nd`` / ``converted_full_kernel_Nd``: the converters' modules compute the conv.

The 2-D relations keep their own modules and names (pointwise, full_kernel, ...).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from linconv import converters
from linconv.converters import block_diagonal
from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.errormodel.constants import RELU_EFFECT
from linconv.relations.common import (
    CONTROL_DTYPES,
    CONV_FLAT_PRODUCT,
    CONV_PRODUCT,
    MINOR_SHARE,
    SHARE,
    composition_reductions,
    conv,
    conv_flat,
    conv_reductions,
    flatten_linear,
    half_precision_examples,
    pad,
    requires,
)
from linconv.relations.composition import COMPOSITION, conv_relu_linear, conv_then_linear, relu_effect
from linconv.relations.conditions import FULL_KERNEL, HEAD, NO_HEAD, POINTWISE, UNSTRIDED, rank
from linconv.relations.converted import conv_module, converter_relation
from linconv.relations.general_conv import GENERAL_CONV, unfold_numel
from linconv.relations.init import INIT
from linconv.relations.record import FormulationSpec, NegativeControl, Relation
from linconv.relations.registry import register
from strategies import composition_cases, dtypes, full_kernel_cases, general_cases, pointwise_cases, value_kinds

__all__ = ["RANKS", "linear_over_channels_nd", "register_rank", "unfold_matmul_nd"]

RANKS = (1, 3)  # rank 2 is the original family (pointwise.py, full_kernel.py, ...)
_NAMES = {1: "Conv1d", 3: "Conv3d"}


def linear_over_channels_nd(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """Pointwise conv as a Linear over the channel axis: subsample, channels last, Linear, back."""
    sampled = x[(slice(None), slice(None), *(slice(None, None, s) for s in g.stride))]
    return F.linear(sampled.movedim(1, -1), block_diagonal(p.weight, g.groups), p.bias).movedim(-1, 1)


def unfold_matmul_nd(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """im2col in any rank: one ``Tensor.unfold`` per spatial dimension (window = dilated kernel,
    step = stride, every d-th element kept), then one (grouped) matmul."""
    n, r = x.shape[0], g.rank
    cols = pad(x, g)
    for axis, (span, step, dilation) in enumerate(zip(g.effective_kernel(), g.stride, g.dilation, strict=True)):
        cols = cols.unfold(2 + axis, span, step)[..., ::dilation]  # the window becomes the last dimension
    out = g.output_size()
    # [N, C, o_1..o_r, k_1..k_r] -> [N, C, k_1..k_r, o_1..o_r] -> [N, groups, C/groups * taps, positions]
    cols = cols.permute(0, 1, *range(2 + r, 2 + 2 * r), *range(2, 2 + r))
    cols = cols.reshape(n, g.groups, g.reduction_length(), math.prod(out))  # no -1: n may be 0
    w = p.weight.reshape(g.groups, g.out_per_group, g.reduction_length())
    y = torch.matmul(w, cols).reshape(n, g.out_channels, *out)
    return y if p.bias is None else y + p.bias.view(1, -1, *[1] * r)


def converted_pointwise_nd(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    return converters.conv1x1_to_linear(conv_module(p, g))(x.movedim(1, -1)).movedim(-1, 1)


def converted_full_kernel_nd(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    return converters.full_kernel_conv_to_linear(conv_module(p, g))(x.flatten(1))


def _control_cases(r: int):
    # as composition_with_activation: normal values in float32/float64 (about half the conv
    # outputs negative); half-precision bounds are too wide for a control at this scale
    return lambda: composition_cases(
        values=value_kinds(allowed=("normal",)), dtype_names=dtypes(allowed=CONTROL_DTYPES), rank=r
    )


# The largest K each rank's strategies draw under the default size budget (tests/test_sharpness.py
# checks them against the strategies): the explicit half-precision examples sit there.
LARGEST = {
    1: {
        "pointwise": ConvGeometry(4, 64, 64, (4,)),
        "full_kernel": ConvGeometry(4, 64, 32, (8,), kernel=8),  # K = 512
        "general_conv": ConvGeometry(4, 16, 16, (6,), kernel=5),  # K = 80
    },
    3: {
        "pointwise": ConvGeometry(4, 64, 64, (2, 2, 2)),
        "full_kernel": ConvGeometry(4, 11, 11, (8, 8, 8), kernel=8),  # K = 5632
        "general_conv": ConvGeometry(4, 16, 16, (5, 5, 5), kernel=5),  # K = 2000
    },
}


def register_rank(r: int) -> dict[str, Relation]:
    """Register the Conv2d relations' counterparts for rank ``r`` (1 or 3); returns them by name."""
    conv_name, module = _NAMES[r], f"properties/test_conv{r}d.py"
    conv_spec = FormulationSpec(conv, ("conv",), partial_sums="slow_conv", rounded=CONV_PRODUCT)
    largest = LARGEST[r]
    is_rank = rank(r)
    relations = [
        Relation(
            name=f"pointwise_{r}d",
            statement=f"{conv_name}(C, O, 1) equals Linear(C, O) over the channel axis "
            "(strided: on every s-th position; grouped: block-diagonal)",
            strategy=lambda: pointwise_cases(rank=r),
            formulations={
                conv_name.lower(): conv_spec,
                "linear_over_channels": FormulationSpec(linear_over_channels_nd, ("matmul",), rounded=CONV_PRODUCT),
            },
            reference=conv,
            grads=("x", "weight", "bias"),
            reductions=conv_reductions,
            calibrated=True,
            cross_device=True,
            property_module=module,
            applies_to=requires(is_rank, POINTWISE, NO_HEAD),
            examples=half_precision_examples(largest["pointwise"]),
            example_share=SHARE,
        ),
        Relation(
            name=f"full_kernel_{r}d",
            statement=f"a {conv_name} whose kernel covers the input equals Linear(C*prod(size), O) on x.flatten(1)",
            strategy=lambda: full_kernel_cases(rank=r),
            formulations={
                conv_name.lower(): dataclasses.replace(conv_spec, fn=conv_flat, rounded=CONV_FLAT_PRODUCT),
                "flatten_linear": FormulationSpec(flatten_linear, ("matmul",), rounded=CONV_FLAT_PRODUCT),
            },
            reference=conv_flat,
            grads=("x", "weight", "bias"),
            reductions=conv_reductions,
            calibrated=True,
            cross_device=True,
            property_module=module,
            applies_to=requires(is_rank, FULL_KERNEL, NO_HEAD),
            examples=half_precision_examples(largest["full_kernel"]),
            example_share=SHARE,
        ),
        Relation(
            name=f"general_conv_{r}d",
            statement=f"any {conv_name} equals unfold + matmul and a dense Linear on the flattened input",
            strategy=lambda: general_cases(rank=r),
            formulations={
                conv_name.lower(): conv_spec,
                "unfold_matmul": FormulationSpec(
                    unfold_matmul_nd, ("matmul",), partial_sums="fold", workspace=unfold_numel, rounded=CONV_PRODUCT
                ),
                "dense_linear": GENERAL_CONV.formulations["dense_linear"],
            },
            reference=conv,
            grads=("x", "weight", "bias"),
            reductions=conv_reductions,
            calibrated=True,
            cross_device=True,
            property_module=module,
            applies_to=requires(is_rank, NO_HEAD),
            examples=half_precision_examples(largest["general_conv"]),
            example_share=SHARE,
        ),
        Relation(
            name=f"composition_{r}d",
            statement=f"Linear . {conv_name} with no activation equals one fused Linear",
            strategy=lambda: composition_cases(rank=r),
            formulations={
                "conv_then_linear": COMPOSITION.formulations["conv_then_linear"],
                "fused_linear": COMPOSITION.formulations["fused_linear"],
            },
            reference=conv_then_linear,
            grads=("x", "weight", "bias", "head_weight", "head_bias"),
            reductions=composition_reductions,
            calibrated=True,
            cross_device=True,
            property_module=module,
            applies_to=requires(is_rank, HEAD),
            examples=half_precision_examples(largest["full_kernel"], head_features=16),
            example_share=SHARE,
        ),
        Relation(
            name=f"composition_{r}d_with_activation",
            statement=f"negative control: with a ReLU between {conv_name} and Linear, the fused Linear does NOT match",
            strategy=_control_cases(r),
            formulations={"fused_linear": COMPOSITION.formulations["fused_linear"]},
            reference=conv_relu_linear,
            reductions=composition_reductions,
            negative_control=NegativeControl(effect=relu_effect, min_effect=RELU_EFFECT, decisive=("output",)),
            dtypes=CONTROL_DTYPES,
            property_module=module,
            applies_to=requires(is_rank, HEAD),
            example_share=MINOR_SHARE,
        ),
        dataclasses.replace(
            INIT,
            name=f"init_{r}d",
            statement=f"under one seed, {conv_name}(C, O, k, groups=g) and Linear(C/g*prod(k), O) get "
            "bit-identical default parameters",
            strategy=lambda: general_cases(rank=r),
            formulations={conv_name.lower(): INIT.formulations["conv2d"], "linear": INIT.formulations["linear"]},
            property_module=module,
            applies_to=requires(is_rank),
            example_share=MINOR_SHARE,
        ),
    ]
    registered = {relation.name: register(relation) for relation in relations}
    for relation in (
        converter_relation(
            f"converted_pointwise_{r}d",
            f"conv1x1_to_linear({conv_name.lower()}) over the channel axis equals the conv",
            converted_pointwise_nd,
            conv,
            lambda: pointwise_cases(max_stride=1, rank=r),
            conv_reductions,
            is_rank,
            POINTWISE,
            UNSTRIDED,
            NO_HEAD,
            module=module,
            rounded=CONV_PRODUCT,
            examples=half_precision_examples(largest["pointwise"]),
            example_share=MINOR_SHARE,
        ),
        converter_relation(
            f"converted_full_kernel_{r}d",
            f"full_kernel_conv_to_linear({conv_name.lower()}) on x.flatten(1) equals the conv",
            converted_full_kernel_nd,
            conv_flat,
            lambda: full_kernel_cases(rank=r),
            conv_reductions,
            is_rank,
            FULL_KERNEL,
            NO_HEAD,
            module=module,
            rounded=CONV_FLAT_PRODUCT,
            examples=half_precision_examples(largest["full_kernel"]),
            example_share=MINOR_SHARE,
        ),
    ):
        registered[relation.name] = relation
    return registered


RELATIONS = {name: relation for r in RANKS for name, relation in register_rank(r).items()}
