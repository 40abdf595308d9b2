"""What the gate compares and what it says: thresholds, the two runs, the verdict's rows."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linconv.runreport import REPORT_JSON, ReportError, load_report
from linconv.runreport.schema import validate_benchmarks
from linconv.timing import size_bucket

__all__ = [
    "DEFAULT_DRIFT",
    "DEFAULT_K",
    "DEFAULT_MARGIN",
    "DEFAULT_MIN_COUNT",
    "DRIFT_FLOOR",
    "JUNIT_XML",
    "Gate",
    "Row",
    "Run",
    "Thresholds",
    "load_benchmarks",
    "load_run",
    "location",
]

# The slowdown rule (judge_timing): slower when the candidate's median exceeds the baseline's by more
# than K times the mean of the two IQRs AND by more than MARGIN of the baseline's median. Measured on
# a 2-core machine shared with other runs (docs/gating.md, "Choosing k and the margin"): in 360
# comparisons of two runs of the same torch, the largest k that would have flagged one was 1.85 (a
# 1.67x shift of one relation's whole test under load); 2.5 leaves a third of headroom over it.
# MARGIN: the smallest slowdown worth a verdict where the IQRs are small (a quiet runner).
DEFAULT_K = 2.5
DEFAULT_MARGIN = 0.25
# A (dtype, phase, size) cell of a report's timings takes part only with this many timings in both
# runs: the quartiles of fewer are the extreme values themselves.
DEFAULT_MIN_COUNT = 3
# Drift: the worst error/bound of a relation on a device grew by more than this factor ...
DEFAULT_DRIFT = 1.5
# ... and reached this ratio. Below a tenth of the bound, a change says little: the worst example's
# error moves by whole ulps between kernels.
DRIFT_FLOOR = 0.1


JUNIT_XML = "junit.xml"


@dataclass(frozen=True)
class Thresholds:
    k: float = DEFAULT_K
    margin: float = DEFAULT_MARGIN
    min_count: int = DEFAULT_MIN_COUNT
    drift: float = DEFAULT_DRIFT
    fail_on_drift: bool = False
    fail_on_benchmarks: bool = False

    def describe(self) -> str:
        return (
            f"a formulation is **slower** when its candidate median exceeds the baseline's by more than "
            f"k·(IQR_baseline + IQR_candidate)/2 with k = {self.k:g} **and** by more than {self.margin:.0%}; "
            f"a (dtype, phase, size) cell takes part with ≥ {self.min_count} timings in both runs. "
            f"**Drift**: the worst error/bound grew more than {self.drift:g}x and reached {DRIFT_FLOOR:g} "
            + ("(fails the gate: --fail-on-drift)." if self.fail_on_drift else "(reported; --fail-on-drift to fail).")
            + (
                " Benchmarks: the same rule on each benchmark's median and IQR, "
                + ("failing the gate (--fail-on-benchmarks)." if self.fail_on_benchmarks else "reported only.")
            )
        )


# --- reading ------------------------------------------------------------------------------------


_RowKey = tuple[str, str, str, str]  # relation, formulation, device, mode
_CellKey = tuple[str, str, str]  # dtype, phase, size bucket


@dataclass
class Run:
    """One side of the comparison: its report, and the tests that failed (None without junit.xml)."""

    path: Path
    report: dict[str, Any]
    failed_tests: set[str] | None = None
    times: dict[_RowKey, dict[_CellKey, list[float]]] = field(default_factory=dict)


def _junit_failures(path: Path) -> set[str] | None:
    """Test ids (``classname.name``) that failed or errored, from a junit.xml; None when there is none."""
    if not path.is_file():
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ReportError(path, "", f"is not valid XML ({exc})") from None
    failed = set()
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(f"{case.get('classname', '')}.{case.get('name', '')}")
    return failed


def load_run(path: str | os.PathLike[str]) -> Run:
    """A report.json (or a directory holding one), validated, with the junit.xml beside it if any."""
    file = Path(path)
    if file.is_dir():
        file = file / REPORT_JSON
    report = load_report(file)
    return Run(file, report, _junit_failures(file.parent / JUNIT_XML), _sample_times(report))


def load_benchmarks(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A pytest-benchmark JSON (``--benchmark-json``), checked for what the comparison reads."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(file, "", "no such file") from None
    except OSError as exc:
        raise ReportError(file, "", f"cannot be read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ReportError(file, "", f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return validate_benchmarks(data, file)


def _sample_times(report: dict[str, Any]) -> dict[_RowKey, dict[_CellKey, list[float]]]:
    """Every timing of the report's ``samples`` (validated: positive seconds), by row and
    (dtype, phase, size bucket) cell."""
    out: dict[_RowKey, dict[_CellKey, list[float]]] = defaultdict(lambda: defaultdict(list))
    for sample in report["samples"]:
        bucket, mode = size_bucket(sample["size"]), str(sample.get("mode", "default"))
        for formulation, phases in sample["times"].items():
            for phase, seconds in phases.items():
                out[(sample["relation"], formulation, sample["device"], mode)][(sample["dtype"], phase, bucket)].append(
                    float(seconds)
                )
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
    baseline: Run
    candidate: Run
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


def location(device: str, mode: str) -> str:
    return device if mode == "default" else f"{device} ({mode})"
