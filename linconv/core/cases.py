"""Cases: one example, as plain data, that builds its tensors deterministically from a seed.

Tensors are drawn in float64 from ``torch.Generator().manual_seed(seed)`` on the CPU, rounded to
the case's dtype and only then moved to the device, so the same case gives the same numbers on
every device and a counterexample reads like a bug report.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, fields, replace
from typing import Any

import torch

from linconv.core.geometry import ConvGeometry

__all__ = [
    "DTYPES",
    "INPUT_VIEWS",
    "INVALID_INPUTS",
    "MEMORY_FORMATS",
    "PARAM_LAYOUTS",
    "VALUE_KINDS",
    "PARAM_NAMES",
    "Case",
    "CaseTensors",
    "Params",
    "channels_last",
    "torch_dtype",
]

# Ordered simplest first: strategies draw from these tuples, so shrinking moves left.
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
VALUE_KINDS = ("normal", "integer", "positive", "wide")
MEMORY_FORMATS = ("contiguous", "channels_last")
INPUT_VIEWS = ("dense", "strided", "size1_strides")
# How the weights, biases and the upstream gradient fed to backward are stored ("dense": the
# memory format, as before this axis existed). OHWI storage permuted back is channels_last;
# "permuted" is HWIO (kernel dims outermost, O innermost). Details: Case.param_layout.
PARAM_LAYOUTS = ("dense", "sliced", "transposed", "permuted", "size1_strides")
# What the shape-contract relations break ("": nothing, a valid input): one channel (in feature)
# more or fewer than the weight takes, groups that do not divide the channels, a kernel larger
# than the padded input (linconv.relations.shape_contract).
INVALID_INPUTS = ("", "more_channels", "fewer_channels", "groups", "kernel")

# Largest magnitude of the small integers drawn in the exact lane, per dtype. Chosen so that
# typical sums stay below 2**precision (bfloat16: 8 bits, float16: 11, float32: 24); the check
# still verifies the bound per tensor and falls back to the error model when a sum is too large.
_INTEGER_MAGNITUDE = {"float64": 3, "float32": 3, "float16": 2, "bfloat16": 1}
# Log2 range of |x| for the "wide" value kind: 1e-2 .. 32 keeps float16 sums far from overflow.
_WIDE_LOG2_RANGE = (-7.0, 5.0)


def torch_dtype(name: str) -> torch.dtype:
    if isinstance(name, str) and name in DTYPES:
        return DTYPES[name]
    raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {name!r}")


def channels_last(t: torch.Tensor) -> torch.Tensor:
    """``t`` with the channel axis (dim 1) innermost in memory, same values: for 4-D and 5-D
    tensors the strides of ``torch.channels_last`` / ``channels_last_3d``; for 3-D ``[N, C, L]``
    the ``[N, L, C]`` storage a sequence model hands to a Conv1d after a transpose."""
    if t.dim() < 3:
        return t.contiguous()
    order = (0, *range(2, t.dim()), 1)
    inverse = (0, t.dim() - 1, *range(1, t.dim() - 1))
    return t.permute(order).contiguous().permute(inverse)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _size1_strides(dense: torch.Tensor) -> torch.Tensor:
    """``dense`` with half the canonical stride on every size-1 dimension (the batch stride of an
    N=1 batch, the row stride of a one-row image): same elements, unusual metadata."""
    strides = tuple(
        max(1, stride // 2) if size == 1 else stride for size, stride in zip(dense.shape, dense.stride(), strict=True)
    )
    return dense.as_strided(dense.shape, strides)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


@dataclass(frozen=True)
class Params:
    """Parameters a formulation may read; the ones it does not use stay None."""

    weight: torch.Tensor
    bias: torch.Tensor | None = None
    head_weight: torch.Tensor | None = None
    head_bias: torch.Tensor | None = None

    def as_dict(self) -> dict[str, torch.Tensor | None]:
        return {name: getattr(self, name) for name in PARAM_NAMES}


PARAM_NAMES = ("weight", "bias", "head_weight", "head_bias")


@dataclass(frozen=True)
class CaseTensors:
    """The tensors of one case, on the case's device, in the case's dtype and layout."""

    x: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor | None
    head_weight: torch.Tensor | None
    head_bias: torch.Tensor | None
    target: torch.Tensor

    @property
    def params(self) -> Params:
        return Params(self.weight, self.bias, self.head_weight, self.head_bias)


@dataclass(frozen=True)
class Case:
    """One example: a geometry plus how its numbers are made and laid out.

    ``head_features`` > 0 adds a ``Linear(out_features, head_features)`` after the conv (the
    composition relation). ``input_view='strided'`` hands the formulations a non-contiguous view;
    ``'size1_strides'`` the dense tensor with non-canonical strides on its size-1 dimensions (legal,
    never used to address an element, and what ``img.permute(2, 0, 1).unsqueeze(0)`` produces).

    ``param_layout`` is the same axis for the weights, biases and the upstream gradient:
    ``'dense'`` (the memory format), ``'sliced'`` (a view into a parameter one larger in every
    dimension, from index 1: a storage offset and, from 2-D on, non-unit strides, as a slice of a
    fused QKV weight), ``'transposed'`` (dims 0 and 1 swapped in storage: a tied ``weight.t()``),
    ``'permuted'`` (stored HWIO, kernel dims outermost, and permuted back; OHWI storage is
    ``channels_last``), ``'size1_strides'`` (non-canonical strides on size-1 dimensions: C_in/groups
    = 1, a 1x1 kernel, O = 1). A 1-D tensor (a bias) is only ever sliced or given odd size-1 strides.
    The float64 reference always runs on contiguous copies.
    """

    geometry: ConvGeometry
    dtype: str = "float32"
    values: str = "normal"
    memory_format: str = "contiguous"
    input_view: str = "dense"
    head_features: int = 0
    seed: int = 0
    device: str = "cpu"
    param_layout: str = "dense"
    invalid: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.geometry, ConvGeometry):
            raise ValueError(f"geometry must be a ConvGeometry, got {type(self.geometry).__name__}")
        torch_dtype(self.dtype)
        _check_choice("values", self.values, VALUE_KINDS)
        _check_choice("memory_format", self.memory_format, MEMORY_FORMATS)
        _check_choice("input_view", self.input_view, INPUT_VIEWS)
        _check_choice("param_layout", self.param_layout, PARAM_LAYOUTS)
        _check_choice("invalid", self.invalid, INVALID_INPUTS)
        # bool is an int in Python, but `"seed": true` in a file is a mistake, not the seed 1
        if not _is_int(self.head_features) or self.head_features < 0:
            raise ValueError(f"head_features must be an int >= 0, got {self.head_features!r}")
        if not _is_int(self.seed) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be an int in [0, 2**63), got {self.seed!r}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return torch_dtype(self.dtype)

    def on(self, device: str | torch.device) -> Case:
        return replace(self, device=str(device))

    # --- serialisation ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["geometry"] = self.geometry.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Case:
        if not isinstance(data, dict) or "geometry" not in data:
            raise ValueError("a case must be an object with a 'geometry' field")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"case has unknown field(s) {unknown}; known: {list(cls.__dataclass_fields__)}")
        fields = dict(data)
        fields["geometry"] = ConvGeometry.from_dict(fields["geometry"])
        return cls(**fields)

    def describe(self) -> str:
        """A case in one short line: the geometry, then what differs from the defaults."""
        parts = [self.geometry.describe(), self.dtype]
        defaults = {"values": "normal", "memory_format": "contiguous", "input_view": "dense"}
        parts += [getattr(self, name) for name, default in defaults.items() if getattr(self, name) != default]
        if self.param_layout != "dense":
            parts.append(f"params-{self.param_layout}")
        if self.invalid:
            parts.append(f"invalid-{self.invalid}")
        if self.head_features:
            parts.append(f"head{self.head_features}")
        return " ".join(parts)

    def minimal_dict(self) -> dict[str, Any]:
        """The fields that differ from their defaults, device left out, geometry minimal too: what a
        case id hashes, so that adding a field with a default later leaves every stored id valid."""
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "device" or (f.default is not MISSING and value == f.default):
                continue
            data[f.name] = value.minimal_dict() if isinstance(value, ConvGeometry) else value
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def tensor_sizes(self, *, dense: bool = False) -> dict[str, int]:
        """Elements of each tensor an example of this case builds: input, output, weight, the unfold
        columns, the head's weight, and with ``dense`` the dense ``[out_features, in_features]``
        matrix (built by the relations that fuse or materialise the conv)."""
        g = self.geometry
        sizes = {
            "input": g.batch * g.in_features,
            "output": g.batch * g.out_features,
            "weight": g.out_channels * g.in_per_group * g.taps,
        }
        if not g.transposed:  # no formulation of a transposed conv unfolds
            sizes["columns (unfold)"] = g.batch * g.in_channels * g.taps * math.prod(g.output_size())
        if dense:
            sizes["dense matrix"] = g.dense_numel()
        if self.head_features:
            sizes["head weight"] = self.head_features * g.out_features
        return sizes

    def reproduction(self, relation: str, execution: str = "eager") -> str:
        """A Python snippet that rebuilds and re-checks this case (in execution lane ``execution``)."""
        lane = "" if execution == "eager" else f", execution={execution!r}"
        return (
            "from linconv.core.cases import Case\nfrom linconv.relations import check_relation\n"
            f"check_relation({relation!r}, Case.from_dict({self.to_dict()!r}){lane})"
        )

    # --- tensors ------------------------------------------------------------------------

    def integer_magnitude(self) -> int:
        return _INTEGER_MAGNITUDE[self.dtype]

    def build(self) -> CaseTensors:
        """Make the case's tensors: same seed, same numbers, whatever the device."""
        g = self.geometry
        gen = torch.Generator().manual_seed(self.seed)
        fan_in = max(1, g.reduction_length())  # a transposed conv may have outputs no tap reaches
        x = self._values(gen, g.input_shape, scale=1.0, role="input")
        weight = self._values(gen, g.weight_shape, scale=1 / math.sqrt(fan_in), role="weight")
        bias = self._values(gen, (g.out_channels,), scale=1 / math.sqrt(fan_in), role="weight") if g.bias else None
        head_weight = head_bias = None
        if self.head_features:
            head_fan_in = g.out_features
            head_weight = self._values(
                gen, (self.head_features, head_fan_in), scale=1 / math.sqrt(head_fan_in), role="weight"
            )
            head_bias = self._values(gen, (self.head_features,), scale=1 / math.sqrt(head_fan_in), role="weight")
        target = torch.randint(0, max(1, g.out_channels), (g.batch,), generator=gen)
        return CaseTensors(
            x=self._layout_input(x),
            weight=self.layout_param(weight),
            bias=self.layout_param(bias),
            head_weight=self.layout_param(head_weight),
            head_bias=self.layout_param(head_bias),
            target=target.to(self.device),
        )

    def upstream(self, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
        """The gradient fed to backward for an output of ``shape``; same for every formulation."""
        gen = torch.Generator().manual_seed((self.seed * 2654435761 + 1) % 2**63)
        upstream = self._values(gen, tuple(shape), scale=1.0, role="input")
        if self.param_layout == "dense":
            return self._place(upstream)  # type: ignore[return-value]
        return self.layout_param(upstream)  # type: ignore[return-value]

    def _values(self, gen: torch.Generator, shape: tuple[int, ...], *, scale: float, role: str) -> torch.Tensor:
        """Float64 values of the case's kind. Inputs of the integer kind are never 0 so that
        ``|W| (*) |x|`` dominates every entry of a fused weight (see check.exact_lane)."""
        kind = self.values
        if kind == "integer":
            m = self.integer_magnitude()
            if role == "input":
                magnitude = torch.randint(1, m + 1, shape, generator=gen)
                sign = torch.randint(0, 2, shape, generator=gen) * 2 - 1
                return (magnitude * sign).double()
            return torch.randint(-m, m + 1, shape, generator=gen).double()
        if kind == "normal":
            if role == "input":
                return torch.randn(shape, generator=gen, dtype=torch.float64) * scale
            return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale
        if kind == "positive":
            return torch.rand(shape, generator=gen, dtype=torch.float64) * scale
        lo, hi = _WIDE_LOG2_RANGE
        exponent = torch.rand(shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo
        sign = torch.randint(0, 2, shape, generator=gen).double() * 2 - 1
        return sign * torch.exp2(exponent) * scale

    def _place(self, t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.to(self.torch_dtype).to(self.device)

    def _dense(self, t: torch.Tensor) -> torch.Tensor:
        return channels_last(t) if self.memory_format == "channels_last" else t.contiguous()

    def layout_param(self, w: torch.Tensor | None) -> torch.Tensor | None:
        """``w`` (a weight, bias or upstream gradient, float64 on the CPU) in the case's dtype, on its
        device, in its ``param_layout`` (a bias in the default layout stays as it always was:
        contiguous). Public for the known-bug signatures, which read the strides it gives."""
        w = self._place(w)
        if w is None:
            return None
        layout = self.param_layout
        if layout == "dense" or (w.dim() < 2 and layout in ("transposed", "permuted")):
            return self._dense(w)
        if layout == "size1_strides":
            return _size1_strides(self._dense(w))
        if layout == "sliced":
            # the tensor is rows 1.. and columns 1.. of a parameter one larger in every dimension
            base = self._dense(torch.zeros([n + 1 for n in w.shape], dtype=w.dtype, device=w.device))
            view = base[tuple(slice(1, None) for _ in w.shape)]
            view.copy_(w)
            return view
        # storage in another order, permuted back: dims 0 and 1 swapped, or HWIO (kernel first)
        order = (1, 0, *range(2, w.dim())) if layout == "transposed" else (*range(2, w.dim()), 1, 0)
        inverse = tuple(order.index(d) for d in range(w.dim()))
        return w.permute(order).contiguous().permute(inverse)

    def _layout_input(self, x: torch.Tensor) -> torch.Tensor:
        x = self._place(x)  # type: ignore[assignment]
        if self.input_view == "dense":
            return self._dense(x)
        if self.input_view == "size1_strides":
            return _size1_strides(self._dense(x))
        # A view into a tensor twice as wide, every other column: same values, non-unit strides.
        base = self._dense(torch.zeros((*x.shape[:-1], 2 * x.shape[-1]), dtype=x.dtype, device=x.device))
        view = base[..., ::2]
        view.copy_(x)
        return view
