"""ConvTranspose1d/2d/3d: the adjoint of a convolution, and un-patchify.

- ``conv_transpose``: ``conv_transposeNd(x, W)`` with stride, padding, output padding, dilation
  and groups equals the input gradient of the matching convolution
  (:meth:`~linconv.core.geometry.ConvGeometry.adjoint`, ``torch.nn.grad.convNd_input``) at
  upstream ``x``, and a dense Linear with the transposed conv matrix on ``x.flatten(1)``;
- ``unpatchify``: with stride == kernel (no padding, output padding or dilation) it equals a
  ``Linear(C, O*prod(k))`` over the channel axis followed by a reshape that puts each position's
  ``O x k`` block in place (the decoder head of a ViT-style autoencoder);
- ``converted_conv_transpose``: ``conv_to_dense_linear`` on an ``nn.ConvTransposeNd`` computes it.

Every rank is drawn by the same relation (``rank`` is part of the case).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.nn import grad as conv_grad

from linconv import converters
from linconv.converters import block_diagonal
from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.errormodel.intermediates import product_before_bias
from linconv.relations.common import MINOR_SHARE, SHARE, half_precision_examples, requires
from linconv.relations.conditions import NO_HEAD, PATCH, TRANSPOSED
from linconv.relations.converted import conv_module, converter_relation
from linconv.relations.general_conv import GENERAL_CONV, dense_rounded
from linconv.relations.record import FormulationSpec, Relation
from linconv.relations.registry import register
from strategies import conv_transpose_cases, unpatchify_cases

__all__ = [
    "CONV_TRANSPOSE",
    "UNPATCHIFY",
    "conv_input_grad",
    "conv_transpose",
    "conv_transpose_reductions",
    "linear_unpatchify",
]

_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_CONV_INPUT = {1: conv_grad.conv1d_input, 2: conv_grad.conv2d_input, 3: conv_grad.conv3d_input}
_MODULE = "properties/test_transposed.py"


def _bias(y: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    return y if p.bias is None else y + p.bias.view(1, -1, *[1] * g.rank)


def conv_transpose(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """``F.conv_transposeNd`` as nn.ConvTransposeNd calls it."""
    return _CONV_TRANSPOSE[g.rank](x, p.weight, p.bias, g.stride, g.padding, g.output_padding, g.groups, g.dilation)


def conv_input_grad(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """The input gradient of the adjoint conv with upstream gradient ``x`` (differentiable in
    ``x`` and the weight), plus the bias. Where ``output_padding >= stride`` the adjoint's output
    is longer than ``x``; the extra positions get a zero upstream gradient."""
    adjoint = g.adjoint()
    reached = adjoint.output_size()
    if reached != g.size:
        x = F.pad(x, [v for n, m in zip(reversed(g.size), reversed(reached), strict=True) for v in (0, m - n)])
    grad = _CONV_INPUT[g.rank](adjoint.input_shape, p.weight, x, g.stride, g.padding, g.dilation, g.groups)
    return _bias(grad, p, g)


def linear_unpatchify(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """Un-patchify: a Linear ``C -> O*prod(k)`` at every input position, then each position's
    ``[O, *k]`` block reshaped into the output at ``position * k``."""
    n, r, taps = x.shape[0], g.rank, g.taps
    # weight [C, O/g, *k] -> rows (o, k...) of a [O*taps, C] Linear, block-diagonal over groups
    per_group = p.weight.reshape(g.groups, g.in_per_group, g.out_per_group * taps).transpose(1, 2)
    weight = block_diagonal(per_group.reshape(g.out_channels * taps, g.in_per_group), g.groups)
    bias = None if p.bias is None else p.bias.repeat_interleave(taps)
    y = F.linear(x.movedim(1, -1), weight, bias).reshape(n, *g.size, g.out_channels, *g.kernel)
    # [N, g_1..g_r, O, k_1..k_r] -> [N, O, g_1, k_1, ..., g_r, k_r] -> [N, O, g_1*k_1, ...]
    order = (0, r + 1, *(v for axis in range(r) for v in (1 + axis, r + 2 + axis)))
    return y.permute(order).reshape(n, g.out_channels, *g.output_size())


def conv_transpose_reductions(g: ConvGeometry, head_features: int = 0) -> dict[str, int]:
    """Terms per sum: output = C/g times the taps that reach one output position (exact,
    ConvGeometry.taps_per_output); grad x (a conv of the upstream) <= O/g * prod(k); grad weight =
    N * prod(input size); grad bias = N * prod(output size)."""
    return {
        "output": g.reduction_length(),
        "x": g.out_per_group * g.taps,
        "weight": g.batch * math.prod(g.size),
        "bias": g.batch * math.prod(g.output_size()),
    }


def converted_conv_transpose(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    linear = converters.conv_to_dense_linear(conv_module(p, g), tuple(g.size))
    return linear(x.flatten(1)).view(x.shape[0], *g.output_shape[1:])


# R of the error model: the transposed conv's product before its bias add (|W^T x|, float64)
TRANSPOSE_PRODUCT = product_before_bias(conv_transpose)
# The largest K the strategies reach (an upper bound: tests/test_sharpness.py): 5 taps per
# dimension reach the middle output of a 5x5x5 input under padding 3, 16 channels: K = 2000
LARGEST_TRANSPOSED = ConvGeometry(4, 16, 1, (5, 5, 5), kernel=5, padding=3, transposed=True)
LARGEST_UNPATCHIFY = ConvGeometry(4, 64, 16, (2, 2), kernel=2, stride=2, transposed=True)  # K = 64

_CONV_TRANSPOSE_SPEC = FormulationSpec(
    conv_transpose, ("conv",), partial_sums="slow_conv_transpose", rounded=TRANSPOSE_PRODUCT
)

CONV_TRANSPOSE = register(
    Relation(
        name="conv_transpose",
        statement="ConvTranspose1d/2d/3d equals the input gradient of the matching conv and a dense Linear "
        "with the transposed conv matrix",
        strategy=conv_transpose_cases,
        formulations={
            "conv_transpose": _CONV_TRANSPOSE_SPEC,
            "conv_input_grad": FormulationSpec(
                conv_input_grad, ("conv",), partial_sums="slow_conv_input_grad", rounded=TRANSPOSE_PRODUCT
            ),
            "dense_linear": GENERAL_CONV.formulations["dense_linear"],
        },
        reference=conv_transpose,
        grads=("x", "weight", "bias"),
        reductions=conv_transpose_reductions,
        calibrated=True,
        cross_device=True,
        property_module=_MODULE,
        applies_to=requires(TRANSPOSED, NO_HEAD),
        examples=half_precision_examples(LARGEST_TRANSPOSED),
        example_share=SHARE,
    )
)

UNPATCHIFY = register(
    Relation(
        name="unpatchify",
        statement="ConvTranspose with stride == kernel equals a Linear over channels followed by a reshape "
        "(un-patchify)",
        strategy=unpatchify_cases,
        formulations={
            "conv_transpose": _CONV_TRANSPOSE_SPEC,
            "linear_unpatchify": FormulationSpec(linear_unpatchify, ("matmul",), rounded=TRANSPOSE_PRODUCT),
        },
        reference=conv_transpose,
        grads=("x", "weight", "bias"),
        reductions=conv_transpose_reductions,
        calibrated=True,
        cross_device=True,
        property_module=_MODULE,
        applies_to=requires(TRANSPOSED, PATCH, NO_HEAD),
        examples=half_precision_examples(LARGEST_UNPATCHIFY),
        example_share=SHARE,
    )
)

converter_relation(
    "converted_conv_transpose",
    "conv_to_dense_linear(conv_transpose, input_size) on x.flatten(1) equals the transposed conv",
    converted_conv_transpose,
    conv_transpose,
    conv_transpose_cases,
    conv_transpose_reductions,
    TRANSPOSED,
    NO_HEAD,
    module=_MODULE,
    rounded=dense_rounded,
    examples=half_precision_examples(LARGEST_TRANSPOSED),
    workspace=ConvGeometry.dense_numel,
    example_share=MINOR_SHARE,
)
