"""Gate a PyTorch upgrade: compare the run reports of a candidate torch with a baseline's, give
one verdict (docs/gating.md).

The candidate fails the gate when it has

- a property violation the baseline did not have (per relation, device, precision mode and dtype), unless it is
  on the inputs of a known upstream bug present in the baseline;
- a known upstream bug that reproduces in the candidate and not in the baseline;
- a regression case that fails (or is a known bug, xfail) where it passed under the baseline, or
  that passed under the baseline and is missing from the candidate;
- a test that failed where it passed under the baseline (junit.xml beside each report, if both have one);
- a formulation, or a benchmark or a formulation's group of benchmarks, slower beyond the noise
  (linconv.gate.stats: pacer units, cell by cell, run-to-run noise from twin runs of each side
  when the runs were made in ABBA order), compared only when all runs come from the same machine;
- with ``fail_on_drift``: a worst error/bound ratio that grew by more than ``drift``.

A report not stamped complete (an interrupted or empty run) is refused by :func:`load_run` unless
``allow_incomplete``. Everything is read from the reports (and junit.xml, benchmark JSONs) alone;
:func:`render_markdown` writes the verdict with one table (relation x formulation x device:
baseline, candidate, ratio, verdict).
"""

from __future__ import annotations

from linconv.gate.correctness import compile_notes, correctness, environment_notes, known_bugs, regression_rows, tests
from linconv.gate.model import *  # noqa: F403  (thresholds, the runs, the rows)
from linconv.gate.model import Gate, Run, Thresholds
from linconv.gate.model import __all__ as _model_all
from linconv.gate.render import render_markdown
from linconv.gate.timing import benchmarks, timings

__all__ = [*_model_all, "compare", "render_markdown"]


def compare(baseline: Run | list[Run], candidate: Run | list[Run], thresholds: Thresholds | None = None) -> Gate:
    """The verdict on ``candidate`` against ``baseline``: one run each, or twin runs each (made in
    ABBA order: baseline, candidate, candidate, baseline)."""
    baselines = baseline if isinstance(baseline, list) else [baseline]
    candidates = candidate if isinstance(candidate, list) else [candidate]
    gate = Gate(baselines, candidates, thresholds or Thresholds())
    environment_notes(gate)
    correctness(gate)
    known_bugs(gate)
    compile_notes(gate)
    regression_rows(gate)
    tests(gate)
    timings(gate)
    benchmarks(gate)
    order = {"(correctness)": 0, "(regression corpus)": 1, "(known bug)": 2}
    gate.rows.sort(  # known-bug rows last, then per relation: correctness, corpus, formulations
        key=lambda r: (
            r.formulation == "(known bug)",
            r.relation,
            r.device.split(" ")[0],
            order.get(r.formulation, 3),
            r.formulation,
            r.device,
        )
    )
    return gate
