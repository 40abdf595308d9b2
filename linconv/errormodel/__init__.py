"""The error model: how far a computed tensor may honestly be from its float64 reference.

- :mod:`~linconv.errormodel.constants`: every constant, with its source (C, unit roundoffs,
  accumulation formats, TF32 input rounding, the negative controls' thresholds);
- :mod:`~linconv.errormodel.precision`: the bound ``u_out|y| + C(...)M + tiny`` and the smallest
  C a measured error needs (calibration);
- :mod:`~linconv.errormodel.rounding`: the roundings one formulation has on one case (flags in
  force, underflow scale) as a :class:`~linconv.errormodel.precision.Precision`;
- :mod:`~linconv.errormodel.partial_sums`: kernels that add partial sums in the storage dtype;
- :mod:`~linconv.errormodel.loss`: the extra terms of a cross-entropy loss and its softmax.

Imports :mod:`linconv.core` and :mod:`linconv.lanes` only.
"""

from linconv.errormodel.constants import C_CALIBRATED
from linconv.errormodel.precision import Precision, bound, exactly_representable_below, precision_of, required_c
from linconv.errormodel.rounding import formulation_precision, underflow_scale

__all__ = [
    "C_CALIBRATED",
    "Precision",
    "bound",
    "exactly_representable_below",
    "formulation_precision",
    "precision_of",
    "required_c",
    "underflow_scale",
]
