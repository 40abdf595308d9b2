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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch.utils.benchmark import timer as synchronized_clock
from torch.utils.benchmark.utils.common import set_torch_threads

from linconv.core.cases import Case
from linconv.lanes.execution import compile_stats
from linconv.measure import Workload
from linconv.timing.pace import pacer
from linconv.timing.stats import quantiles

__all__ = [
    "BLOCKS",
    "BUDGET_S",
    "DEFAULT_EVERY",
    "DEFAULT_TIMING_THREADS",
    "MAX_NUMBER",
    "PHASES",
    "WARMUP_S",
    "Recorder",
    "Sample",
    "problem_size",
    "timing_threads",
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


def timing_threads() -> int:
    """The intra-op thread count every linconv timing uses (the recorder, the benchmarks)."""
    text = os.environ.get("LINCONV_TIMING_THREADS", str(DEFAULT_TIMING_THREADS))
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"LINCONV_TIMING_THREADS must be an int >= 1, got {text!r}")
    return int(text)


def problem_size(case: Case) -> int:
    """Multiply-adds of the linear map the case's relation computes: the conv's
    ``N * O * prod(output size) * (C/g * prod(kernel))``, plus the Linear head's ``N * head * out_features``
    when it has one."""
    g = case.geometry
    size = g.batch * g.out_features * g.reduction_length()
    if case.head_features:
        size += g.batch * case.head_features * g.out_features
    return size


@dataclass
class Sample:
    """One example's timings: seconds per call, by formulation, then phase."""

    relation: str
    device: str
    dtype: str
    size: int
    mode: str = "default"  # the device's precision mode (linconv.lanes.modes.DEVICE_MODES)
    execution: str = "eager"  # the execution lane (linconv.lanes.execution): compiled timings never pool with eager
    times: dict[str, dict[str, float]] = field(default_factory=dict)
    pace_s: float | None = None  # seconds per call of the pacer (linconv.timing.pace), timed beside the example

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
            execution=str(data.get("execution", "eager")),
            times={f: {p: float(t) for p, t in phases.items()} for f, phases in data["times"].items()},
            pace_s=None if data.get("pace_s") is None else float(data["pace_s"]),
        )


class _Call:
    """The statement the one Timer runs: ``call.fn()``; swapping ``fn`` reuses the compiled Timer."""

    fn: Callable[[], object] = staticmethod(lambda: None)


class Recorder:
    """Times each formulation of each example (an ``Observer`` for ``run_relation``).

    ``every``: time one example in ``every`` per relation and device (1: all); the count is
    deterministic, and the check itself runs on every example whatever ``every`` is. ``threads``:
    intra-op threads while timing (default :func:`timing_threads`). ``mode`` and ``execution``:
    the precision mode and execution lane the current test runs under (the pytest plugin sets them
    per test). In a compiled lane the checked call compiles (a new graph, or a recompile) and the
    timed calls run the compiled code: compile time is reported apart (the tallies' ``compile``).
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
        self.execution = "eager"
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
            sample = Sample(relation, case.device, case.dtype, problem_size(case), self.mode, self.execution)
            self.samples.append(sample)
            try:
                with set_torch_threads(self.threads):
                    pacer()
                    sample.pace_s = self.time_call(pacer)
            except Exception as exc:  # timing must never fail a check
                self.errors.append(f"{relation}/pacer: {type(exc).__name__}: {exc}")
        self._current = (relation, case, sample)
        return sample

    def _time(self, work: Workload, checked_s: float) -> dict[str, float]:
        times = {"forward": self._time_phase(work.forward, checked_s)}
        if work.backward is not None:
            backward = work.backward()
            if backward is not None:
                times["backward"] = self._time_phase(backward, checked_s)
        return times

    def _time_phase(self, fn: Callable[[], object], checked_s: float) -> float:
        """:meth:`time_call`; in a compiled execution lane after one more untimed call (the forward
        without autograd is a graph of its own, compiled on its first call), and only if nothing
        compiled while the clock ran: compile time is reported apart (the tallies' ``compile``),
        never inside a timing."""
        if self.execution == "eager":
            return self.time_call(fn, checked_s)
        fn()
        graphs = compile_stats().graphs
        seconds = self.time_call(fn, math.inf)  # the checked call's time includes compiling: no yardstick
        if compile_stats().graphs != graphs:
            raise RuntimeError("a graph compiled while it was timed: timing dropped")
        return seconds

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
