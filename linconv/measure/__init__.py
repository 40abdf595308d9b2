"""Measuring: run formulations on a case and judge every tensor against its float64 reference.

- :mod:`~linconv.measure.compare`: :func:`compare`, the one verdict on one tensor (error model,
  a relation's own limit, or the exact lane);
- :mod:`~linconv.measure.linear_map`: the formulations of one linear map, forward and backward;
- :mod:`~linconv.measure.result`: RelationResult and RelationViolation (the bug-report message);
- :mod:`~linconv.measure.workload`: one formulation on one case, runnable again for timing;
- :mod:`~linconv.measure.cross_device`: the same case on two devices.

Imports :mod:`linconv.core`, :mod:`linconv.lanes` and :mod:`linconv.errormodel` only: relations
(one layer up) hand it what to measure.
"""

from linconv.measure.compare import Comparison, compare, float64_cpu, unravel
from linconv.measure.linear_map import measure_linear_map
from linconv.measure.result import RelationResult, RelationViolation, flags_in_force
from linconv.measure.workload import Observer, Workload

__all__ = [
    "Comparison",
    "Observer",
    "RelationResult",
    "RelationViolation",
    "Workload",
    "compare",
    "flags_in_force",
    "float64_cpu",
    "measure_linear_map",
    "unravel",
]
