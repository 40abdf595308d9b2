"""Converters: the modules linconv.converters hands out compute the source's map. Each relation
builds the module a user has, converts it, and runs the result against the float64 reference:
the output and the input gradient (the converted module's parameters are new tensors, so
parameter gradients do not reach the source)."""

from __future__ import annotations

import torch
from torch import nn

from linconv import converters
from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.relations.common import (
    CONV_FLAT_PRODUCT,
    CONV_PRODUCT,
    LARGEST_FULL_KERNEL,
    LARGEST_GENERAL,
    LARGEST_POINTWISE,
    composition_reductions,
    conv,
    conv_flat,
    conv_reductions,
    half_precision_examples,
    requires,
)
from linconv.relations.composition import FUSED_ROUNDED, conv_then_linear
from linconv.relations.conditions import FULL_KERNEL, HEAD, NO_HEAD, POINTWISE, RANK_2, UNSTRIDED
from linconv.relations.general_conv import dense_rounded
from linconv.relations.record import FormulationSpec, Relation
from linconv.relations.registry import register
from strategies import composition_cases, full_kernel_cases, general_cases, pointwise_cases

__all__ = ["conv_module", "converter_relation", "linear_module"]

_MATMUL = ("matmul",)
_MODULE = "properties/test_converters.py"


def _param(t: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(t.detach(), requires_grad=t.requires_grad)


_MODULES = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_TRANSPOSED_MODULES = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def conv_module(p: Params, g: ConvGeometry) -> nn.Module:
    """The nn.ConvNd (or nn.ConvTransposeNd) of geometry ``g`` holding ``p.weight`` / ``p.bias``
    (no default init runs)."""
    if g.transposed:
        conv_ = _TRANSPOSED_MODULES[g.rank](
            g.in_channels, g.out_channels, g.kernel, g.stride, g.padding, g.output_padding, g.groups,
            bias=g.bias, dilation=g.dilation, device="meta",
        )  # fmt: skip
    else:
        conv_ = _MODULES[g.rank](g.in_channels, g.out_channels, g.kernel, g.stride, g.padding, g.dilation, g.groups,
                                 bias=g.bias, padding_mode=g.padding_mode, device="meta")  # fmt: skip
    conv_.weight = _param(p.weight)
    if p.bias is not None:
        conv_.bias = _param(p.bias)
    return conv_


def linear_module(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    linear.weight = _param(weight)
    if bias is not None:
        linear.bias = _param(bias)
    return linear


def converted_pointwise(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    linear = converters.conv1x1_to_linear(conv_module(p, g))
    return linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def converted_full_kernel(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    return converters.full_kernel_conv_to_linear(conv_module(p, g))(x.flatten(1))


def converted_dense(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    linear = converters.conv_to_dense_linear(conv_module(p, g), tuple(g.size))
    return linear(x.flatten(1)).view(x.shape[0], *g.output_shape[1:])


def converted_fused(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    assert p.head_weight is not None
    head = linear_module(p.head_weight, p.head_bias)
    return converters.fuse_linear_after_conv(conv_module(p, g), head, tuple(g.size))(x.flatten(1))


def converter_relation(
    name,
    statement,
    fn,
    reference,
    strategy,
    reductions,
    *conditions,
    rounded,
    module=_MODULE,
    workspace=None,
    example_share=1.0,
    examples=(),
) -> Relation:
    """Register the relation of one converter: its module computes ``reference``'s map (output
    and input gradient), on the cases ``conditions`` admit; its property lives in ``module``;
    ``workspace`` sizes the dense matrix it builds (see FormulationSpec.workspace); ``rounded`` is
    what the converted module rounds before its result (FormulationSpec.rounded); ``examples``
    its explicit examples."""
    return register(
        Relation(
            name=name,
            statement=statement,
            strategy=strategy,
            formulations={
                "converted_linear": FormulationSpec(
                    fn, _MATMUL, workspace=workspace, converts_per_call=True, graph_breaks=True, rounded=rounded
                )
            },
            reference=reference,
            grads=("x",),
            reductions=reductions,
            property_module=module,
            examples=examples,
            applies_to=requires(*conditions),
            example_share=example_share,
        )
    )


def _converter(name, statement, fn, reference, strategy, reductions, *conditions, **options) -> Relation:
    return converter_relation(name, statement, fn, reference, strategy, reductions, RANK_2, *conditions, **options)


_converter(
    "converted_pointwise",
    "conv1x1_to_linear(conv) over the channel axis equals conv",
    converted_pointwise,
    conv,
    lambda: pointwise_cases(max_stride=1),
    conv_reductions,
    POINTWISE,
    UNSTRIDED,
    NO_HEAD,
    rounded=CONV_PRODUCT,
    examples=half_precision_examples(LARGEST_POINTWISE),
)
_converter(
    "converted_full_kernel",
    "full_kernel_conv_to_linear(conv) on x.flatten(1) equals conv",
    converted_full_kernel,
    conv_flat,
    full_kernel_cases,
    conv_reductions,
    FULL_KERNEL,
    NO_HEAD,
    rounded=CONV_FLAT_PRODUCT,
    examples=half_precision_examples(LARGEST_FULL_KERNEL),
)
_converter(
    "converted_dense",
    "conv_to_dense_linear(conv, input_size) on x.flatten(1) equals conv",
    converted_dense,
    conv,
    general_cases,
    conv_reductions,
    NO_HEAD,
    rounded=dense_rounded,
    examples=half_precision_examples(LARGEST_GENERAL),
    workspace=ConvGeometry.dense_numel,
)
_converter(
    "converted_fused",
    "fuse_linear_after_conv(conv, linear, input_size) equals linear(conv(x).flatten(1))",
    converted_fused,
    conv_then_linear,
    composition_cases,
    composition_reductions,
    HEAD,
    rounded=FUSED_ROUNDED,
    examples=half_precision_examples(LARGEST_FULL_KERNEL, head_features=16),
    workspace=ConvGeometry.dense_numel,
)
