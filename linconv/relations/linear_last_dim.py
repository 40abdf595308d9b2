"""A Linear over the last dimension of an input of any rank: ``Linear(C, O)`` on ``[N, *size, C]``
(``[N, L, C]`` for a sequence, ``[N, H, W, C]``, ``[N, D, H, W, C]``) equals flattening the leading
dimensions, one 2-D Linear on ``[rows, C]`` and unflattening; equals the Linear on each row as a
1-D input ``[C]``; and equals a 1x1 conv on the matching layout, ``[N, C, *size]``.

A case is the geometry of that 1x1 conv (stride, dilation and groups 1): the formulations read the
conv's input ``x [N, C, *size]`` as the Linear's ``x.movedim(1, -1)``, contiguous when the case is
channels_last, a permuted view when it is contiguous. A geometry may have no in features (the
Linear then returns its bias) or no out features: the relation ``linear_empty_features`` checks the
Linear formulations there (torch refuses a conv with no output channel and gives one with no input
channel an output of no channel, so the 1x1 conv cannot take part).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.errormodel.intermediates import product_before_bias
from linconv.relations.common import SHARE, conv, conv_reductions, requires
from linconv.relations.conditions import CONV, NO_HEAD, POINTWISE, UNSTRIDED
from linconv.relations.record import FormulationSpec, Relation
from linconv.relations.registry import register
from strategies import linear_cases

__all__ = ["LINEAR_EMPTY_FEATURES", "LINEAR_LAST_DIM", "flatten_rows_linear", "linear_nd", "linear_per_row"]


def _matrix(weight: torch.Tensor) -> torch.Tensor:
    """The ``[O, C]`` matrix of a 1x1 conv weight ``[O, C, 1, ...]``, as a view in the weight's own
    strides (indexing, not reshape: a weight stored transposed or sliced reaches the Linear so)."""
    return weight[(slice(None), slice(None), *[0] * (weight.dim() - 2))]


def linear_nd(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """``F.linear`` on the (rank + 2)-D input ``[N, *size, C]`` as it is."""
    return F.linear(x.movedim(1, -1), _matrix(p.weight), p.bias).movedim(-1, 1)


def flatten_rows_linear(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """Leading dimensions flattened, one 2-D ``F.linear`` on ``[rows, C]``, unflattened."""
    rows = x.movedim(1, -1)
    lead = rows.shape[:-1]
    # sizes spelled out (never -1): with no rows or no features there is nothing to infer them from
    flat = rows.reshape(math.prod(lead), g.in_channels)
    return F.linear(flat, _matrix(p.weight), p.bias).reshape(*lead, g.out_channels).movedim(-1, 1)


def linear_per_row(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
    """``F.linear`` on each row as a 1-D input ``[C]`` (the matrix-vector path), stacked."""
    rows = x.movedim(1, -1)
    lead = rows.shape[:-1]
    flat = rows.reshape(math.prod(lead), g.in_channels)
    if flat.shape[0] == 0:  # no row, no 1-D call: the empty output of the 2-D call
        return flatten_rows_linear(x, p, g)
    w = _matrix(p.weight)
    out = torch.stack([F.linear(row, w, p.bias) for row in flat.unbind(0)])
    return out.reshape(*lead, g.out_channels).movedim(-1, 1)


def _per_row_numel(g: ConvGeometry) -> int:
    """Elements of the rows and outputs :func:`linear_per_row` builds one tensor at a time."""
    return g.batch * math.prod(g.size) * (g.in_channels + g.out_channels)


_NO_CHANNELS = (
    lambda c: c.geometry.in_channels == 0 or c.geometry.out_channels == 0,
    "it needs in_channels or out_channels 0 (a Linear with no in or out features)",
)
# R of the error model: every formulation is one product rounded before its bias add, |W x|
_PRODUCT = product_before_bias(flatten_rows_linear)

_LINEAR = {
    "linear_nd": FormulationSpec(linear_nd, ("matmul",), rounded=_PRODUCT),
    "flatten_linear": FormulationSpec(flatten_rows_linear, ("matmul",), rounded=_PRODUCT),
    # autograd adds the per-row weight and bias gradients in the parameter's dtype; its cost is one
    # call per row, declared as the rows it builds one by one (so the model check skips it on a
    # real layer of thousands of rows)
    "linear_per_row": FormulationSpec(
        linear_per_row,
        ("matmul",),
        storage_accumulation=("weight", "bias"),
        workspace=_per_row_numel,
        rounded=_PRODUCT,
    ),
}

LINEAR_LAST_DIM = register(
    Relation(
        name="linear_last_dim",
        statement="Linear(C, O) on [N, *size, C] (any rank) equals flattening the leading dimensions, one 2-D "
        "Linear and unflattening; the Linear on each row [C]; and a 1x1 conv on [N, C, *size]",
        strategy=linear_cases,
        formulations={
            **_LINEAR,
            "conv1x1": FormulationSpec(conv, ("conv",), partial_sums="slow_conv", rounded=_PRODUCT),
        },
        reference=flatten_rows_linear,
        grads=("x", "weight", "bias"),
        reductions=conv_reductions,
        calibrated=False,  # the pointwise relations' C covers it (same sums); not in the calibration data
        cross_device=True,
        property_module="properties/test_linear_last_dim.py",
        applies_to=requires(CONV, POINTWISE, UNSTRIDED, NO_HEAD),
        example_share=SHARE,
    )
)

LINEAR_EMPTY_FEATURES = register(
    Relation(
        name="linear_empty_features",
        statement="Linear(0, O) returns its bias and Linear(C, 0) an empty output, in every input rank, "
        "forward and backward",
        strategy=lambda: linear_cases(empty_features=True),
        formulations=_LINEAR,
        reference=flatten_rows_linear,
        grads=("x", "weight", "bias"),
        reductions=conv_reductions,
        property_module="properties/test_linear_last_dim.py",
        applies_to=requires(CONV, POINTWISE, UNSTRIDED, NO_HEAD, _NO_CHANNELS, empty_features=True),
        example_share=SHARE / 2,
    )
)
