"""The shape of one convolution: everything that decides which linear map a ConvNd computes.

A :class:`ConvGeometry` is plain data (ints, tuples, strings) so that a case prints as a bug
report and survives a JSON round trip. It has 1, 2 or 3 spatial dimensions (Conv1d, Conv2d,
Conv3d: the length of ``size``), describes a convolution or (``transposed``) a transposed
convolution (ConvTranspose1d/2d/3d), and knows the arithmetic every formulation shares: the
explicit padding torch applies, the output size, and the reduction length of each sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["PADDING_MODES", "RANKS", "ConvGeometry", "ntuple"]

# The padding modes nn.ConvNd accepts (torch/nn/modules/conv.py, _ConvNd.__init__).
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# Spatial dimensions of the convolutions torch has: Conv1d, Conv2d, Conv3d.
RANKS = (1, 2, 3)
_TUPLE_FIELDS = ("kernel", "stride", "dilation")
# Fields added after the first corpus was written: their defaults are left out of a case's id
# (minimal_dict), so every stored id stays valid.
_ZERO_TUPLE_FIELDS = ("output_padding",)
_INT_FIELDS = ("batch", "in_channels", "out_channels", "groups")
# torch accepts these empty: a batch of no example (a detection head with no proposals), and for a
# Linear no in or out features (Linear(0, O) returns its bias)
_MAY_BE_EMPTY = ("batch", "in_channels", "out_channels")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dims(values: tuple[int, ...]) -> str:
    return "x".join(str(v) for v in values)


def ntuple(value: object, rank: int, name: str) -> tuple[int, ...]:
    """Normalise an int or a ``rank``-sequence of ints to a tuple, naming ``name`` when it is neither."""
    if _is_int(value):
        return (int(value),) * rank  # type: ignore[arg-type]
    if isinstance(value, (tuple, list)) and len(value) == rank and all(_is_int(v) for v in value):
        return tuple(int(v) for v in value)
    what = "an int" if rank == 1 else f"an int or {rank} ints"
    raise ValueError(f"{name} must be {what}, got {value!r}")


@dataclass(frozen=True)
class ConvGeometry:
    """Geometry of ``ConvNd(in_channels, out_channels, kernel, ...)`` on ``[batch, in_channels, *size]``.

    ``size`` is the spatial input size (one int per dimension: ``(L,)``, ``(H, W)`` or
    ``(D, H, W)``). ``kernel``, ``stride``, ``dilation`` take an int or one int per dimension
    (``None``: ones); ``padding`` takes that (``None``: zeros) or the strings ``"same"`` /
    ``"valid"``. Instances are validated on construction, so every geometry that exists is one
    torch accepts and that produces an output of at least one element per dimension.

    ``transposed=True`` is ``ConvTransposeNd(in_channels, out_channels, kernel, stride, padding,
    output_padding, groups, bias, dilation)`` on the same input: weight
    ``[in_channels, out_channels / groups, *kernel]``, output size
    ``(n - 1) * s - 2 * p + d * (k - 1) + output_padding + 1``, integer padding and
    ``padding_mode='zeros'`` only (as torch), ``output_padding`` smaller than the stride or the
    dilation in each dimension (as torch). It is the adjoint of :meth:`adjoint`, the convolution
    whose input gradient it computes.
    """

    batch: int
    in_channels: int
    out_channels: int
    size: tuple[int, ...]
    kernel: tuple[int, ...] | None = None
    stride: tuple[int, ...] | None = None
    padding: tuple[int, ...] | str | None = None
    dilation: tuple[int, ...] | None = None
    groups: int = 1
    padding_mode: str = "zeros"
    bias: bool = True
    transposed: bool = False
    output_padding: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        size = self.size
        if _is_int(size):
            size = (size,)
        if not isinstance(size, (tuple, list)) or len(size) not in RANKS or not all(_is_int(v) for v in size):
            raise ValueError(f"size must be 1 to 3 positive ints (the spatial input size), got {self.size!r}")
        object.__setattr__(self, "size", tuple(size))
        for name in _TUPLE_FIELDS:
            value = getattr(self, name)
            object.__setattr__(self, name, (1,) * self.rank if value is None else ntuple(value, self.rank, name))
        for name in _ZERO_TUPLE_FIELDS:
            value = getattr(self, name)
            object.__setattr__(self, name, (0,) * self.rank if value is None else ntuple(value, self.rank, name))
        if self.padding is None:
            object.__setattr__(self, "padding", (0,) * self.rank)
        elif not isinstance(self.padding, str):
            object.__setattr__(self, "padding", ntuple(self.padding, self.rank, "padding"))
        self._validate()

    def validate(self) -> None:
        """Check the geometry again (ValueError naming what is wrong): for code handed a geometry
        that may have been copied and changed without validation (the shape contracts do that)."""
        self._validate()

    def _validate(self) -> None:
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if name in _MAY_BE_EMPTY and _is_int(value) and value == 0:
                continue
            if not _is_int(value) or value < 1:
                empty = " (or 0: an empty batch, a Linear with no in or out features)" if name in _MAY_BE_EMPTY else ""
                raise ValueError(f"{name} must be a positive int{empty}, got {value!r}")
        if 0 in (self.in_channels, self.out_channels) and not (
            set(self.kernel) == {1} and set(self.stride) == {1} and self.groups == 1 and not self.transposed  # type: ignore[arg-type]
        ):
            # torch refuses a conv with no output channel and gives a conv with no input channel an
            # output of no channel (docs/robustness.md): only a Linear's geometry may have either
            raise ValueError(
                f"in_channels={self.in_channels}, out_channels={self.out_channels}: zero features only for a "
                "Linear's geometry (kernel 1, stride 1, groups 1, not transposed)"
            )
        if min(self.size) < 1:
            raise ValueError(f"size must be positive in every dimension, got {self.size}")
        if not isinstance(self.bias, bool):
            raise ValueError(f"bias must be true or false, got {self.bias!r}")
        if not isinstance(self.transposed, bool):
            raise ValueError(f"transposed must be true or false, got {self.transposed!r}")
        for name in _TUPLE_FIELDS:
            if min(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1 in every dimension, got {getattr(self, name)}")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"groups={self.groups} must divide in_channels={self.in_channels} and out_channels={self.out_channels}"
            )
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {self.padding_mode!r}")
        if self.transposed:
            self._validate_transposed()
            return
        if set(self.output_padding) != {0}:  # type: ignore[arg-type]
            raise ValueError(f"output_padding needs transposed=true (a ConvTranspose), got {self.output_padding}")
        if isinstance(self.padding, str):
            if self.padding not in ("same", "valid"):
                raise ValueError(f"padding must be ints, 'same' or 'valid', got {self.padding!r}")
            if self.padding == "same" and set(self.stride) != {1}:
                raise ValueError(f"padding='same' needs stride 1 (torch refuses it), got {self.stride}")
        elif min(self.padding) < 0:
            raise ValueError(f"padding must be >= 0, got {self.padding}")
        widest = [(max(pad), n) for pad, n in zip(self.pads(), self.size, strict=True)]
        if self.padding_mode == "reflect" and any(pad >= n for pad, n in widest):
            raise ValueError(
                f"padding_mode='reflect' needs padding < input size, got padding {self.padding} "
                f"for input {_dims(self.size)}"
            )
        if self.padding_mode == "circular" and any(pad > n for pad, n in widest):
            raise ValueError(
                f"padding_mode='circular' needs padding <= input size, got padding {self.padding} "
                f"for input {_dims(self.size)}"
            )
        out = self.output_size()
        if min(out) < 1:
            raise ValueError(
                f"kernel {self.kernel} with dilation {self.dilation} does not fit input {_dims(self.size)} "
                f"padded by {self.padding}: output would be {_dims(out)}"
            )

    def _validate_transposed(self) -> None:
        # torch/nn/modules/conv.py (_ConvTransposeNd) and aten's output-padding check
        if self.padding_mode != "zeros":
            raise ValueError(
                f"a transposed conv needs padding_mode='zeros' (torch refuses others), got {self.padding_mode!r}"
            )
        if isinstance(self.padding, str):
            raise ValueError(f"a transposed conv needs integer padding, got {self.padding!r}")
        if min(self.padding) < 0:
            raise ValueError(f"padding must be >= 0, got {self.padding}")
        for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True):  # type: ignore[arg-type]
            if op < 0 or (op >= s and op >= d):
                raise ValueError(
                    f"output_padding must be >= 0 and smaller than the stride or the dilation in every dimension, "
                    f"got output_padding {self.output_padding} with stride {self.stride} and dilation {self.dilation}"
                )
        out = self.output_size()
        if min(out) < 1:
            raise ValueError(
                f"transposed conv with kernel {self.kernel}, stride {self.stride}, padding {self.padding} and "
                f"dilation {self.dilation} on input {_dims(self.size)}: output would be {_dims(out)}"
            )

    # --- arithmetic shared by every formulation -------------------------------------------

    @property
    def rank(self) -> int:
        """Spatial dimensions: 1 (Conv1d), 2 (Conv2d) or 3 (Conv3d)."""
        return len(self.size)

    def effective_kernel(self) -> tuple[int, ...]:
        """Span of the dilated kernel: ``d * (k - 1) + 1`` per dimension."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation, strict=True))  # type: ignore[arg-type]

    def pads(self) -> tuple[tuple[int, int], ...]:
        """Explicit padding ``(before, after)`` per spatial dimension, as torch applies it.

        For ``'same'`` torch puts the odd extra row/column after (torch/nn/modules/conv.py:
        ``left_pad = total_padding // 2``).
        """
        if self.padding == "valid":
            return ((0, 0),) * self.rank
        if self.padding == "same":
            return tuple(((e - 1) // 2, e - 1 - (e - 1) // 2) for e in self.effective_kernel())
        return tuple((p, p) for p in self.padding)  # type: ignore[union-attr]

    def torch_pad(self) -> tuple[int, ...]:
        """The padding as ``F.pad`` takes it: last dimension first, (before, after) each."""
        return tuple(v for lo_hi in reversed(self.pads()) for v in lo_hi)

    def padded(self) -> bool:
        return any(lo or hi for lo, hi in self.pads())

    def output_size(self) -> tuple[int, ...]:
        if self.transposed:
            return tuple(
                (n - 1) * s - 2 * p + e + op
                for n, s, p, e, op in zip(
                    self.size, self.stride, self.padding, self.effective_kernel(), self.output_padding, strict=True
                )  # type: ignore[arg-type]
            )
        return tuple(
            (n + lo + hi - e) // s + 1
            for n, (lo, hi), e, s in zip(self.size, self.pads(), self.effective_kernel(), self.stride, strict=True)
        )

    @property
    def in_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def taps(self) -> int:
        """Kernel elements per channel: ``prod(kernel)``."""
        return math.prod(self.kernel)  # type: ignore[arg-type]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.batch, self.in_channels, *self.size)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.transposed:
            return (self.in_channels, self.out_per_group, *self.kernel)  # type: ignore[misc]
        return (self.out_channels, self.in_per_group, *self.kernel)  # type: ignore[misc]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.batch, self.out_channels, *self.output_size())

    @property
    def in_features(self) -> int:
        """Length of the flattened input ``x.flatten(1)``."""
        return self.in_channels * math.prod(self.size)

    @property
    def out_features(self) -> int:
        """Length of the flattened output."""
        return self.out_channels * math.prod(self.output_size())

    def reduction_length(self) -> int:
        """Terms in each output sum (bias excluded): ``in_channels / groups * prod(kernel)``; for a
        transposed conv, ``in_channels / groups`` times the most kernel taps that land on one output
        position (:meth:`taps_per_output`)."""
        if self.transposed:
            return self.in_per_group * self.taps_per_output()
        return self.in_per_group * self.taps

    def taps_per_output(self) -> int:
        """Of a transposed conv: the most (input position, kernel tap) pairs that reach one output
        position, i.e. the most taps of the adjoint conv that read one of its input positions.
        Exact, per dimension: tap ``j`` reaches output ``o`` from input ``i`` when
        ``i * s + j * d - p == o``."""
        most = 1
        for n, k, s, d, p, out in zip(
            self.size, self.kernel, self.stride, self.dilation, self.padding, self.output_size(), strict=True
        ):  # type: ignore[arg-type]
            counts = [0] * out
            for i in range(n):
                for j in range(k):
                    o = i * s + j * d - p
                    if 0 <= o < out:
                        counts[o] += 1
            most *= max(counts)
        return most

    def adjoint(self) -> ConvGeometry:
        """Of a transposed conv: the convolution whose input gradient it is. That conv reads the
        transposed conv's output size, has its channels swapped and the same kernel, stride,
        padding, dilation and groups; its output has this input's size, plus
        ``output_padding // stride`` positions where ``output_padding >= stride`` (then the
        transposed conv equals that input gradient with zero gradient at the extra positions)."""
        if not self.transposed:
            raise ValueError("adjoint: the geometry must be a transposed conv (transposed=true)")
        return ConvGeometry(
            self.batch, self.out_channels, self.in_channels, self.output_size(), self.kernel, self.stride,
            self.padding, self.dilation, self.groups, bias=False,
        )  # fmt: skip

    def is_pointwise(self) -> bool:
        return not self.transposed and set(self.kernel) == {1} and not self.padded()  # type: ignore[arg-type]

    def is_full_kernel(self) -> bool:
        return (
            not self.transposed and self.kernel == self.size and not self.padded() and set(self.dilation) == {1}  # type: ignore[arg-type]
        )

    def is_patch(self) -> bool:
        """Non-overlapping patches: stride == kernel, no padding, no dilation (a ViT patch
        embedding as a conv; transposed: the un-patchify of a decoder)."""
        plain = self.stride == self.kernel and set(self.dilation) == {1} and not self.padded()
        return plain and (not self.transposed or set(self.output_padding) == {0})  # type: ignore[arg-type]

    def dense_numel(self) -> int:
        """Elements of the dense ``[out_features, in_features]`` matrix equal to this conv."""
        return self.out_features * self.in_features

    def describe(self) -> str:
        """One short line; defaults (stride 1, no padding, groups 1 ...) are left out."""

        parts = [
            f"N{self.batch} C{self.in_channels} {_dims(self.size)} -> O{self.out_channels}",
            f"k{_dims(self.kernel)}",
        ]
        if self.transposed:
            parts.insert(1, "transposed")
        if set(self.stride) != {1}:
            parts.append(f"s{_dims(self.stride)}")
        if self.padded() or self.padding == "same":
            parts.append(f"p{self.padding if isinstance(self.padding, str) else _dims(self.padding)}")
        if set(self.output_padding) != {0}:  # type: ignore[arg-type]
            parts.append(f"op{_dims(self.output_padding)}")  # type: ignore[arg-type]
        if set(self.dilation) != {1}:
            parts.append(f"d{_dims(self.dilation)}")
        if self.groups != 1:
            parts.append(f"g{self.groups}")
        if self.padding_mode != "zeros":
            parts.append(self.padding_mode)
        parts.append("bias" if self.bias else "no-bias")
        return " ".join(parts)

    # --- serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    def minimal_dict(self) -> dict[str, Any]:
        """The fields that differ from their defaults (ones, zeros, groups 1 ...): what a case id
        hashes, so that adding a field with a default later leaves every stored id valid."""
        defaults = ConvGeometry(1, 1, 1, (1,) * self.rank)
        data = self.to_dict()
        fixed = ("batch", "in_channels", "out_channels", "size")
        return {k: v for k, v in data.items() if k in fixed or v != defaults.to_dict()[k]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConvGeometry:
        if not isinstance(data, dict):
            raise ValueError(f"geometry must be an object of ConvGeometry fields, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"geometry has unknown field(s) {unknown}; known: {known}")
        missing = [n for n in ("batch", "in_channels", "out_channels", "size") if n not in data]
        if missing:
            raise ValueError(f"geometry is missing required field(s) {missing}")
        values = dict(data)
        size = values["size"]
        if isinstance(size, list):
            values["size"] = tuple(size)
        return cls(**values)
