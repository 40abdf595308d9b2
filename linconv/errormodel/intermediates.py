"""What a formulation rounds to the storage format before its result: ``R`` of the error model.

Each intermediate rounding to a format of unit roundoff ``u`` changes what is rounded, ``z``, by
at most ``u |z|`` (plus a subnormal spacing, which the ``tiny`` term holds). Everything after it
is linear, so the change reaches the result through the rest of the map, bounded on absolute
values: ``|J| u |z|`` with ``|J|`` the downstream map on ``|parameters|``. ``R`` is the sum of
``|J| |z|`` over the formulation's roundings, from the float64 values of the same (rounded)
inputs; the bound charges ``C u R`` (linconv.errormodel.precision). Before, every rounding was
charged ``C u M`` with ``M = |W| (*) |x| + |b|``; for random signs ``|W x| ~ M / sqrt(K)``, so
``R`` is about sqrt(K) sharper where that term dominates: float16/bfloat16, whose sums run in
float32 (docs/calibration.md, "Intermediate roundings").

The builders below take the formulation's own float64 map ``f(x, params, geometry)`` and return
``rounded(x, params, geometry) -> R`` (a tensor of the result's shape, or ``0.0`` when nothing
is rounded before the result), for a :class:`~linconv.relations.record.FormulationSpec`:

- :func:`product_before_bias`: one product, rounded before the bias is added (``|W x|``);
  nothing without a bias (the product is the result);
- :func:`stored_hidden_layer`: a Linear (``head_weight``, ``head_bias``) after a first layer
  whose output ``h`` is stored: ``|W2| (R_1 + |h|)`` plus the Linear's own product ``|W2 h|``;
- :func:`parameters_rounded_once`: a Linear whose weight and bias are formed in float64 and
  rounded once (a fused or converted Linear): ``|W| |x| + |b|`` plus the product ``|W x|``.

The roundings a kernel does by its own choice are the kernel's: a product rounded before the
bias add inside ``F.linear`` or a conv is charged whether or not the kernel fuses the add.
Roundings of partial sums are ``u_part`` (linconv.errormodel.partial_sums), not ``R``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F

from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry

__all__ = ["Rounded", "parameters_rounded_once", "product_before_bias", "stored_hidden_layer"]

Map = Callable[[torch.Tensor, Params, ConvGeometry], torch.Tensor]
Rounded = Callable[[torch.Tensor, Params, ConvGeometry], "torch.Tensor | float"]


def product_before_bias(fn: Map) -> Rounded:
    """``R = |W x|`` (``fn`` without its bias) when there is a bias, else 0."""

    def rounded(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor | float:
        if p.bias is None:
            return 0.0
        return fn(x, replace(p, bias=None), g).abs()

    rounded.__qualname__ = f"product_before_bias({getattr(fn, '__name__', fn)})"
    return rounded


def stored_hidden_layer(first: Map) -> Rounded:
    """``Linear(first(x).flatten(1))``: the first layer's rounded product and its stored output
    ``h`` through ``|head_weight|``, plus the Linear's product before ``head_bias``."""
    first_rounded = product_before_bias(first)

    def rounded(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if p.head_weight is None:
            raise ValueError("stored_hidden_layer: params.head_weight is required (the Linear after the layer)")
        hidden = first(x, p, g).flatten(1)
        inner = first_rounded(x, p, g)
        stored = hidden.abs() + (inner.flatten(1) if isinstance(inner, torch.Tensor) else inner)
        r = F.linear(stored, p.head_weight.abs())
        if p.head_bias is not None:
            r = r + F.linear(hidden, p.head_weight).abs()
        return r

    return rounded


def parameters_rounded_once(
    parameters: Callable[[Params, ConvGeometry], tuple[torch.Tensor, torch.Tensor | None]],
) -> Rounded:
    """``F.linear(x.flatten(1), W, b)`` with ``(W, b) = parameters(params, geometry)`` formed
    exactly and rounded once: ``|W| |x| + |b|``, plus ``|W x|`` rounded before the bias add."""

    def rounded(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        weight, bias = parameters(p, g)
        flat = x.flatten(1)
        r = F.linear(flat.abs(), weight.abs())
        if bias is not None:
            r = r + bias.abs() + F.linear(flat, weight).abs()
        return r

    return rounded
