"""One computed tensor against its float64 reference: the worst element by error / bound.

:func:`compare` is the only place a verdict on a tensor is made, for every relation: the error
model's bound (:func:`linconv.errormodel.bound`), a bound a relation derives on top of it
(``limit``: the classifier head's loss terms), or the exact lane (bit for bit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from linconv.errormodel import Precision, bound, required_c

__all__ = ["Comparison", "compare", "float64_cpu", "unravel"]


@dataclass(frozen=True)
class Comparison:
    """One computed tensor against the reference: the worst element by error / bound."""

    formulation: str
    tensor: str
    exact: bool
    ratio: float
    index: tuple[int, ...] = ()
    value: float = 0.0
    reference: float = 0.0
    error: float = 0.0
    bound: float = 0.0
    problem: str = ""  # a shape mismatch or missing tensor, stated in words
    c_needed: float = math.nan  # smallest error-model constant C that covers this tensor (calibration)
    # what the tensor is judged against: the float64 "reference", or the same formulation run
    # "eager"ly (a compiled execution lane's agreement check, linconv.relations.execution)
    against: str = "reference"

    @property
    def ok(self) -> bool:
        return not self.problem and self.ratio <= 1.0

    def describe(self) -> str:
        if self.problem:
            return f"{self.formulation} {self.tensor}: {self.problem}"
        lane = "exact lane (bit-for-bit)" if self.exact else "error model"
        against = "float64 reference" if self.against == "reference" else f"{self.against} value"
        return (
            f"{self.formulation} {self.tensor} at index {list(self.index)}: got {self.value!r}, "
            f"{against} {self.reference!r}, |error| {self.error:.3e} > bound {self.bound:.3e} "
            f"(ratio {self.ratio:.3g}, {lane})"
        )


def float64_cpu(t: torch.Tensor) -> torch.Tensor:
    """A float64, CPU, contiguous copy: the reference runs on the canonical layout, so that a
    layout bug in torch (a channels_last or unusual-stride path) cannot hide in the reference too
    (docs/robustness.md: torch 2.13's float64 grouped conv with a non-canonical batch stride)."""
    return t.detach().to("cpu", torch.float64).contiguous()


def unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Multi-index of a flat position (torch.unravel_index costs milliseconds per call)."""
    index = []
    for size in reversed(shape):
        flat, rest = divmod(flat, size)
        index.append(rest)
    return tuple(reversed(index))


def compare(
    formulation: str,
    tensor: str,
    computed: torch.Tensor | None,
    reference: torch.Tensor | None,
    *,
    magnitude: torch.Tensor | None = None,
    reduction: int = 1,
    precision: Precision | None = None,
    exact: bool = False,
    limit: torch.Tensor | None = None,
    missing_is_zero: bool = True,
    against: str = "reference",
    rounded: torch.Tensor | float | None = None,
) -> Comparison:
    """The worst element of ``computed`` against ``reference`` by error / bound.

    The bound is, in this order: zero in the ``exact`` lane; ``limit`` where the relation derives
    its own; else the error model for ``magnitude`` (``|W| (*) |x| + |b|`` or its backward
    analogue), ``reduction`` terms, ``precision`` and the magnitude ``rounded`` of what the
    formulation rounds before its result (None: unknown, charged against ``magnitude``). A
    ``computed`` of None is a zero tensor when ``missing_is_zero`` (a gradient that never reached
    a leaf), else a problem, as is a tensor that only one side has. ``against`` names what
    ``reference`` is when it is not the float64 reference (``"eager"``: the same formulation run
    eagerly)."""
    if reference is None or (computed is None and not missing_is_zero):
        if computed is None and reference is None:
            return Comparison(formulation, tensor, exact, 0.0, against=against)
        side = "the reference" if computed is None else "the formulation"
        return Comparison(
            formulation, tensor, exact, math.inf, problem=f"present on {side}'s side only", against=against
        )
    if computed is None:
        computed = torch.zeros_like(reference)
    if tuple(computed.shape) != tuple(reference.shape):
        return Comparison(
            formulation,
            tensor,
            exact,
            math.inf,
            problem=f"shape {tuple(computed.shape)} differs from the reference's {tuple(reference.shape)}",
            against=against,
        )
    value = float64_cpu(computed)
    reference = float64_cpu(reference)
    error = (value - reference).abs()
    c_needed = math.nan
    if exact:
        limit = torch.zeros_like(reference)
        ratio = torch.where(error == 0, 0.0, math.inf)
    else:
        if limit is None:
            if magnitude is None or precision is None:
                raise ValueError("compare: an error-model comparison needs magnitude and precision (or a limit)")
            limit = bound(reference, magnitude, reduction, precision, rounded=rounded)
            c_needed = required_c(reference, magnitude, error, reduction, precision, rounded=rounded)
        limit = limit.expand_as(reference)
        ratio = error / limit
    ratio = torch.nan_to_num(ratio, nan=math.inf, posinf=math.inf)
    if ratio.numel() == 0:
        return Comparison(formulation, tensor, exact, 0.0, against=against)
    flat = int(torch.argmax(ratio))
    return Comparison(
        formulation=formulation,
        tensor=tensor,
        exact=exact,
        ratio=float(ratio.flatten()[flat]),
        index=unravel(flat, tuple(ratio.shape)),
        value=float(value.flatten()[flat]),
        reference=float(reference.flatten()[flat]),
        error=float(error.flatten()[flat]),
        bound=float(limit.flatten()[flat]),
        c_needed=c_needed,
        against=against,
    )
