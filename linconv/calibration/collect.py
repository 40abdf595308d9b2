"""Calibrating the error model's constant C from measurements.

For every example the properties would draw (same strategies, Hypothesis steering toward large
errors with ``target``), each comparison records the smallest C that would have covered it
(``Comparison.c_needed``). The distribution per dtype and formulation, and its maximum, decide
C: the chosen constant must sit above every measured need (no false alarms) with a margin, and
far below what a one-term error needs (tests/test_sharpness.py). The data and the reasoning are
kept in docs/calibration.md and docs/calibration.json.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from hypothesis import HealthCheck, Phase, given, settings, target
from hypothesis import seed as hypothesis_seed

from linconv.core.cases import Case
from linconv.errormodel import C_CALIBRATED
from linconv.lanes.execution import execution_lane
from linconv.relations import get, in_lane, lane_unavailable, relations
from linconv.search.placement import on_device
from linconv.search.profiles import profile

__all__ = ["Sample", "calibrated_relations", "collect", "current_constant", "percentile", "render_markdown",
           "summarize"]  # fmt: skip


def calibrated_relations(execution: str = "eager") -> tuple[str, ...]:
    """Relations whose comparisons feed the calibration of C (``Relation.calibrated``: the error
    model's own bound, or one derived from it; init is exact by construction) and that can run in
    execution lane ``execution`` (on the CPU)."""
    return tuple(r.name for r in relations() if r.calibrated and not lane_unavailable(r, execution, "cpu"))


@dataclass(frozen=True)
class Sample:
    relation: str
    dtype: str
    values: str
    formulation: str
    tensor: str
    c_needed: float
    ratio: float
    execution: str = "eager"  # the execution lane (linconv.lanes.execution) it was measured in


def collect(
    relation: str, examples: int, *, seed: int = 0, device: str = "cpu", execution: str = "eager"
) -> tuple[list[Sample], float]:
    """Run ``examples`` generated cases of ``relation`` in execution lane ``execution``; return
    every comparison's sample and the wall time. Nothing is asserted: calibration measures. In a
    compiled lane only the comparisons against the float64 reference are samples (the agreement
    check's bound is two error bounds, not one)."""
    with execution_lane(execution):
        return _collect(relation, examples, seed=seed, device=device, execution=execution)


def _collect(relation: str, examples: int, *, seed: int, device: str, execution: str) -> tuple[list[Sample], float]:
    samples: list[Sample] = []
    record = in_lane(get(relation), execution)

    # the ci profile's settings, but random (a seed of its own) and without shrinking: nothing fails
    @settings(profile("ci"), max_examples=examples, derandomize=False, print_blob=False,
              phases=[Phase.generate, Phase.target], suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=get(relation).strategy())
    def run(case: Case) -> None:
        result = record.run(on_device(case, device, relation))
        worst = 0.0
        for c in result.comparisons:
            if c.exact or c.problem or c.against != "reference":
                continue
            samples.append(Sample(relation, case.dtype, case.values, c.formulation, c.tensor, c.c_needed, c.ratio,
                                  execution))  # fmt: skip
            if not math.isnan(c.c_needed):
                worst = max(worst, c.c_needed)
        target(worst, label="c_needed")

    started = time.perf_counter()
    hypothesis_seed(seed)(run)()
    return samples, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    return float(torch.quantile(torch.tensor(values, dtype=torch.float64), q))


def summarize(samples: Iterable[Sample], key: tuple[str, ...] = ("dtype", "formulation")) -> list[dict]:
    """Rows of ``key`` fields + count and p50/p99/max of c_needed and of error/bound."""
    groups: dict[tuple, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[tuple(getattr(s, k) for k in key)].append(s)
    rows = []
    for group_key, items in sorted(groups.items()):
        needs = [s.c_needed for s in items if not math.isnan(s.c_needed)]
        ratios = [s.ratio for s in items]
        rows.append({
            **dict(zip(key, group_key, strict=True)),
            "count": len(items),
            "c_needed_p50": percentile(needs, 0.5),
            "c_needed_p99": percentile(needs, 0.99),
            "c_needed_max": max(needs, default=math.nan),
            "ratio_p50": percentile(ratios, 0.5),
            "ratio_p99": percentile(ratios, 0.99),
            "ratio_max": max(ratios, default=math.nan),
        })  # fmt: skip
    return rows


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.3g}"


def render_markdown(rows: list[dict], key: tuple[str, ...]) -> str:
    head = [*key, "comparisons", "C needed p50", "p99", "max", "error/bound p50", "p99", "max"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r[k]) for k in key] + [str(r["count"])]
        cells += [_fmt(r[f]) for f in ("c_needed_p50", "c_needed_p99", "c_needed_max", "ratio_p50", "ratio_p99",
                                       "ratio_max")]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def current_constant() -> float:
    return C_CALIBRATED
