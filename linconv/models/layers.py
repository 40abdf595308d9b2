"""What each recorded call is, as cases the relations know: the geometry, dtype, layout and device
of the layer, and its real tensors.

- a ConvNd call is its own geometry (a ConvTransposeNd too, once ConvGeometry has ``transposed``);
- a Linear call on ``[N, *S, C]`` is a 1x1 ``Conv2d(C, O)`` on the same values seen as NCHW
  (``S`` as the spatial size: ``()`` -> 1x1, ``(L,)`` -> Lx1, ``(H, W)``, more axes folded into
  the first): the NHWC activation a Linear reads *is* a channels_last NCHW tensor, so no copy;
- a Linear whose input is the previous call's conv output flattened, value for value (nothing
  ran between them that changed a number, on this input: the call order and the values tell,
  even where a graph capture would fail), is also the pair ``Linear . Conv`` as one case.

Which relations then apply is each relation's own ``applies_to``: nothing here names one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from linconv.core.cases import DTYPES, Case, CaseTensors
from linconv.core.geometry import ConvGeometry
from linconv.models.capture import CONV_TYPES, TRANSPOSED_TYPES, LayerCall

__all__ = ["Target", "Unsupported", "layout", "targets"]

_DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}


@dataclass(frozen=True)
class Target:
    """One thing to check: a layer (or a conv + Linear pair) as a case, with its real tensors."""

    name: str
    kind: str  # "conv", "linear", "conv + linear"
    describes: str  # what the case stands for, in words
    case: Case
    tensors: CaseTensors
    as_run: Callable[[], torch.Tensor]  # the layer(s) as the model ran them, for timing
    layout: str  # the activation's shape, dtype, strides


@dataclass(frozen=True)
class Unsupported:
    """A recorded call no case can describe, and why."""

    name: str
    kind: str
    why: str


def layout(t: torch.Tensor) -> str:
    if t.dim() >= 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous():
        form = "channels_last"
    elif t.dim() == 5 and t.is_contiguous(memory_format=torch.channels_last_3d) and not t.is_contiguous():
        form = "channels_last_3d"
    elif t.is_contiguous():
        form = "contiguous"
    else:
        form = f"strides {tuple(t.stride())}"
    return f"{list(t.shape)} {_DTYPE_NAMES.get(t.dtype, str(t.dtype))} {form} on {t.device}"


def _memory_format(x: torch.Tensor) -> str:
    return "channels_last" if x.dim() >= 4 and "channels_last" in layout(x) else "contiguous"


def _case(geometry: ConvGeometry, x: torch.Tensor, head_features: int = 0) -> Case:
    view = "dense" if x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last) else "strided"
    return Case(
        geometry,
        dtype=_DTYPE_NAMES[x.dtype],
        memory_format=_memory_format(x),
        input_view=view,
        head_features=head_features,
        device=str(x.device),
    )


def _no_target(batch: int, device: torch.device) -> torch.Tensor:
    return torch.zeros(batch, dtype=torch.long, device=device)


# ConvGeometry describes a transposed conv once it has these fields (the ConvTranspose relations):
# until then a ConvTranspose call is reported as not checked.
_TRANSPOSED_FIELDS = {"transposed", "output_padding"}
_DESCRIBES_TRANSPOSED = _TRANSPOSED_FIELDS <= set(ConvGeometry.__dataclass_fields__)


def _conv_geometry(call: LayerCall, x: torch.Tensor) -> ConvGeometry:
    m = call.module
    extra = {}
    if isinstance(m, TRANSPOSED_TYPES):
        extra = {"transposed": True, "output_padding": tuple(m.output_padding)}
    return ConvGeometry(
        batch=x.shape[0],
        in_channels=m.in_channels,
        out_channels=m.out_channels,
        size=tuple(x.shape[2:]),
        kernel=tuple(m.kernel_size),
        stride=tuple(m.stride),
        padding=m.padding if isinstance(m.padding, str) else tuple(m.padding),
        dilation=tuple(m.dilation),
        groups=m.groups,
        padding_mode=m.padding_mode,
        bias=m.bias is not None,
        **extra,
    )


def _conv_input(call: LayerCall) -> torch.Tensor:
    rank = len(call.module.kernel_size)
    return call.x.unsqueeze(0) if call.x.dim() == rank + 1 else call.x  # an unbatched input is a batch of 1


def _param(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach()


def _conv_target(call: LayerCall) -> Target:
    m, x = call.module, _conv_input(call)
    geometry = _conv_geometry(call, x)
    tensors = CaseTensors(x, _param(m.weight), _param(m.bias), None, None, _no_target(x.shape[0], x.device))
    original = call.x
    return Target(
        call.name,
        "conv",
        f"{call.type_name} {geometry.describe()}",
        _case(geometry, x),
        tensors,
        lambda: m(original),
        layout(call.x),
    )


def _spatial(middle: tuple[int, ...]) -> tuple[int, int]:
    if not middle:
        return (1, 1)
    if len(middle) == 1:
        return (middle[0], 1)
    return (math.prod(middle[:-1]), middle[-1])


def _linear_target(call: LayerCall) -> Target:
    m, x = call.module, call.x
    c, o = m.in_features, m.out_features
    batch = x.shape[0] if x.dim() >= 2 else 1
    size = _spatial(tuple(x.shape[1:-1]))
    nchw = x.reshape(batch, *size, c).permute(0, 3, 1, 2)
    geometry = ConvGeometry(batch, c, o, size, kernel=1, bias=m.bias is not None)
    weight = m.weight.detach().reshape(o, c, 1, 1)
    tensors = CaseTensors(nchw, weight, _param(m.bias), None, None, _no_target(batch, x.device))
    return Target(
        call.name,
        "linear",
        f"Linear({c}, {o}) over the last axis of {list(x.shape)}, as Conv2d 1x1 on {list(nchw.shape)}",
        _case(geometry, nchw),
        tensors,
        lambda: m(x),
        layout(x),
    )


def _feeds(conv: LayerCall, linear: LayerCall) -> bool:
    """The Linear read exactly the conv's output flattened: same numbers, in flatten(1) order."""
    if not isinstance(conv.module, CONV_TYPES) or conv.order + 1 != linear.order:
        return False
    y, x = conv.y, linear.x
    if y.dim() != len(conv.module.kernel_size) + 2 or x.dim() != 2 or x.shape[0] != y.shape[0]:
        return False
    return x.shape[1] == y[0].numel() and x.dtype == y.dtype and torch.equal(x, y.reshape(y.shape[0], -1))


def _pair_target(conv: LayerCall, linear: LayerCall) -> Target:
    c, lin = conv.module, linear.module
    x = conv.x
    geometry = _conv_geometry(conv, x)
    tensors = CaseTensors(
        x, _param(c.weight), _param(c.bias), _param(lin.weight), _param(lin.bias), _no_target(x.shape[0], x.device)
    )
    return Target(
        f"{conv.name} -> {linear.name}",
        "conv + linear",
        f"Linear({lin.in_features}, {lin.out_features}) on the flattened output of {conv.type_name} "
        f"{geometry.describe()}, nothing between them",
        _case(geometry, x, head_features=lin.out_features),
        tensors,
        lambda: F.linear(c(x).flatten(1), lin.weight, lin.bias),
        layout(x),
    )


def _why_not(call: LayerCall) -> str:
    if isinstance(call.module, TRANSPOSED_TYPES) and not _DESCRIBES_TRANSPOSED:
        return f"{call.type_name}: a case cannot describe a transposed convolution yet"
    if call.x.dtype not in _DTYPE_NAMES:
        return f"input dtype {call.x.dtype} is not one of {tuple(DTYPES)}"
    weight = call.module.weight
    if weight.dtype != call.x.dtype or weight.device != call.x.device:
        return f"weight {weight.dtype} on {weight.device} differs from the input's {call.x.dtype} on {call.x.device}"
    return ""


def targets(calls: list[LayerCall]) -> tuple[list[Target], list[Unsupported]]:
    """The cases to check, in call order (a fused pair right after its Linear), and the calls that
    cannot be described as a case, with the reason."""
    found: list[Target] = []
    unsupported: list[Unsupported] = []
    for i, call in enumerate(calls):
        why = _why_not(call)
        if why:
            unsupported.append(Unsupported(call.name, call.type_name, why))
            continue
        try:
            if isinstance(call.module, CONV_TYPES + TRANSPOSED_TYPES):
                found.append(_conv_target(call))
            else:
                found.append(_linear_target(call))
                if i and not _why_not(calls[i - 1]) and _feeds(calls[i - 1], call):
                    found.append(_pair_target(calls[i - 1], call))
        except ValueError as exc:  # a geometry ConvGeometry cannot hold
            unsupported.append(Unsupported(call.name, call.type_name, str(exc)))
    return found, unsupported
