"""What the gate compares and what it says: thresholds, the two runs, the verdict's rows."""

from __future__ import annotations

import os
import stat
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linconv.core.fileio import JSONFileError, read_json
from linconv.runreport import REPORT_JSON, ReportError, load_report
from linconv.runreport.completeness import require_complete
from linconv.runreport.schema import validate_benchmarks
from linconv.timing import size_bucket

__all__ = [
    "BENCHMARKS_JSON",
    "DEFAULT_BENCH_MARGIN",
    "DEFAULT_BENCH_NOISE",
    "DEFAULT_DRIFT",
    "DEFAULT_MARGIN",
    "DEFAULT_MIN_COUNT",
    "DEFAULT_RUN_NOISE",
    "DEFAULT_Z",
    "DRIFT_FLOOR",
    "ALLOW_INCOMPLETE_FLAG",
    "JUNIT_XML",
    "Benchmark",
    "Gate",
    "Row",
    "Run",
    "Thresholds",
    "load_benchmarks",
    "load_run",
    "location",
]

# The timing rule (linconv.gate.stats.verdict): slower when the shift of the candidate's timings
# (in pacer units, log scale) exceeds log(1 + MARGIN) AND Z standard errors (within-run bootstrap
# and between-run noise together). Calibrated by benchmarks/gate_power.py on the 2-core machine
# (docs/gating.md, "What is measured"): 11 same-torch runs and 10 slowed candidates in ABBA order;
# z = 7 is the smallest that failed none of the 330 same-torch ABBA comparisons (z = 6 failed 1,
# z = 5 failed 5, z = 3.5 failed 48: that machine's speed changes for minutes at a time).
DEFAULT_MARGIN = 0.05
DEFAULT_Z = 7.0
# Benchmarks: the group of one formulation's benchmarks (one phase, every shape) is slower when its
# shift exceeds log(1 + BENCH_MARGIN) and Z standard errors.
DEFAULT_BENCH_MARGIN = 0.05
# The standard deviation of one run's log timing (property rows; benchmarks) used when a side has
# no twin run to measure it (one run per side): the smallest that failed none of the 110 same-torch
# pairs of the campaign (benchmarks: 0.08 failed 10 at z = 6, 0.12 none).
DEFAULT_RUN_NOISE = 0.10
DEFAULT_BENCH_NOISE = 0.12
# A (dtype, phase, size) cell of a report's timings takes part only with this many timings in both
# runs: the quartiles of fewer are the extreme values themselves.
DEFAULT_MIN_COUNT = 3
# Drift: the worst error/bound of a relation on a device grew by more than this factor ...
DEFAULT_DRIFT = 1.5
# ... and reached this ratio. Below a tenth of the bound, a change says little: the worst example's
# error moves by whole ulps between kernels.
DRIFT_FLOOR = 0.1


JUNIT_XML = "junit.xml"
BENCHMARKS_JSON = "benchmarks.json"
# The most bytes of a junit.xml or benchmark JSON the gate reads: far above any real one, it only
# keeps a hostile file (or /dev/zero behind a link) from filling memory.
MAX_INPUT_BYTES = 256 * 2**20
# The flag that lets the gate compare a report whose run did not finish (named in the refusal).
ALLOW_INCOMPLETE_FLAG = "--allow-incomplete"


@dataclass(frozen=True)
class Thresholds:
    margin: float = DEFAULT_MARGIN
    z: float = DEFAULT_Z
    min_count: int = DEFAULT_MIN_COUNT
    drift: float = DEFAULT_DRIFT
    fail_on_drift: bool = False
    bench_margin: float = DEFAULT_BENCH_MARGIN
    fail_on_benchmarks: bool = True
    run_noise: float = DEFAULT_RUN_NOISE
    bench_noise: float = DEFAULT_BENCH_NOISE

    def __post_init__(self) -> None:
        for name in ("margin", "z", "drift", "bench_margin", "run_noise", "bench_noise"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not isinstance(self.min_count, int) or self.min_count < 2:
            raise ValueError(f"min_count must be an int >= 2, got {self.min_count!r}")

    def describe(self) -> str:
        return (
            "Timings are compared in pacer units (each example's time over a torch-free workload timed beside "
            "it), cell by cell (dtype, phase, size bucket; a cell takes part with "
            f"≥ {self.min_count} timings on both sides), as a weighted mean log shift. A formulation is "
            f"**slower** when the shift exceeds {self.margin:.0%} **and** z = {self.z:g} standard errors "
            "(bootstrap within the runs, plus the run-to-run noise: measured between twin runs of a side, "
            "pooled over rows and more for a row whose own twins differ more; "
            f"{self.run_noise:g} without twins). Benchmarks: the same rule per formulation's group of "
            f"benchmarks (one benchmark slower alone is reported, not failing), with a {self.bench_margin:.0%} "
            f"margin and run noise from twin runs (else {self.bench_noise:g}), "
            + ("failing the gate." if self.fail_on_benchmarks else "reported only (--no-fail-on-benchmarks).")
            + f" **Drift**: the worst error/bound grew more than {self.drift:g}x and reached {DRIFT_FLOOR:g} "
            + ("(fails the gate: --fail-on-drift)." if self.fail_on_drift else "(reported; --fail-on-drift to fail).")
        )


# --- reading ------------------------------------------------------------------------------------


_RowKey = tuple[str, str, str, str, str]  # relation, formulation, device, mode, execution lane
_CellKey = tuple[str, str, str]  # dtype, phase, size bucket


@dataclass(frozen=True)
class Benchmark:
    """One pytest-benchmark benchmark of a run: its median (seconds), spread and the pacer beside it."""

    name: str
    median: float
    iqr: float
    rounds: int
    pace: float | None
    group: str  # the formulation and phase it times (its benchmarks at every shape and batch form a group)


@dataclass
class Run:
    """One run of one side: its report, the tests that failed (None without junit.xml), its
    timings by row and cell (in pacer units where the report has the pacer), and its benchmarks
    (None without a benchmark JSON)."""

    path: Path
    report: dict[str, Any]
    failed_tests: set[str] | None = None
    times: dict[_RowKey, dict[_CellKey, list[float]]] = field(default_factory=dict)
    benchmarks: dict[str, Benchmark] | None = None
    benchmarks_path: Path | None = None


def _junit_failures(path: Path) -> set[str] | None:
    """Test ids (``classname.name``) that failed or errored, from a junit.xml; None when there is none."""
    if not path.exists():
        return None
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ReportError(path, "", "is not a regular file (a directory, a FIFO or a device)")
        if info.st_size > MAX_INPUT_BYTES:
            raise ReportError(path, "", f"is larger than {MAX_INPUT_BYTES:,} bytes, the most the gate reads")
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ReportError(path, "", f"is not valid XML ({exc})") from None
    except OSError as exc:
        raise ReportError(path, "", f"cannot be read ({exc.strerror or exc})") from None
    failed = set()
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(f"{case.get('classname', '')}.{case.get('name', '')}")
    return failed


def load_run(
    path: str | os.PathLike[str], benchmarks: str | os.PathLike[str] | None = None, *, allow_incomplete: bool = False
) -> Run:
    """A report.json (or a directory holding one), validated, with the junit.xml and the benchmark
    JSON beside it if any (or ``benchmarks``). A report not stamped complete is refused unless
    ``allow_incomplete``: an interrupted run's few examples would pass against a baseline of many."""
    file = Path(path)
    if file.is_dir():
        file = file / REPORT_JSON
    report = load_report(file)
    if not allow_incomplete:
        require_complete(report, file, flag=ALLOW_INCOMPLETE_FLAG)
    run = Run(file, report, _junit_failures(file.parent / JUNIT_XML), _sample_times(report))
    bench_file = Path(benchmarks) if benchmarks is not None else file.parent / BENCHMARKS_JSON
    if benchmarks is not None or bench_file.is_file():
        run.benchmarks, run.benchmarks_path = _benchmarks(load_benchmarks(bench_file)), bench_file
    return run


def _benchmarks(data: dict[str, Any]) -> dict[str, Benchmark]:
    out = {}
    for bench in data["benchmarks"]:
        extra = bench.get("extra_info") or {}
        stats = bench["stats"]
        pace = extra.get("pace_s")
        pace = float(pace) if isinstance(pace, (int, float)) and not isinstance(pace, bool) and pace > 0 else None
        group = f"{extra.get('formulation', bench['fullname'])} {extra.get('phase', '')}".strip()
        out[bench["fullname"]] = Benchmark(bench["fullname"], float(stats["median"]), float(stats["iqr"]),
                                           int(stats["rounds"]), pace, group)  # fmt: skip
    return out


def load_benchmarks(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A pytest-benchmark JSON (``--benchmark-json``), checked for what the comparison reads."""
    file = Path(path)
    try:
        # pytest-benchmark may write NaN in fields the gate does not read; those it reads are checked
        data = read_json(file, max_bytes=MAX_INPUT_BYTES, allow_nonfinite=True)
    except JSONFileError as exc:
        raise ReportError(file, "", exc.problem) from None
    return validate_benchmarks(data, file)


def _sample_times(report: dict[str, Any]) -> dict[_RowKey, dict[_CellKey, list[float]]]:
    """Every timing of the report's ``samples`` (validated: positive seconds), by row and
    (dtype, phase, size bucket) cell, in pacer units where the sample has the pacer: a run whose
    samples all have it is compared in pacer units, one where some lack it in seconds."""
    paced = all(sample.get("pace_s") for sample in report["samples"])
    out: dict[_RowKey, dict[_CellKey, list[float]]] = defaultdict(lambda: defaultdict(list))
    for sample in report["samples"]:
        bucket, mode = size_bucket(sample["size"]), str(sample.get("mode", "default"))
        lane = str(sample.get("execution", "eager"))  # compiled timings never pool with eager ones
        unit = float(sample["pace_s"]) if paced else 1.0
        for formulation, phases in sample["times"].items():
            for phase, seconds in phases.items():
                row = (sample["relation"], formulation, sample["device"], mode, lane)
                out[row][(sample["dtype"], phase, bucket)].append(float(seconds) / unit)
    return out


@dataclass(frozen=True)
class Row:
    """One line of the verdict table."""

    relation: str
    formulation: str
    device: str
    baseline: str
    candidate: str
    ratio: str
    verdict: str
    fails: bool = False


@dataclass
class Gate:
    """The comparison: the baseline's and the candidate's runs (one each, or twins made in ABBA
    order: baseline, candidate, candidate, baseline; the first of each side is judged for
    correctness, all of them for timing), and what the gate found."""

    baselines: list[Run]
    candidates: list[Run]
    thresholds: Thresholds
    rows: list[Row] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why it fails, one line each
    notes: list[str] = field(default_factory=list)
    timing_compared: bool = False
    bench_rows: list[list[str]] = field(default_factory=list)
    bench_notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def baseline(self) -> Run:
        return self.baselines[0]

    @property
    def candidate(self) -> Run:
        return self.candidates[0]


def location(device: str, mode: str, execution: str = "eager") -> str:
    """Where a row ran, in words: the device, its precision mode unless default, the execution lane unless eager."""
    where = device if mode == "default" else f"{device} ({mode})"
    return where if execution == "eager" else f"{where} {execution}"
