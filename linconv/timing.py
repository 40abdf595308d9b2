"""Timing recorded alongside the check: each formulation's forward and backward on every example.

pytest-benchmark cannot time ``@given`` examples, so :class:`Recorder` plugs into
``run_relation`` as its observer (``SESSION.observer``). For each formulation it first runs what
the check compares, unchanged (that call is also the first warm-up), then times, on the same
tensors, the forward without autograd and — where the relation compares gradients — the backward
of one recorded forward alone (``torch.autograd.grad(..., retain_graph=True)``). Clocks are
``torch.utils.benchmark.timer``, the clock of ``torch.utils.benchmark.Timer``: it synchronises
the accelerator before reading the time; loops run in ``timeit.Timer`` (garbage collection off),
as in ``torch.utils.benchmark.Timer``, but without its two warm-up calls per measurement.
Timing never decides pass/fail: an exception while timing is counted, not raised.

Samples are grouped per example so formulations can be compared pairwise (the ratio of two
formulations on the same data), and aggregated per relation, formulation, device, dtype, phase and
size bucket as median, quartiles and count. Samples are plain data: xdist workers send theirs
to the controller, which merges them (:meth:`Recorder.merge`).
"""

from __future__ import annotations

import math
import os
import timeit
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch.utils.benchmark import timer as synchronized_clock
from torch.utils.benchmark.utils.common import set_torch_threads

from linconv.cases import Case
from linconv.check import Workload

__all__ = [
    "BLOCKS",
    "BUDGET_S",
    "DEFAULT_TIMING_THREADS",
    "DEFAULT_EVERY",
    "MAX_NUMBER",
    "PHASES",
    "WARMUP_S",
    "timing_threads",
    "Recorder",
    "Sample",
    "Stats",
    "formulation_order",
    "pairs",
    "problem_size",
    "quantiles",
    "ratio_rows",
    "size_bucket",
    "stats",
    "timing_rows",
]

PHASES = ("forward", "backward")

# Per (formulation, phase) and example, after the checked call: one timed call (two if the
# first took longer than the checked forward and backward together - a descheduled thread, most
# likely - and the faster counts). A call of BUDGET_S or more is recorded as it is: the checked
# call warmed it up, on such calls the first-call excess was measured at 5-10% (docs/timing.md,
# "Fidelity"), and a second call would double the cost of timing the big examples. A faster one
# gets warm-up calls until WARMUP_S has passed, because right after the check's other work a
# 100 us GEMM ran 1.8x slower on its first call than in a loop and took 1-2 ms of calls to
# settle (1 ms kept the fidelity check within 20% at half the cost of 2 ms); then BLOCKS blocks
# of up to MAX_NUMBER calls that together fill BUDGET_S, recording the median block, so a block
# the scheduler interrupted is outvoted and tiny kernels are averaged over tens of calls.
WARMUP_S = 1e-3
BUDGET_S = 5e-4
MAX_NUMBER = 20
BLOCKS = 3
# Intra-op threads while timing (the checks run with the run's threads): LINCONV_TIMING_THREADS,
# default 1. With 2 threads on a 2-core machine shared with other jobs, every parallel region
# waited for a descheduled thread: a 2-multiply-add conv took 4-12 ms per call (scheduler quanta)
# and per-example ratios spread over 1e-3..1e3 (docs/timing.md, "Threads").
DEFAULT_TIMING_THREADS = 1
# Time one example in DEFAULT_EVERY per relation and device: timing every example cost about as
# much as the rest of the run together (docs/timing.md, "Overhead").
DEFAULT_EVERY = 3

# Size buckets are powers of 4 of the multiply-adds: [2^(2k), 2^(2k+2)).
_BUCKET_LOG2 = 2


def timing_threads() -> int:
    """The intra-op thread count every linconv timing uses (the recorder, the benchmarks)."""
    text = os.environ.get("LINCONV_TIMING_THREADS", str(DEFAULT_TIMING_THREADS))
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"LINCONV_TIMING_THREADS must be an int >= 1, got {text!r}")
    return int(text)


def problem_size(case: Case) -> int:
    """Multiply-adds of the linear map the case's relation computes: the conv's
    ``N * O * Ho * Wo * (C/g * kh * kw)``, plus the Linear head's ``N * head * O*Ho*Wo`` when it has one."""
    g = case.geometry
    out_h, out_w = g.output_size()
    size = g.batch * g.out_channels * out_h * out_w * g.reduction_length()
    if case.head_features:
        size += g.batch * case.head_features * g.out_features
    return size


def size_bucket(size: int) -> str:
    """The bucket of ``size`` multiply-adds, named by its lower end: ``"2^10"`` holds [2^10, 2^12)."""
    exponent = max(0, int(math.log2(max(size, 1))) // _BUCKET_LOG2 * _BUCKET_LOG2)
    return f"2^{exponent}"


def bucket_range(bucket: str) -> tuple[int, int]:
    low = int(bucket.split("^")[1])
    return 2**low, 2 ** (low + _BUCKET_LOG2)


def quantiles(values: Iterable[float]) -> tuple[float, float, float]:
    """First quartile, median and third quartile, interpolated linearly between order
    statistics (numpy's default, ``statistics.quantiles(method='inclusive')``)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("quantiles of an empty sequence")

    def at(p: float) -> float:
        pos = (len(ordered) - 1) * p
        low = math.floor(pos)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)

    return at(0.25), at(0.5), at(0.75)


@dataclass(frozen=True)
class Stats:
    median: float
    q1: float
    q3: float
    count: int

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1


def stats(values: Iterable[float]) -> Stats:
    values = list(values)
    q1, median, q3 = quantiles(values)
    return Stats(median, q1, q3, len(values))


@dataclass
class Sample:
    """One example's timings: seconds per call, by formulation, then phase."""

    relation: str
    device: str
    dtype: str
    size: int
    mode: str = "default"  # the device's precision mode (linconv.devices.DEVICE_MODES)
    times: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sample:
        return cls(
            relation=str(data["relation"]),
            device=str(data["device"]),
            dtype=str(data["dtype"]),
            size=int(data["size"]),
            mode=str(data.get("mode", "default")),
            times={f: {p: float(t) for p, t in phases.items()} for f, phases in data["times"].items()},
        )


class _Call:
    """The statement the one Timer runs: ``call.fn()``; swapping ``fn`` reuses the compiled Timer."""

    fn: Callable[[], object] = staticmethod(lambda: None)


class Recorder:
    """Times each formulation of each example (an ``Observer`` for ``run_relation``).

    ``every``: time one example in ``every`` per relation and device (1: all); the count is
    deterministic, and the check itself runs on every example whatever ``every`` is. ``threads``:
    intra-op threads while timing (default :func:`timing_threads`). ``mode``:
    the precision mode the current test runs under (the pytest plugin sets it per test).
    """

    def __init__(
        self, *, budget_s: float = BUDGET_S, max_number: int = MAX_NUMBER, every: int = 1, threads: int | None = None
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every!r}")
        self.threads = timing_threads() if threads is None else threads
        self.budget_s = budget_s
        self.max_number = max_number
        self.every = every
        self.mode = "default"
        self.samples: list[Sample] = []
        self.errors: list[str] = []
        # seconds per relation: in the checked calls (the code under test) and in timing them
        self.cost: dict[str, dict[str, float]] = defaultdict(lambda: {"checked_s": 0.0, "timing_s": 0.0})
        self._seen: dict[tuple[str, str], int] = defaultdict(int)
        self._current: tuple[str, Case, Sample | None] | None = None
        self._call = _Call()
        self._clock = timeit.Timer("call.fn()", timer=synchronized_clock, globals={"call": self._call})

    # --- the observer ---------------------------------------------------------------------

    def __call__(self, relation: str, formulation: str, case: Case, work: Workload) -> Any:
        start = synchronized_clock()
        result = work()
        checked = synchronized_clock()
        cost = self.cost[relation]
        cost["checked_s"] += checked - start
        sample = self._sample_for(relation, formulation, case)
        if sample is not None:
            try:
                with set_torch_threads(self.threads):
                    sample.times[formulation] = self._time(work, checked - start)
            except Exception as exc:  # timing must never fail a check
                self.errors.append(f"{relation}/{formulation}: {type(exc).__name__}: {exc}")
            cost["timing_s"] += synchronized_clock() - checked
        return result

    def _sample_for(self, relation: str, formulation: str, case: Case) -> Sample | None:
        """The current example's sample (formulations of one example arrive in a row, on one
        case object), or a new one; None when this example is not sampled."""
        current = self._current
        if current and current[0] == relation and current[1] is case:
            sample = current[2]
            if sample is None or formulation not in sample.times:
                return sample
        key = (relation, case.device)
        self._seen[key] += 1
        sample = None
        if (self._seen[key] - 1) % self.every == 0:
            sample = Sample(relation, case.device, case.dtype, problem_size(case), self.mode)
            self.samples.append(sample)
        self._current = (relation, case, sample)
        return sample

    def _time(self, work: Workload, checked_s: float) -> dict[str, float]:
        times = {"forward": self.time_call(work.forward, checked_s)}
        if work.backward is not None:
            backward = work.backward()
            if backward is not None:
                times["backward"] = self.time_call(backward, checked_s)
        return times

    def time_call(self, fn: Callable[[], object], yardstick_s: float = math.inf) -> float:
        """Seconds per call of ``fn`` (already called once): one call if calls take the budget
        or more, else the median of BLOCKS blocks that fill it, after WARMUP_S of warm-up.
        ``yardstick_s``: the checked call's time (forward and backward); a first call slower than
        that was most likely interrupted, and the faster of two calls counts instead."""
        self._call.fn = fn
        try:
            first = self._clock.timeit(1)
            if first > yardstick_s:
                first = min(first, self._clock.timeit(1))
            if first >= self.budget_s:
                return first
            warmup = min(self.max_number * BLOCKS, int(WARMUP_S / first))
            if warmup:
                first = min(first, self._clock.timeit(warmup) / warmup)
            number = max(1, min(self.max_number, int(self.budget_s / (BLOCKS * first))))
            return quantiles(self._clock.timeit(number) / number for _ in range(BLOCKS))[1]
        finally:
            self._call.fn = _Call.fn

    # --- plain data, for xdist and the report ------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": [s.to_dict() for s in self.samples if s.times],
            "errors": list(self.errors),
            "cost": {r: dict(c) for r, c in self.cost.items()},
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Add another recorder's :meth:`to_dict` (an xdist worker's) to this one."""
        self.samples += [Sample.from_dict(s) for s in data.get("samples", [])]
        self.errors += list(data.get("errors", []))
        for relation, cost in data.get("cost", {}).items():
            for name, seconds in cost.items():
                self.cost[relation][name] += float(seconds)


# --- aggregation ------------------------------------------------------------------------------


def formulation_order(samples: Iterable[Sample]) -> dict[str, list[str]]:
    """Formulations of each relation in the order the relation runs them (first seen first)."""
    order: dict[str, list[str]] = {}
    for s in samples:
        names = order.setdefault(s.relation, [])
        names += [f for f in s.times if f not in names]
    return order


def _bucket_order(bucket: str) -> float:
    return math.inf if bucket == "all" else bucket_range(bucket)[0]


def _rows(groups: dict[tuple[str, ...], list[float]], names: tuple[str, ...], suffix: str) -> list[dict[str, Any]]:
    """One row per group, in key order with buckets by size: key fields, statistics, count."""
    rows = []
    for key in sorted(groups, key=lambda k: (*k[:-1], _bucket_order(k[-1]))):
        fields = dict(zip(names, key, strict=True))
        row: dict[str, Any] = {"key": "|".join(key), **fields}
        if fields["size_bucket"] != "all":
            row["size_lo"], row["size_hi"] = bucket_range(fields["size_bucket"])
        st = stats(groups[key])
        row.update({f"{name}{suffix}": getattr(st, name) for name in ("median", "q1", "q3", "iqr")})
        row["count"] = st.count
        rows.append(row)
    return rows


def timing_rows(samples: Iterable[Sample]) -> list[dict[str, Any]]:
    """Seconds per call, per (relation, formulation, device, mode, dtype, phase, size bucket)."""
    groups: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for s in samples:
        for formulation, phases in s.times.items():
            for phase, seconds in phases.items():
                key = (s.relation, formulation, s.device, s.mode, s.dtype, phase, size_bucket(s.size))
                groups[key].append(seconds)
    return _rows(groups, ("relation", "formulation", "device", "mode", "dtype", "phase", "size_bucket"), "_s")


def pairs(order: dict[str, list[str]]) -> dict[str, list[tuple[str, str]]]:
    """Per relation: (first formulation, each other one); the first is the conv side."""
    return {r: [(names[0], other) for other in names[1:]] for r, names in order.items()}


def ratio_rows(samples: list[Sample]) -> list[dict[str, Any]]:
    """Paired time ratios ``first / other`` on the same examples, per (relation, pair, device,
    mode, dtype, phase, size bucket), and pooled over dtypes and/or buckets (``"all"``).
    A ratio above 1 means the other formulation is faster by that factor."""
    relation_pairs = pairs(formulation_order(samples))
    groups: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for s in samples:
        for num, den in relation_pairs[s.relation]:
            for phase in PHASES:
                a, b = s.times.get(num, {}).get(phase), s.times.get(den, {}).get(phase)
                if a is None or b is None:
                    continue
                bucket = size_bucket(s.size)
                for dtype in (s.dtype, "all"):
                    for size in (bucket, "all"):
                        groups[(s.relation, f"{num}/{den}", s.device, s.mode, dtype, phase, size)].append(a / b)
    return _rows(groups, ("relation", "pair", "device", "mode", "dtype", "phase", "size_bucket"), "")
