"""Timing recorded alongside the check, and the tables built from it.

- :mod:`~linconv.timing.recorder`: the Recorder (an observer of every measured formulation),
  Sample, the thread setting every linconv timing uses;
- :mod:`~linconv.timing.stats`: quartiles and size buckets;
- :mod:`~linconv.timing.tables`: seconds per call and paired ratios, per cell.

Timing never decides pass/fail. Imports :mod:`linconv.core` and :mod:`linconv.measure`.
"""

from linconv.timing.recorder import (
    DEFAULT_EVERY,
    PHASES,
    Recorder,
    Sample,
    problem_size,
    synchronized_clock,
    timing_threads,
)
from linconv.timing.stats import Stats, bucket_range, quantiles, size_bucket, stats
from linconv.timing.tables import formulation_order, pairs, ratio_rows, timing_rows

__all__ = [
    "DEFAULT_EVERY",
    "PHASES",
    "Recorder",
    "Sample",
    "Stats",
    "bucket_range",
    "formulation_order",
    "pairs",
    "problem_size",
    "quantiles",
    "ratio_rows",
    "size_bucket",
    "stats",
    "synchronized_clock",
    "timing_rows",
    "timing_threads",
]
