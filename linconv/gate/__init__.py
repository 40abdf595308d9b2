"""Gate a PyTorch upgrade: compare the run report of a candidate torch with a baseline's, give one
verdict (docs/gating.md).

The candidate fails the gate when it has

- a property violation the baseline did not have (per relation, device and dtype),
- a regression case that fails (or is a known bug, xfail) where it passed under the baseline,
- a test that failed where it passed under the baseline (junit.xml beside each report, if both have one),
- a formulation that got slower beyond the noise-aware threshold (:func:`judge_timing` on its
  timings pooled across sizes, :func:`_pooled`), compared only when both runs come from the same
  machine (``machine.fingerprint``),
- with ``fail_on_drift``: a worst error/bound ratio that grew by more than ``drift``;
- with ``fail_on_benchmarks``: a pytest-benchmark benchmark slower by the same rule.

Everything is read from the reports (and junit.xml, benchmark JSONs) alone; :func:`render_markdown`
writes the verdict with one table (relation x formulation x device: baseline, candidate, ratio,
verdict).
"""

from __future__ import annotations

from linconv.gate.correctness import correctness, environment_notes, regression_rows, tests
from linconv.gate.model import *  # noqa: F403  (thresholds, the runs, the rows)
from linconv.gate.model import Gate, Run, Thresholds
from linconv.gate.model import __all__ as _model_all
from linconv.gate.render import render_markdown
from linconv.gate.timing import compare_benchmarks, judge_timing, timings

__all__ = [*_model_all, "compare", "compare_benchmarks", "judge_timing", "render_markdown"]


def compare(baseline: Run, candidate: Run, thresholds: Thresholds | None = None) -> Gate:
    """The verdict on ``candidate`` against ``baseline``."""
    gate = Gate(baseline, candidate, thresholds or Thresholds())
    environment_notes(gate)
    correctness(gate)
    regression_rows(gate)
    tests(gate)
    timings(gate)
    order = {"(correctness)": 0, "(regression corpus)": 1}
    gate.rows.sort(
        key=lambda r: (r.relation, r.device.split(" ")[0], order.get(r.formulation, 2), r.formulation, r.device)
    )
    return gate
