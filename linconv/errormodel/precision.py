"""The error model: how far a computed linear map may honestly be from the float64 reference.

For an output element ``y = sum_k w_k x_k + b`` computed in a floating-point format::

    |y_hat - y| <= u_out * |y| + C * (u_in + sqrt(K) * u_acc + u_part) * M + C * u_mid * min(R + |y|, M) + tiny

- ``M = (|W| (*) |x|) + |b|`` is the same linear map applied to absolute values (float64): the
  classic bound for a sum of K products scales with it (Higham, *Accuracy and Stability of
  Numerical Algorithms*, 2nd ed., eq. 3.5), and it does not vanish under cancellation.
- ``K`` is the reduction length; ``sqrt(K)`` is the probabilistic growth of rounding errors
  (Higham & Mary, SIAM J. Sci. Comput. 41(5), 2019) that blocked/FMA kernels realise in
  practice; the worst case is ``K``. ``C`` is calibrated (docs/calibration.md) so that the
  model never fires on correct kernels yet still sees one dropped term.
- ``u_acc`` is the accumulation unit roundoff, ``u_in`` the rounding of inputs inside the
  kernel (TF32, bf16 math modes; 0 when the kernel reads inputs exactly), ``u_out`` the rounding
  of the stored result.
- ``u_mid * R`` charges the intermediate roundings to the storage format: each one costs ``u``
  times the float64 magnitude of what is rounded, carried to the result on absolute values
  (linconv.errormodel.intermediates): ``|W x|`` for a product rounded before its bias add,
  ``|W2| |h|`` for a stored hidden layer ``h``, ``|W2 W1| |x|`` for a fused weight rounded once.
  ``R`` is per element and, for random signs, about ``M / sqrt(K)``: the bound is ~sqrt(K)
  sharper in half precision than charging ``u M`` (docs/calibration.md, "Intermediate
  roundings"). The result is rounded too: ``u_out |y|`` is its correct rounding, and ``C u |y|``
  leaves room for a kernel that rounds it faithfully (within one ulp, ``2u|y|``) or once more
  (the benign fault ``one_ulp_output_noise``: 1.5 ulp), as ``C u M >= C u |y|`` did before.
  The charge is capped at ``M``, the old one: where nothing cancels (``R + |y|`` up to ``2M``:
  positive values) the bound stays what it was and C covers the rounding as calibrated then;
  where the result cancels, ``R + |y| << M`` and the bound is sharp.
  Where a formulation does not state its roundings, or the kernel may not be a sum of products
  rounded element by element (``Precision.per_element`` False: a cuDNN conv may transform its
  operands, Winograd/FFT; MPS is unmeasured), ``R + |y|`` is replaced by ``M``: the older, blunt
  charge.
- ``u_part = sqrt(T) * u_storage`` when a kernel adds T partial sums in a storage format coarser
  than its accumulator (float16/bfloat16 col2im and slow-conv backward on the CPU:
  linconv.errormodel.partial_sums); 0 otherwise.
- ``tiny`` covers underflow: the spacing of subnormals in the storage format, per stored value,
  times ``S = max(1, largest |value| of the case's inputs, parameters and upstream gradient)``:
  an intermediate that underflows (a float16 fused weight ``W2 W1`` of 8e-6 is subnormal) is off
  by up to one subnormal spacing absolutely, and the next product multiplies that by up to S.
  Measured: thorough seed 6 (docs/robustness.md), a float16 fused grad x off by 6.3e-7 at
  -1.7e-4, 5 subnormal spacings times |upstream| 21 / 2 in one term.

The constants are in linconv.errormodel.constants, each with its source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from linconv.errormodel.constants import ACCUMULATION_BITS, C_CALIBRATED, SIGNIFICAND_BITS

__all__ = [
    "C_CALIBRATED",
    "Precision",
    "bound",
    "exactly_representable_below",
    "precision_of",
    "required_c",
]


@dataclass(frozen=True)
class Precision:
    """Unit roundoffs of one formulation's arithmetic."""

    u_out: float
    u_mid: float
    u_acc: float
    u_in: float
    tiny: float
    u_part: float = 0.0
    # intermediate roundings charged per element against what is rounded (R); False: against M
    per_element: bool = True

    @property
    def significand_bits(self) -> int:
        return round(-math.log2(self.u_out))


def precision_of(
    dtype: torch.dtype,
    *,
    input_rounding: float = 0.0,
    storage_accumulation: bool = False,
    storage_partial_sums: int = 0,
    underflow_scale: float = 1.0,
    per_element: bool = True,
) -> Precision:
    """The error-model parameters for results stored in ``dtype``.

    ``input_rounding`` is the unit roundoff applied to inputs inside the kernel (``2**-11`` for
    TF32, see linconv.errormodel.rounding); ``u_mid`` is ``u`` of ``dtype``: each intermediate
    rounding to the storage format costs ``u`` times its own magnitude, all of them summed in
    ``R`` (linconv.errormodel.intermediates); ``storage_accumulation`` means the sums run in
    ``dtype`` itself (a scatter-add backward);
    ``storage_partial_sums`` counts partial sums (each accumulated in float32) that a kernel then
    adds in ``dtype`` (linconv.errormodel.partial_sums): it costs ``sqrt(T) * u`` only where ``dtype`` is
    coarser than the accumulator, since otherwise the main ``sqrt(K) * u_acc`` term covers it.
    ``underflow_scale`` is S of the module docstring (>= 1). ``per_element`` False charges the
    intermediate roundings against ``M`` even where a formulation states ``R`` (kernels that
    may transform their operands).
    """
    if dtype not in SIGNIFICAND_BITS:
        raise ValueError(f"dtype must be a floating dtype among {list(SIGNIFICAND_BITS)}, got {dtype}")
    if storage_partial_sums < 0:
        raise ValueError(f"storage_partial_sums must be >= 0, got {storage_partial_sums}")
    if not underflow_scale >= 1.0:
        raise ValueError(f"underflow_scale must be a number >= 1, got {underflow_scale}")
    u = 2.0 ** -SIGNIFICAND_BITS[dtype]
    u_acc = u if storage_accumulation else 2.0 ** -ACCUMULATION_BITS[dtype]
    return Precision(
        u_out=u,
        u_mid=u,
        u_acc=u_acc,
        u_in=input_rounding,
        tiny=float(torch.finfo(dtype).smallest_normal) * float(torch.finfo(dtype).eps) * underflow_scale,
        u_part=math.sqrt(storage_partial_sums) * u if storage_partial_sums > 1 and u > u_acc else 0.0,
        per_element=per_element,
    )


def _relative(precision: Precision, k: int) -> float:
    """The relative terms of the bound charged against ``M``, for a sum of ``k >= 1`` terms."""
    return precision.u_in + math.sqrt(k) * precision.u_acc + precision.u_part


Rounded = torch.Tensor | float | None


def _charged(
    reference: torch.Tensor, magnitude: torch.Tensor, rounded: Rounded, k: int, precision: Precision
) -> torch.Tensor:
    """What ``C`` multiplies: the relative terms times ``M`` plus ``u_mid`` times
    ``min(R + |y|, M)`` (``M`` where ``R`` is unknown or the kernel is not known to round per
    element): never looser than the blunt charge, sharper where the result cancels."""
    if rounded is None or not precision.per_element:
        return (_relative(precision, k) + precision.u_mid) * magnitude
    return _relative(precision, k) * magnitude + precision.u_mid * torch.minimum(rounded + reference.abs(), magnitude)


def bound(
    reference: torch.Tensor,
    magnitude: torch.Tensor,
    reduction_length: int,
    precision: Precision,
    *,
    rounded: Rounded = None,
    c: float = C_CALIBRATED,
) -> torch.Tensor:
    """Per-element bound on ``|computed - reference|`` (float64, same shape as ``reference``).

    ``rounded`` is ``R`` of the module docstring: the float64 magnitude of what the formulation
    rounds to the storage format before its result (0 when nothing; None: unknown, ``M``)."""
    k = max(int(reduction_length), 1)
    charged = _charged(reference, magnitude, rounded, k, precision)
    return precision.u_out * reference.abs() + c * charged + precision.tiny * (k + 1)


def required_c(
    reference: torch.Tensor,
    magnitude: torch.Tensor,
    error: torch.Tensor,
    reduction_length: int,
    precision: Precision,
    *,
    rounded: Rounded = None,
) -> float:
    """The smallest C for which :func:`bound` covers ``error`` everywhere (calibration data)."""
    k = max(int(reduction_length), 1)
    excess = error - precision.u_out * reference.abs() - precision.tiny * (k + 1)
    needed = excess.clamp_min(0) / _charged(reference, magnitude, rounded, k, precision)
    needed = torch.where(excess > 0, needed, 0.0)  # 0/0 where nothing is owed
    return float(needed.max()) if needed.numel() else 0.0


def exactly_representable_below(dtype: torch.dtype) -> float:
    """Every integer of magnitude below this is exact in ``dtype`` (2**p)."""
    return 2.0 ** SIGNIFICAND_BITS[dtype]
