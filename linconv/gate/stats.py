"""The statistics of the timing verdict: a robust shift between two sets of timings, its
uncertainty within a run (bootstrap) and between runs (twin runs of one side), and the rule.

Timings are compared on a log scale, cell by cell (formulation x dtype x phase x size bucket: a
cell holds examples of one kind), so that a cell of 50 µs calls and one of 5 ms calls weigh the
same: ``shift = weighted mean over cells of log(median_candidate / median_baseline)``, weights the
smaller count of the two. A shift of log(1.1) is a 10% slowdown, whatever the sizes.

Two sources of noise: the examples within a run (the bootstrap resamples each cell), and the run
itself (load, clock, allocator state differ between two runs of the same torch). The second is
measured where it matters: with twin runs of each side (ABBA: baseline, candidate, candidate,
baseline), the shift between a side's two runs, over every row, is that noise; with one run per
side, the noise measured on this project's machine (:data:`DEFAULT_RUN_NOISE`) stands in.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence

__all__ = ["Shift", "cell_shift", "row_noise", "run_noise", "verdict"]

Cells = dict[tuple[str, ...], list[float]]


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


class Shift:
    """The log shift of the candidate's timings over the baseline's, and its within-run standard error."""

    def __init__(self, shift: float, se: float, cells: int, count: int) -> None:
        self.shift, self.se, self.cells, self.count = shift, se, cells, count

    @property
    def ratio(self) -> float:
        return math.exp(self.shift)


def _weighted_shift(base: Cells, cand: Cells, keys: list[tuple[str, ...]]) -> float:
    total = weight = 0.0
    for key in keys:
        w = min(len(base[key]), len(cand[key]))
        total += w * (math.log(_median(cand[key])) - math.log(_median(base[key])))
        weight += w
    return total / weight


def cell_shift(base: Cells, cand: Cells, *, min_count: int, rounds: int = 200, seed: int = 0) -> Shift | None:
    """The shift over the cells both sides timed at least ``min_count`` times (None: no such cell),
    with a bootstrap standard error: each cell's timings resampled with replacement, ``rounds`` times."""
    keys = sorted(k for k in base.keys() & cand.keys() if len(base[k]) >= min_count and len(cand[k]) >= min_count)
    if not keys:
        return None
    shift = _weighted_shift(base, cand, keys)
    rng = random.Random(seed)
    draws = []
    for _ in range(rounds):
        b = {k: rng.choices(base[k], k=len(base[k])) for k in keys}
        c = {k: rng.choices(cand[k], k=len(cand[k])) for k in keys}
        draws.append(_weighted_shift(b, c, keys))
    mean = sum(draws) / rounds
    se = math.sqrt(sum((d - mean) ** 2 for d in draws) / (rounds - 1))
    return Shift(shift, se, len(keys), sum(min(len(base[k]), len(cand[k])) for k in keys))


def run_noise(twin_shifts: Iterable[float]) -> float | None:
    """The standard deviation of ONE run's log timing, from shifts between twin runs of one side
    (A2 over A1, B2 over B1, every row): robustly, 1.4826 x the median absolute shift, over sqrt(2)
    (a twin shift is the difference of two runs). None with fewer than 4 twin shifts."""
    values = [abs(v) for v in twin_shifts]
    if len(values) < 4:
        return None
    return 1.4826 * _median(values) / math.sqrt(2)


def row_noise(pooled: float, own_twins: Iterable[float]) -> float:
    """One run's noise for ONE row (a formulation's timings, a benchmark or a group of them): the
    pooled noise of every row, or more where this row's own twin runs differ by more. Noise is not
    the same for every row: a memory-bound benchmark (a dense 2048 x 2048 Linear) moves by up to 2x
    between runs of the same torch on a machine whose cache is shared, while a compute-bound conv
    moves by 2-3 %; the pooled (median) noise is the latter's, and trusting it for the former is a
    false alarm. A row whose own twins differ by d is given at least |d| / sqrt(2) (one run's share
    of a difference of two runs) -- docs/gating.md, "What is measured"."""
    return max([pooled, *(abs(t) / math.sqrt(2) for t in own_twins)])


def verdict(shift: float, se: float, *, margin: float, z: float) -> str:
    """'slower' when the shift exceeds both the margin (log(1 + margin)) and z standard errors;
    'faster' for the mirror image; else 'same'."""
    floor = math.log1p(margin)
    if shift > floor and shift > z * se:
        return "slower"
    if -shift > floor and -shift > z * se:
        return "faster"
    return "same"
