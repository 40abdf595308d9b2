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

import json
import math
import os
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linconv.report import REPORT_JSON, ReportError, load_report, need_field
from linconv.timing import quantiles, size_bucket

__all__ = [
    "DEFAULT_DRIFT",
    "DEFAULT_K",
    "DEFAULT_MARGIN",
    "DEFAULT_MIN_COUNT",
    "DRIFT_FLOOR",
    "JUNIT_XML",
    "OUTCOMES",
    "Gate",
    "Row",
    "Run",
    "Thresholds",
    "compare",
    "compare_benchmarks",
    "judge_timing",
    "load_benchmarks",
    "load_run",
    "render_markdown",
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
OUTCOMES = ("passed", "failed", "xfailed", "xpassed", "skipped")
_FAILING = ("failed", "xfailed")
_HOLDING = ("passed", "xpassed")


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


def _regressions(report: dict[str, Any], path: Path) -> None:
    """The ``regressions`` section is optional (reports before it have none); when there, it must be usable."""
    rows = report.get("regressions")
    if rows is None:
        return
    if not isinstance(rows, list):
        raise ReportError(path, "regressions", f"must be list, got {rows!r}")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ReportError(path, f"regressions[{i}]", f"must be an object, got {type(row).__name__}")
        for key in ("id", "relation", "device", "mode", "outcome"):
            if key not in row:
                raise ReportError(path, f"regressions[{i}].{key}", "is missing")
            if not isinstance(row[key], str):
                raise ReportError(path, f"regressions[{i}].{key}", f"must be str, got {row[key]!r}")
        if row["outcome"] not in OUTCOMES:
            raise ReportError(
                path, f"regressions[{i}].outcome", f"must be one of {', '.join(OUTCOMES)}, got {row['outcome']!r}"
            )


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
    _regressions(report, file)
    return Run(file, report, _junit_failures(file.parent / JUNIT_XML), _sample_times(report, file))


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
    need_field(data, "machine_info", dict, "", file)
    for i, bench in enumerate(need_field(data, "benchmarks", list, "", file)):
        where = f"benchmarks[{i}]"
        need_field(bench, "fullname", str, where, file)
        stats = need_field(bench, "stats", dict, where, file)
        for key in ("median", "iqr"):
            need_field(stats, key, (int, float), f"{where}.stats", file)
        need_field(stats, "rounds", int, f"{where}.stats", file)
    return data


# --- judging --------------------------------------------------------------------------------------


def judge_timing(
    base_median: float, base_iqr: float, cand_median: float, cand_iqr: float, thresholds: Thresholds
) -> str:
    """'slower', 'faster' or 'same': a change counts when it exceeds both the noise (k times the mean
    IQR of the two runs) and the minimum relative margin; either alone is not enough."""
    noise = thresholds.k * (base_iqr + cand_iqr) / 2
    if cand_median - base_median > noise and cand_median > base_median * (1 + thresholds.margin):
        return "slower"
    if base_median - cand_median > noise and base_median > cand_median * (1 + thresholds.margin):
        return "faster"
    return "same"


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


def _ratio(value: Any) -> float:
    return float(value)


def _fmt_ratio(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def _fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def _where(device: str, mode: str) -> str:
    return device if mode == "default" else f"{device} ({mode})"


def _tallies(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """(relation, device) -> dtype -> tally row."""
    out: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for name, entry in report["relations"].items():
        for row in entry["by_device_dtype"]:
            out[(name, row["device"])][row["dtype"]] = row
    return out


def _tally_text(rows: dict[str, dict[str, Any]]) -> tuple[str, float]:
    violations = sum(r["violations"] for r in rows.values())
    examples = sum(r["examples"] for r in rows.values())
    worst = max((_ratio(r["worst_ratio"]) for r in rows.values()), default=0.0)
    return f"{violations} viol. / {examples} ex., worst {_fmt_ratio(worst)}", worst


def _correctness(gate: Gate) -> None:
    base, cand = _tallies(gate.baseline.report), _tallies(gate.candidate.report)
    t = gate.thresholds
    for key in sorted(base.keys() | cand.keys()):
        relation, device = key
        if key not in cand:
            gate.rows.append(
                Row(relation, "(correctness)", device, _tally_text(base[key])[0], "not run", "", "**not run**", True)
            )
            gate.reasons.append(f"{relation} on {device}: checked by the baseline, not run by the candidate")
            continue
        c_text, c_worst = _tally_text(cand[key])
        b_rows = base.get(key, {})
        new = [
            f"{dtype} ({row['violations']})"
            for dtype, row in sorted(cand[key].items())
            if row["violations"] and not b_rows.get(dtype, {}).get("violations")
        ]
        if key not in base:
            b_text, b_worst = "not run", 0.0
            gate.notes.append(f"{relation} on {device}: new in the candidate's report, no baseline to compare with")
        else:
            b_text, b_worst = _tally_text(b_rows)
        ratio = c_worst / b_worst if b_worst > 0 else (1.0 if c_worst == 0 else math.inf)
        ratio_text = _fmt_ratio(ratio) if key in base else ""
        if new:
            verdict, fails = f"**new violation**: {', '.join(new)}", True
            gate.reasons.append(f"{relation} on {device}: new violation(s) in {', '.join(new)} (baseline: none)")
        elif any(row["violations"] for row in cand[key].values()):
            verdict, fails = "violated, as in the baseline", False
            gate.notes.append(f"{relation} on {device}: violated in both runs (not new; still a failing property)")
        elif key in base and ratio > t.drift and c_worst >= DRIFT_FLOOR:
            verdict, fails = f"drift: worst error/bound x{_fmt_ratio(ratio)}", t.fail_on_drift
            if fails:
                gate.reasons.append(
                    f"{relation} on {device}: worst error/bound drifted x{_fmt_ratio(ratio)} (--fail-on-drift)"
                )
        else:
            verdict, fails = "ok", False
        gate.rows.append(Row(relation, "(correctness)", device, b_text, c_text, ratio_text, verdict, fails))


def _outcome_counts(outcomes: list[str]) -> str:
    counts = {name: outcomes.count(name) for name in OUTCOMES if outcomes.count(name)}
    return ", ".join(f"{n} {name}" for name, n in counts.items()) or "none"


def _regression_rows(gate: Gate) -> None:
    base_rows = gate.baseline.report.get("regressions")
    cand_rows = gate.candidate.report.get("regressions")
    missing = [side for side, rows in (("baseline", base_rows), ("candidate", cand_rows)) if rows is None]
    if missing:
        gate.notes.append(
            f"regression corpus not compared: the {' and '.join(missing)} report has no 'regressions' section "
            "(written by a linconv before it recorded them)"
        )
        return
    base = {(r["id"], r["relation"], r["device"], r["mode"]): r["outcome"] for r in base_rows}
    cand = {(r["id"], r["relation"], r["device"], r["mode"]): r["outcome"] for r in cand_rows}
    groups: dict[tuple[str, str], list[tuple[str, str, str]]] = defaultdict(list)
    for key in base.keys() | cand.keys():
        groups[(key[1], _where(key[2], key[3]))].append(key)
    skipped_everywhere = set()
    for (relation, where), keys in sorted(groups.items()):
        if all(base.get(k) == cand.get(k) == "skipped" for k in keys):
            skipped_everywhere.add(where)  # a device neither run has: one note, not a row per relation
            continue
        new_failures, fixed = [], []
        for key in sorted(keys):
            b, c = base.get(key, "not run"), cand.get(key, "not run")
            if c in _FAILING and b not in _FAILING:
                kind = "known upstream bug (xfail)" if c == "xfailed" else "fails"
                new_failures.append(f"{key[0]} {kind}")
            elif b in _FAILING and c in _HOLDING:
                fixed.append(key[0])
            elif b in _HOLDING and c == "skipped":
                gate.notes.append(
                    f"regression {key[0]} ({relation}) on {where}: passed in the baseline, skipped in the candidate"
                )
        b_text = _outcome_counts([base[k] for k in keys if k in base])
        c_text = _outcome_counts([cand[k] for k in keys if k in cand])
        if new_failures:
            verdict = "**new failure**: " + ", ".join(new_failures)
            gate.reasons.append(
                f"regression corpus, {relation} on {where}: " + ", ".join(new_failures) + " (passed in the baseline)"
            )
        elif fixed:
            verdict = "fixed: " + ", ".join(fixed)
        else:
            verdict = "ok"
        if fixed:
            gate.notes.append(
                f"regression case(s) {', '.join(fixed)} ({relation}) on {where} hold under the candidate: "
                "torch may have fixed them"
            )
        gate.rows.append(Row(relation, "(regression corpus)", where, b_text, c_text, "", verdict, bool(new_failures)))
    if skipped_everywhere:
        gate.notes.append(f"regression corpus skipped in both runs on {', '.join(sorted(skipped_everywhere))}")


def _tests(gate: Gate) -> None:
    base, cand = gate.baseline.failed_tests, gate.candidate.failed_tests
    if base is None or cand is None:
        gate.notes.append(
            f"failing tests not compared: no {JUNIT_XML} beside "
            + " and ".join(str(run.path) for run in (gate.baseline, gate.candidate) if run.failed_tests is None)
        )
        return
    regression_tests = "test_regressions.test_regression_case["  # judged per case above
    new = sorted(t for t in cand - base if regression_tests not in t)
    for test in new:
        gate.reasons.append(f"test {test} fails in the candidate (passed in the baseline)")
    if cand & base:
        gate.notes.append(f"{len(cand & base)} test(s) fail in both runs (not new)")


def _sample_times(report: dict[str, Any], path: Path) -> dict[_RowKey, dict[_CellKey, list[float]]]:
    """Every timing of the report's ``samples``, by row and (dtype, phase, size bucket) cell."""
    out: dict[_RowKey, dict[_CellKey, list[float]]] = defaultdict(lambda: defaultdict(list))
    for i, sample in enumerate(report["samples"]):
        bucket, mode = size_bucket(sample["size"]), str(sample.get("mode", "default"))
        for formulation, phases in sample["times"].items():
            if not isinstance(phases, dict):
                raise ReportError(path, f"samples[{i}].times.{formulation}", f"must be an object, got {phases!r}")
            for phase, seconds in phases.items():
                if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
                    where = f"samples[{i}].times.{formulation}.{phase}"
                    raise ReportError(path, where, f"must be a positive number of seconds, got {seconds!r}")
                out[(sample["relation"], formulation, sample["device"], mode)][(sample["dtype"], phase, bucket)].append(
                    float(seconds)
                )
    return out


def _machine_difference(base: dict[str, Any], cand: dict[str, Any]) -> str:
    fields = ("cpu_model", "cpu_capability", "cpu_count", "gpus", "threads")
    diffs = [f"{name} {base.get(name)!r} vs {cand.get(name)!r}" for name in fields if base.get(name) != cand.get(name)]
    return "; ".join(diffs) or f"fingerprint {base['fingerprint']} vs {cand['fingerprint']}"


def _pooled(
    base: dict[_CellKey, list[float]], cand: dict[_CellKey, list[float]], min_count: int
) -> tuple[list[float], list[float], int]:
    """Both runs' timings of the cells each timed at least ``min_count`` times, each divided by the
    baseline's median in its cell: sizes, dtypes and phases then pool on one scale, where the
    baseline's median is about 1 and the candidate's is the typical time ratio."""
    b_pool: list[float] = []
    c_pool: list[float] = []
    cells = 0
    for cell in sorted(base.keys() & cand.keys()):
        if len(base[cell]) < min_count or len(cand[cell]) < min_count:
            continue
        reference = quantiles(base[cell])[1]
        b_pool += [v / reference for v in base[cell]]
        c_pool += [v / reference for v in cand[cell]]
        cells += 1
    return b_pool, c_pool, cells


def _timings(gate: Gate) -> None:
    b_machine, c_machine = gate.baseline.report["machine"], gate.candidate.report["machine"]
    base, cand = gate.baseline.times, gate.candidate.times
    gate.timing_compared = b_machine["fingerprint"] == c_machine["fingerprint"]
    if not gate.timing_compared:
        gate.notes.append(
            "timings not compared: the runs come from different machines ("
            + _machine_difference(b_machine, c_machine)
            + "); correctness compared alone"
        )
    t = gate.thresholds
    for key in sorted(base.keys() | cand.keys()):
        relation, formulation, device, mode = key
        where = _where(device, mode)
        if not gate.timing_compared:
            gate.rows.append(Row(relation, formulation, where, "", "", "", "not compared (different machines)"))
            continue
        b_pool, c_pool, cells = _pooled(base.get(key, {}), cand.get(key, {}), t.min_count)
        if not cells:
            verdict = f"not compared (no cell with ≥ {t.min_count} timings in both)"
            gate.rows.append(Row(relation, formulation, where, "", "", "", verdict))
            continue
        b_q1, b_med, b_q3 = quantiles(b_pool)
        c_q1, c_med, c_q3 = quantiles(c_pool)
        judged = judge_timing(b_med, b_q3 - b_q1, c_med, c_q3 - c_q1, t)
        verdict = {"slower": "**slower**", "faster": "faster", "same": "same within noise"}[judged]
        ratio = c_med / b_med
        if judged == "slower":
            gate.reasons.append(
                f"{relation} / {formulation} on {where}: slower, x{ratio:.2f} the baseline's time "
                f"(> 1 + {t.margin:g}, and by {c_med - b_med:.2f} > k·mean IQR = "
                f"{t.k * ((b_q3 - b_q1) + (c_q3 - c_q1)) / 2:.2f}; {cells} cells)"
            )
        gate.rows.append(
            Row(
                relation,
                formulation,
                where,
                f"{b_med:.2f} (IQR {b_q3 - b_q1:.2f}, n {len(b_pool)})",
                f"{c_med:.2f} (IQR {c_q3 - c_q1:.2f}, n {len(c_pool)})",
                f"{ratio:.2f}",
                f"{verdict} ({cells} cells)",
                judged == "slower",
            )
        )


def _drawn(report: dict[str, Any]) -> dict[str, list[tuple[str, str, int]]]:
    """Per relation: examples per (device, dtype) — what the derandomised profile should make equal."""
    return {
        name: sorted((r["device"], r["dtype"], r["examples"]) for r in entry["by_device_dtype"])
        for name, entry in report["relations"].items()
    }


def _environment_notes(gate: Gate) -> None:
    b_env, c_env = gate.baseline.report["environment"], gate.candidate.report["environment"]
    profiles = {b_env["hypothesis_profile"], c_env["hypothesis_profile"]}
    if profiles != {"ci"}:
        gate.notes.append(
            f"Hypothesis profiles {b_env['hypothesis_profile']!r} / {c_env['hypothesis_profile']!r}: only the "
            "derandomised 'ci' profile makes both runs draw the same examples"
        )
    for name in ("max_numel", "dtypes", "devices"):
        if b_env.get(name) != c_env.get(name):
            gate.notes.append(
                f"environment.{name} differs ({b_env.get(name)!r} vs {c_env.get(name)!r}): "
                "the runs drew different examples"
            )
    b_drawn, c_drawn = _drawn(gate.baseline.report), _drawn(gate.candidate.report)
    differ = sorted(name for name in b_drawn.keys() & c_drawn.keys() if b_drawn[name] != c_drawn[name])
    if differ and profiles == {"ci"}:
        gate.notes.append(
            f"the runs drew different examples in {', '.join(differ)} (examples per dtype differ), although the "
            "derandomised 'ci' profile should draw the same: those rows compare different draws"
        )
    if b_env.get("precision_flags") != c_env.get("precision_flags"):
        b_flags, c_flags = b_env.get("precision_flags") or {}, c_env.get("precision_flags") or {}
        changed = sorted(k for k in b_flags.keys() | c_flags.keys() if b_flags.get(k) != c_flags.get(k))
        gate.notes.append(
            "precision flags differ: " + ", ".join(f"{k} {b_flags.get(k)!r} -> {c_flags.get(k)!r}" for k in changed)
        )


def compare(baseline: Run, candidate: Run, thresholds: Thresholds | None = None) -> Gate:
    """The verdict on ``candidate`` against ``baseline``."""
    gate = Gate(baseline, candidate, thresholds or Thresholds())
    _environment_notes(gate)
    _correctness(gate)
    _regression_rows(gate)
    _tests(gate)
    _timings(gate)
    order = {"(correctness)": 0, "(regression corpus)": 1}
    gate.rows.sort(
        key=lambda r: (r.relation, r.device.split(" ")[0], order.get(r.formulation, 2), r.formulation, r.device)
    )
    return gate


def _bench_fingerprint(data: dict[str, Any]) -> str | None:
    return (data["machine_info"].get("linconv_machine") or {}).get("fingerprint")


def compare_benchmarks(gate: Gate, base: dict[str, Any], cand: dict[str, Any], names: tuple[str, str]) -> None:
    """Add the comparison of two pytest-benchmark JSONs (same rule; rounds are the count) to ``gate``."""
    b_print, c_print = _bench_fingerprint(base), _bench_fingerprint(cand)
    if b_print is None or b_print != c_print:
        why = "no linconv machine identity in machine_info" if None in (b_print, c_print) else "different machines"
        gate.bench_notes.append(f"benchmarks not compared: {why} ({names[0]}, {names[1]})")
        return
    t = gate.thresholds
    b_stats = {b["fullname"]: b["stats"] for b in base["benchmarks"]}
    c_stats = {b["fullname"]: b["stats"] for b in cand["benchmarks"]}
    slower_informational = 0
    only = sorted(b_stats.keys() ^ c_stats.keys())
    if only:
        gate.bench_notes.append(f"{len(only)} benchmark(s) in one file only, not compared: {', '.join(only[:5])}")
    for name in sorted(b_stats.keys() & c_stats.keys()):
        b, c = b_stats[name], c_stats[name]
        label = name.split("::", 1)[-1]
        if min(b["rounds"], c["rounds"]) < t.min_count:
            gate.bench_rows.append([label, "", "", "", f"not compared (fewer than {t.min_count} rounds)"])
            continue
        judged = judge_timing(b["median"], b["iqr"], c["median"], c["iqr"], t)
        verdict = {"slower": "**slower**", "faster": "faster", "same": "same within noise"}[judged]
        if judged == "slower" and not t.fail_on_benchmarks:
            verdict, slower_informational = "slower (does not gate)", slower_informational + 1
        elif judged == "slower":
            gate.reasons.append(
                f"benchmark {label}: slower, {_fmt_time(b['median'])} -> {_fmt_time(c['median'])} "
                f"(x{c['median'] / b['median']:.2f})"
            )
        gate.bench_rows.append(
            [
                label,
                f"{_fmt_time(b['median'])} (IQR {_fmt_time(b['iqr'])}, {b['rounds']} rounds)",
                f"{_fmt_time(c['median'])} (IQR {_fmt_time(c['iqr'])}, {c['rounds']} rounds)",
                f"{c['median'] / b['median']:.2f}",
                verdict,
            ]
        )
    if slower_informational:
        gate.bench_notes.append(
            f"{slower_informational} benchmark(s) slower beyond their own spread; they do not fail the gate without "
            "--fail-on-benchmarks: a benchmark's rounds run back to back in one short window, so its IQR does not "
            "see load that changes between windows (docs/gating.md)"
        )


# --- rendering ----------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def _side(run: Run) -> str:
    env, created = run.report["environment"], run.report.get("created", "?")
    return f"`{run.path}` (torch {env['torch']}, profile `{env['hypothesis_profile']}`, created {created})"


def render_markdown(gate: Gate) -> str:
    b_env, c_env = gate.baseline.report["environment"], gate.candidate.report["environment"]
    title = "PASS" if gate.passed else "FAIL"
    lines = [f"## Torch upgrade gate: {title} — torch {b_env['torch']} → {c_env['torch']}", ""]
    lines += [f"- baseline: {_side(gate.baseline)}", f"- candidate: {_side(gate.candidate)}"]
    machine = gate.baseline.report["machine"]
    if gate.timing_compared:
        lines.append(
            f"- machine: the same for both (`{machine['fingerprint']}`, {machine.get('cpu_model')}): timings compared"
        )
    else:
        lines.append("- machine: different: timings not compared, correctness alone")
    lines.append("")
    if gate.reasons:
        lines += ["**Why it fails:**", ""] + [f"- {reason}" for reason in gate.reasons] + [""]
    else:
        lines += [
            "Nothing got worse: no new violation, no new failing regression case or test, "
            + (
                "no formulation slower beyond the noise threshold."
                if gate.timing_compared
                else "(timings not compared)."
            ),
            "",
        ]
    rows = [[r.relation, r.formulation, r.device, r.baseline, r.candidate, r.ratio, r.verdict] for r in gate.rows]
    lines += _table(["relation", "formulation", "device", "baseline", "candidate", "ratio", "verdict"], rows)
    lines += [
        "",
        "Correctness rows: violations / examples and the worst error/bound (≤ 1 holds); ratio: candidate's worst "
        "over the baseline's. Formulation rows: every timing (seconds per call) of the (dtype, phase, size) cells "
        "both runs timed, divided by the baseline's median in its cell, pooled: median, IQR and count n of each "
        "run on that scale (the baseline's median is about 1); ratio: candidate / baseline.",
        "",
    ]
    if gate.bench_rows or gate.bench_notes:
        lines += ["### pytest-benchmark", ""]
        if gate.bench_rows:
            lines += _table(["benchmark", "baseline median", "candidate median", "ratio", "verdict"], gate.bench_rows)
            lines += [""]
        lines += [f"- {note}" for note in gate.bench_notes] + ([""] if gate.bench_notes else [])
    if gate.notes:
        lines += ["**Notes:**", ""] + [f"- {note}" for note in gate.notes] + [""]
    lines += [f"Thresholds: {gate.thresholds.describe()}", ""]
    return "\n".join(lines)
