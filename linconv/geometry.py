"""The shape of one convolution: everything that decides which linear map a Conv2d computes.

A :class:`ConvGeometry` is plain data (ints, tuples, strings) so that a case prints as a bug
report and survives a JSON round trip. It knows the arithmetic every formulation shares: the
explicit padding torch applies, the output size, and the reduction length of each sum.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["PADDING_MODES", "ConvGeometry", "Pair", "pair"]

Pair = tuple[int, int]

# The padding modes nn.Conv2d accepts (torch/nn/modules/conv.py, _ConvNd.__init__).
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def pair(value: int | Pair | list[int], name: str) -> Pair:
    """Normalise an int or a 2-sequence of ints to a pair, naming ``name`` when it is neither."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        return (value, value)
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


@dataclass(frozen=True)
class ConvGeometry:
    """Geometry of ``Conv2d(in_channels, out_channels, kernel, ...)`` on ``[batch, in_channels, height, width]``.

    ``padding`` is a pair of ints (symmetric, as nn.Conv2d takes it) or the strings ``"same"`` /
    ``"valid"``. Instances are validated on construction, so every geometry that exists is one
    torch accepts and that produces an output of at least 1x1.
    """

    batch: int
    in_channels: int
    out_channels: int
    height: int
    width: int
    kernel: Pair = (1, 1)
    stride: Pair = (1, 1)
    padding: Pair | str = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    padding_mode: str = "zeros"
    bias: bool = True

    def __post_init__(self) -> None:
        for name in ("kernel", "stride", "dilation"):
            object.__setattr__(self, name, pair(getattr(self, name), name))
        if not isinstance(self.padding, str):
            object.__setattr__(self, "padding", pair(self.padding, "padding"))
        self._validate()

    def _validate(self) -> None:
        for name in ("batch", "in_channels", "out_channels", "height", "width", "groups"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("kernel", "stride", "dilation"):
            if min(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1 in both dimensions, got {getattr(self, name)}")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"groups={self.groups} must divide in_channels={self.in_channels} and out_channels={self.out_channels}"
            )
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {self.padding_mode!r}")
        if isinstance(self.padding, str):
            if self.padding not in ("same", "valid"):
                raise ValueError(f"padding must be a pair of ints, 'same' or 'valid', got {self.padding!r}")
            if self.padding == "same" and self.stride != (1, 1):
                raise ValueError(f"padding='same' needs stride (1, 1) (torch refuses it), got {self.stride}")
        elif min(self.padding) < 0:
            raise ValueError(f"padding must be >= 0, got {self.padding}")
        top, bottom, left, right = self.pad_amounts()
        if self.padding_mode == "reflect" and (max(top, bottom) >= self.height or max(left, right) >= self.width):
            raise ValueError(
                f"padding_mode='reflect' needs padding < input size, got padding {self.padding} "
                f"for input {self.height}x{self.width}"
            )
        if self.padding_mode == "circular" and (max(top, bottom) > self.height or max(left, right) > self.width):
            raise ValueError(
                f"padding_mode='circular' needs padding <= input size, got padding {self.padding} "
                f"for input {self.height}x{self.width}"
            )
        out_h, out_w = self.output_size()
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f"kernel {self.kernel} with dilation {self.dilation} does not fit input "
                f"{self.height}x{self.width} padded by {self.padding}: output would be {out_h}x{out_w}"
            )

    # --- arithmetic shared by every formulation -------------------------------------------

    def effective_kernel(self) -> Pair:
        """Span of the dilated kernel: ``d * (k - 1) + 1`` per dimension."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation, strict=True))  # type: ignore[return-value]

    def pad_amounts(self) -> tuple[int, int, int, int]:
        """Explicit padding ``(top, bottom, left, right)`` that torch applies.

        For ``'same'`` torch puts the odd extra row/column at the bottom/right
        (torch/nn/modules/conv.py: ``left_pad = total_padding // 2``).
        """
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            total_h, total_w = (e - 1 for e in self.effective_kernel())
            return (total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2)
        ph, pw = self.padding  # type: ignore[misc]
        return (ph, ph, pw, pw)

    def output_size(self) -> Pair:
        top, bottom, left, right = self.pad_amounts()
        eh, ew = self.effective_kernel()
        sh, sw = self.stride
        return ((self.height + top + bottom - eh) // sh + 1, (self.width + left + right - ew) // sw + 1)

    @property
    def in_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.in_channels, self.height, self.width)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_per_group, *self.kernel)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.out_channels, *self.output_size())

    @property
    def in_features(self) -> int:
        """Length of the flattened input ``x.flatten(1)``."""
        return self.in_channels * self.height * self.width

    @property
    def out_features(self) -> int:
        """Length of the flattened output."""
        out_h, out_w = self.output_size()
        return self.out_channels * out_h * out_w

    def reduction_length(self) -> int:
        """Terms in each output sum (bias excluded): ``in_channels / groups * kh * kw``."""
        return self.in_per_group * self.kernel[0] * self.kernel[1]

    def is_pointwise(self) -> bool:
        return self.kernel == (1, 1) and self.pad_amounts() == (0, 0, 0, 0)

    def is_full_kernel(self) -> bool:
        return (
            self.kernel == (self.height, self.width) and self.pad_amounts() == (0, 0, 0, 0) and self.dilation == (1, 1)
        )

    def dense_numel(self) -> int:
        """Elements of the dense ``[out_features, in_features]`` matrix equal to this conv."""
        return self.out_features * self.in_features

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConvGeometry:
        if not isinstance(data, dict):
            raise ValueError(f"geometry must be an object of ConvGeometry fields, got {type(data).__name__}")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"geometry has unknown field(s) {unknown}; known: {list(cls.__dataclass_fields__)}")
        missing = [n for n in ("batch", "in_channels", "out_channels", "height", "width") if n not in data]
        if missing:
            raise ValueError(f"geometry is missing required field(s) {missing}")
        fields = dict(data)
        for name in ("kernel", "stride", "dilation"):
            if name in fields:
                fields[name] = pair(fields[name], name)
        if "padding" in fields and not isinstance(fields["padding"], str):
            fields["padding"] = pair(fields["padding"], "padding")
        return cls(**fields)
