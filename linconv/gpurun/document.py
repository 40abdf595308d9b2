"""The page of a GPU run (docs/gpu/<device>.md): read what the stages wrote and render it.

Nothing here decides a verdict the stages did not: the tallies come from the run reports of the
properties (one per precision mode, merged), failures from their junit.xml, the fault benchmark
from its JSON, timings from pytest-benchmark's JSON. Whatever a stage did not write is named as
missing, never left out silently. Every violation gets a row whose explanation a person fills in
(a real torch bug: corpus + known bugs; an error-model gap: fixed with data).
"""

from __future__ import annotations

import datetime
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linconv.gpurun.plan import StageResult
from linconv.gpurun.probe import ErrorRow
from linconv.runreport import ReportError, load_report, merge_reports
from linconv.runreport.markdown import fmt_ratio, fmt_time, table
from linconv.runreport.schema import tally_mode

__all__ = ["GpuRun", "Violation", "page_name", "render", "violations"]


@dataclass
class GpuRun:
    """Everything the page is made of."""

    device: str
    command: str
    budget_s: float
    wall_s: float
    versions: dict[str, str]
    errors: list[ErrorRow]
    stages: list[StageResult]
    problems: list[str] = field(default_factory=list)  # what went wrong outside the stages (the probe)
    created: str = field(
        default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    )

    def stage(self, name: str) -> StageResult | None:
        return next((s for s in self.stages if s.stage.name == name), None)

    def output(self, name: str, suffix: str) -> Path | None:
        """The output of stage ``name`` whose file name ends in ``suffix``, if it was written."""
        result = self.stage(name)
        if result is None:
            return None
        return next((o for o in result.stage.outputs if o.name.endswith(suffix) and o.is_file()), None)


@dataclass(frozen=True)
class Violation:
    source: str  # where it was seen: a stage, a relation and mode
    what: str
    detail: str


def page_name(device_name: str) -> str:
    """docs/gpu/<this>.md for a device name: lower case, runs of other characters as one '-'."""
    slug = re.sub(r"[^a-z0-9]+", "-", device_name.lower()).strip("-")
    return f"{slug or 'device'}.md"


# --- reading ---------------------------------------------------------------------------------------


def _property_reports(run: GpuRun) -> tuple[dict[str, Any] | None, list[str]]:
    """The properties' run reports merged into one, and the problems met reading them."""
    loaded, problems = [], []
    for result in run.stages:
        if not result.stage.name.startswith("properties-"):
            continue
        path = run.output(result.stage.name, "report.json")
        if path is None:
            problems.append(f"{result.stage.name}: no report.json ({result.status()})")
            continue
        try:
            loaded.append((str(path), load_report(path)))
        except ReportError as exc:
            problems.append(f"{result.stage.name}: {exc}")
    if not loaded:
        return None, problems
    return merge_reports(loaded), problems


def _junit_failures(path: Path) -> list[tuple[str, str]]:
    """(test id, first lines of its failure) for each failed or erroring test of a junit.xml."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        return [("(junit.xml)", f"cannot be read: {exc}")]
    failed = []
    for case in root.iter("testcase"):
        for kind in ("failure", "error"):
            node = case.find(kind)
            if node is not None:
                text = (node.get("message") or node.text or "").strip()
                failed.append((f"{case.get('classname', '')}::{case.get('name', '')}", _first_lines(text)))
    return failed


def _first_lines(text: str, lines: int = 4, width: int = 600) -> str:
    short = " ".join(line.strip() for line in text.splitlines()[:lines] if line.strip())
    return short if len(short) <= width else short[: width - 3] + "..."


def _json(path: Path | None) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


# --- every violation -------------------------------------------------------------------------------


def violations(run: GpuRun) -> list[Violation]:
    """Everything that went wrong: failed tests of each mode, violated tallies, failing regression
    cases, unexpected fault outcomes, and stages that failed or were stopped."""
    found = [Violation("probe", problem, "") for problem in run.problems]
    for result in run.stages:
        # exit 1 with every output written: failures the outputs list (below); anything else is the stage's own
        if result.timed_out or result.returncode not in (0, 1) or result.missing:
            missing = ", ".join(p.name for p in result.missing)
            detail = result.status() + (f"; did not write {missing}" if missing else "") + f"; log {result.log.name}"
            found.append(Violation(result.stage.name, "stage did not complete cleanly", detail))
        junit = run.output(result.stage.name, "junit.xml")
        if junit is not None:
            found += [Violation(result.stage.name, test, text) for test, text in _junit_failures(junit)]
    report, _ = _property_reports(run)
    if report is not None:
        for name, entry in report["relations"].items():
            for row in entry["by_device_dtype"]:
                if row["violations"]:
                    where = f"{name} on {row['device']} ({tally_mode(row)}), {row['dtype']}"
                    detail = f"{row['violations']} of {row['examples']} examples, worst error/bound "
                    found.append(Violation("tally", where, detail + fmt_ratio(row["worst_ratio"])))
        for row in report.get("regressions", []):
            if row["outcome"] in ("failed", "xpassed"):
                where = f"{row['relation']} on {row['device']} ({row['mode']})"
                found.append(Violation("regression corpus", f"case {row['id']}", f"{row['outcome']} ({where})"))
    for outcome in _json(run.output("faults", "faults.json")) or []:
        if not outcome.get("as_expected", True):
            kind = "harmful fault not caught" if outcome.get("harmful") else "benign change flagged"
            detail = outcome.get("detail") or outcome.get("worst_detail") or ""
            found.append(Violation("fault benchmark", f"{outcome['fault']}: {kind}", detail))
    return found


# --- the page --------------------------------------------------------------------------------------


def _machine(run: GpuRun) -> list[str]:
    return ["## Machine", "", *table(["", ""], [[k, v] for k, v in run.versions.items()]), ""]


def _stages(run: GpuRun) -> list[str]:
    rows = []
    for result in run.stages:
        missing = ", ".join(p.name for p in result.missing) or "-"
        rows.append([result.stage.name, result.stage.what, result.status(), missing, f"`{result.log.name}`"])
    return [
        "## What ran",
        "",
        f"`{run.command}` on {run.device}: {run.wall_s:.0f} s of the {run.budget_s:.0f} s budget "
        "(docs/gpu/README.md explains the stages and the budget).",
        "",
        *table(["stage", "what", "status", "missing outputs", "log"], rows),
        "",
    ]


def _properties(run: GpuRun) -> list[str]:
    report, problems = _property_reports(run)
    lines = ["## Properties per precision mode", ""]
    lines += [f"- {p}" for p in problems] + ([""] if problems else [])
    if report is None:
        return [*lines, "No run report was written: no tallies to show.", ""]
    rows = []
    for name, entry in report["relations"].items():
        by_mode: dict[str, list[dict[str, Any]]] = {}
        for row in entry["by_device_dtype"]:
            by_mode.setdefault(f"{row['device']} ({tally_mode(row)})", []).append(row)
        for where, group in by_mode.items():
            worst = max(group, key=lambda r: float(r["worst_ratio"]))
            rows.append(
                [
                    name,
                    where,
                    str(sum(r["examples"] for r in group)),
                    str(sum(r["violations"] for r in group)),
                    f"{fmt_ratio(worst['worst_ratio'])} ({worst['dtype']})",
                    ", ".join(sorted(r["dtype"] for r in group)),
                ]
            )
    outcomes: dict[str, int] = {}
    for row in report.get("regressions", []):
        outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + 1
    corpus = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())) or "none replayed"
    return [
        *lines,
        *table(["relation", "device (mode)", "examples", "violations", "worst error/bound (dtype)", "dtypes"], rows),
        "",
        f"Regression corpus, every mode: {corpus}. Worst error/bound ≤ 1 holds. The cross-device relation "
        "(CPU vs this device) runs in each mode's pytest; its failures are under *Every violation*.",
        "",
    ]


def _errors(run: GpuRun) -> list[str]:
    if not run.errors:
        return ["## Measured TF32 vs IEEE error", "", "Not measured.", ""]
    modes = list(run.errors[0].errors)
    rows = []
    for row in run.errors:
        cells = [f"{row.errors[m]:.2e}" for m in modes]
        ratio = ""
        if len(modes) == 2 and row.errors[modes[1]] > 0:
            ratio = f"{row.errors[modes[0]] / row.errors[modes[1]]:.3g}"
        rows.append(
            [
                row.shape,
                row.relation,
                row.formulation,
                ", ".join(row.ops),
                *cells,
                *([ratio or "-"] if len(modes) == 2 else []),
            ]
        )
    ratio_header = [f"{modes[0]} / {modes[1]}"] if len(modes) == 2 else []
    return [
        "## Measured TF32 vs IEEE error",
        "",
        "Largest |float32 output - float64 reference| / (|W|⊛|x| + |b|) per formulation, seed 0, normal values. "
        "As shipped, torch runs float32 convolutions in TF32 (inputs rounded to 10 explicit bits: about 2^-11 "
        "= 4.9e-4 relative) and float32 matmuls in IEEE; strict runs both in IEEE (2^-24 = 6.0e-8 per rounding).",
        "",
        *table(["shape", "relation", "formulation", "ops", *modes, *ratio_header], rows),
        "",
    ]


def _timings(run: GpuRun) -> list[str]:
    data = _json(run.output("benchmarks", "benchmarks.json"))
    if not data:
        return ["## Conv vs Linear timings", "", "No benchmark results were written.", ""]
    groups: dict[str, list[dict[str, Any]]] = {}
    for bench in data.get("benchmarks", []):
        groups.setdefault(bench.get("group") or bench["name"], []).append(bench)
    rows = []
    for group, entries in groups.items():
        first = entries[0]["stats"]["median"]
        for bench in entries:
            stats, info = bench["stats"], bench.get("extra_info", {})
            rows.append(
                [
                    group,
                    str(info.get("formulation", bench["name"])),
                    fmt_time(stats["median"]),
                    fmt_time(stats["iqr"]),
                    str(stats["rounds"]),
                    f"{stats['median'] / first:.2f}",
                ]
            )
    return [
        "## Conv vs Linear timings",
        "",
        "benchmarks/bench_formulations.py on this device, the flags torch ships, synchronised clock; seconds per "
        "call. Relative: to the first formulation of its group (the conv).",
        "",
        *table(["benchmark group", "formulation", "median", "IQR", "rounds", "relative"], rows),
        "",
    ]


def _faults(run: GpuRun) -> list[str]:
    outcomes = _json(run.output("faults", "faults.json"))
    if outcomes is None:
        return ["## Fault benchmark", "", "No fault benchmark results were written.", ""]
    harmful = [o for o in outcomes if o["harmful"]]
    benign = [o for o in outcomes if not o["harmful"]]
    return [
        "## Fault benchmark",
        "",
        f"{sum(o['caught'] for o in harmful)}/{len(harmful)} harmful faults caught, "
        f"{sum(o['caught'] for o in benign)}/{len(benign)} benign changes flagged "
        "(`python -m linconv faults` on this device; the whole table is in its faults.md).",
        "",
    ]


def _violations(run: GpuRun) -> list[str]:
    found = violations(run)
    if not found:
        return ["## Every violation", "", "None.", ""]
    rows = [[v.source, v.what, v.detail, "(to explain)"] for v in found]
    return [
        "## Every violation",
        "",
        "Each needs an explanation before this page is committed: a real torch bug (kept in the corpus and "
        "linconv/known_bugs) or a gap in the error model (fixed with data).",
        "",
        *table(["where", "what", "detail", "explanation"], rows),
        "",
    ]


def render(run: GpuRun) -> str:
    title = run.versions.get("device", run.device)
    sections = (
        [f"# linconv on {title}", "", f"Written by the prepared GPU run, {run.created}.", ""],
        _machine(run),
        _stages(run),
        _violations(run),
        _properties(run),
        _errors(run),
        _timings(run),
        _faults(run),
    )
    return "\n".join(line for section in sections for line in section)
