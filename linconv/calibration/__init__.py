"""Calibrating the error model's constant C from measurements (docs/calibration.md).

Imports :mod:`linconv.relations`, :mod:`linconv.search` and below.
"""

from linconv.calibration.collect import (
    Sample,
    calibrated_relations,
    collect,
    current_constant,
    percentile,
    render_markdown,
    summarize,
)

__all__ = ["Sample", "calibrated_relations", "collect", "current_constant", "percentile", "render_markdown",
           "summarize"]  # fmt: skip
