"""Merge the run reports of several jobs into one: a thorough run split by seed or by shard
across CI jobs (docs/parallel.md), read back as if one process had run it all.

Counts add up per relation, device, precision mode and dtype; the worst error/bound is the
maximum; timing samples are pooled (the tables are recomputed from them); regression outcomes
keep the worst outcome per case; a device counts as present when any job ran it, as absent when
none did (each job's devices stay in its ``shards`` entry). Refused, each with the file and
field named:

- a report not stamped complete (an interrupted or empty run), unless ``allow_incomplete``;
- reports of different torch builds (version, CUDA, cuDNN): they answer different questions (that
  is the gate's job, ``python -m linconv gate``);
- reports of different machines, unless ``across_machines``: then the counts add up and the
  timings are dropped, since timings of two machines never pool;
- one run twice: the same file, an identical copy, or a merged report holding another input.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from linconv.runreport.build import build_report, merge_rejected, merge_tallies
from linconv.runreport.completeness import merged_stamp, require_complete
from linconv.runreport.files import REPORT_JSON, load_report
from linconv.runreport.schema import OUTCOME_RANK, ReportError
from linconv.timing import Sample

__all__ = ["ACROSS_MACHINES_FLAG", "ALLOW_INCOMPLETE_FLAG", "digest", "merge_reports", "merge_report_files"]

# The command-line flags that lift two refusals (python -m linconv report); named in the messages.
ALLOW_INCOMPLETE_FLAG = "--allow-incomplete"
ACROSS_MACHINES_FLAG = "--across-machines"
# What makes two torch builds different for a merge: a report of each answers another question.
_BUILD = ("torch", "cuda", "cudnn")

_COSTS = ("checked_s", "timing_s")


def _tallies(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"relation": name, **row} for name, entry in report["relations"].items() for row in entry["by_device_dtype"]
    ]


def _costs(reports: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    costs: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for report in reports:
        for name, entry in report["relations"].items():
            run = entry.get("run") or {}
            if run.get("seconds") is None:
                continue
            costs[name]["seconds"] += float(run["seconds"])
            for key in _COSTS:
                if run.get(key) is not None:
                    costs[name][key] += float(run[key])
    return {name: dict(c) for name, c in costs.items()}


def _regressions(reports: list[dict[str, Any]]) -> list[dict[str, str]]:
    worst: dict[tuple[str, str, str, str], str] = {}
    for report in reports:
        for row in report.get("regressions", []):
            key = (row["id"], row["relation"], row["device"], row["mode"])
            if key not in worst or OUTCOME_RANK.get(row["outcome"], 3) > OUTCOME_RANK.get(worst[key], 3):
                worst[key] = row["outcome"]
    names = ("id", "relation", "device", "mode")
    return [{**dict(zip(names, key, strict=True)), "outcome": worst[key]} for key in sorted(worst)]


def _known_bugs(reports: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Each known bug once: reproduced if it reproduced in any job (the jobs share one torch build)."""
    rows: dict[str, dict[str, Any]] = {}
    for report in reports:
        for row in report.get("known_bugs", []):
            into = rows.setdefault(row["name"], dict(row))
            into["reproduced"] = into["reproduced"] or row["reproduced"]
    return [rows[name] for name in sorted(rows)] if rows else None


def digest(report: dict[str, Any]) -> str:
    """sha256 of a report's canonical JSON: equal for the same run read twice."""
    return hashlib.sha256(json.dumps(report, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _digests(report: dict[str, Any]) -> set[str]:
    """The runs a report holds: itself, and for a merged report each of its shards (as recorded)."""
    return {digest(report)} | {shard["digest"] for shard in report.get("shards", []) if "digest" in shard}


def _check_same_build(reports: list[tuple[str, dict[str, Any]]]) -> None:
    first_source, first = reports[0]
    for source, report in reports[1:]:
        for name in _BUILD:
            mine, theirs = report["environment"].get(name), first["environment"].get(name)
            if mine != theirs:
                what = "torch" if name == "torch" else f"torch built with {name}"
                raise ReportError(
                    source,
                    f"environment.{name}",
                    f"is {mine}, but {first_source} ran {what} {theirs}: merge only jobs of one torch build "
                    "(compare torches with `python -m linconv gate`)",
                )


def _check_distinct(reports: list[tuple[str, dict[str, Any]]]) -> None:
    seen: dict[str, str] = {}
    for source, report in reports:
        for run in _digests(report):
            if run in seen:
                raise ReportError(
                    source,
                    "",
                    f"holds a run that {seen[run]} holds too (the same report listed twice, a copy, or a merged report "
                    "of it): merging it would count its examples twice",
                )
        for run in _digests(report):
            seen[run] = source


def _machine(reports: list[tuple[str, dict[str, Any]]], across_machines: bool) -> dict[str, Any] | None:
    """The one machine of every report, or None when they differ and ``across_machines`` allows it."""
    first_source, first = reports[0]
    for source, report in reports[1:]:
        if report["machine"]["fingerprint"] != first["machine"]["fingerprint"]:
            if across_machines:
                return None
            raise ReportError(
                source,
                "machine.fingerprint",
                f"is {report['machine']['fingerprint']} ({report['machine'].get('cpu_model', '?')}), but "
                f"{first_source} ran on {first['machine']['fingerprint']} ({first['machine'].get('cpu_model', '?')}): "
                f"timings of two machines do not pool; pass {ACROSS_MACHINES_FLAG} to add up the counts and drop "
                "the timings",
            )
    return first["machine"]


def merge_reports(
    reports: list[tuple[str, dict[str, Any]]], *, allow_incomplete: bool = False, across_machines: bool = False
) -> dict[str, Any]:
    """One report from validated ``(source, report)`` pairs (at least one); the refusals are the
    module's."""
    if not reports:
        raise ValueError("reports must name at least one report to merge, got none")
    if not allow_incomplete:
        for source, report in reports:
            require_complete(report, source, flag=ALLOW_INCOMPLETE_FLAG)
    _check_same_build(reports)
    _check_distinct(reports)
    machine = _machine(reports, across_machines)
    first = reports[0][1]
    docs = [report for _, report in reports]
    shards = [
        {
            "source": source,
            "digest": digest(report),
            "completeness": report.get("completeness"),
            "created": report.get("created"),
            "hypothesis_profile": report["environment"]["hypothesis_profile"],
            "linconv_env": report["environment"].get("linconv_env", {}),
            "xdist_workers": report["environment"].get("xdist_workers", 0),
            "machine_fingerprint": report["machine"]["fingerprint"],
            "wall_s": (report.get("run") or {}).get("wall_s"),
            "devices": report["environment"].get("devices", {}),
            "devices_absent": report["environment"].get("devices_absent", {}),
        }
        for source, report in reports
    ]
    walls = [s["wall_s"] for s in shards if s["wall_s"] is not None]
    environment = dict(first["environment"])
    environment["xdist_workers"] = sum(s["xdist_workers"] for s in shards)
    profiles = sorted({s["hypothesis_profile"] for s in shards})
    environment["hypothesis_profile"] = profiles[0] if len(profiles) == 1 else "+".join(profiles)
    # device truth: a device that ran in any job ran; one is absent only where no job had it
    # (each job's own devices stay in its shard entry)
    devices: dict[str, str] = {}
    absent: dict[str, str] = {}
    for report in docs:
        devices.update(report["environment"].get("devices", {}))
        absent.update(report["environment"].get("devices_absent", {}))
    environment["devices"] = devices
    environment["devices_absent"] = {d: why for d, why in absent.items() if d not in devices}
    lanes = {name: cfg for report in docs for name, cfg in report["environment"].get("execution_lanes", {}).items()}
    if lanes:  # the compiled execution lanes any job ran, with their configuration
        environment["execution_lanes"] = lanes
    if machine is None:  # several machines: their counts add up, their timings are dropped
        prints = sorted({report["machine"]["fingerprint"] for report in docs})
        machine = {
            "fingerprint": "mixed-" + hashlib.sha256(",".join(prints).encode()).hexdigest()[:16],
            "machines": [report["machine"] for report in docs],
        }
    samples = [Sample.from_dict(s) for report in docs for s in report["samples"]] if "machines" not in machine else []
    merged = build_report(
        tallies=merge_tallies(row for report in docs for row in _tallies(report)),
        samples=samples,
        environment=environment,
        machine=machine,
        # the jobs ran side by side: the merged run took as long as its slowest job
        run={"wall_s": max(walls) if walls else None, "relations": _costs(docs)},
        timing_errors=[e for report in docs for e in report.get("timing_errors", [])],
    )
    merged["regressions"] = _regressions(docs)
    merged["rejected"] = merge_rejected(row for report in docs for row in report.get("rejected", []))
    known = _known_bugs(docs)
    if known is not None:
        merged["known_bugs"] = known
    for shard in shards:
        if shard["completeness"] is None:  # a report written before reports were stamped
            del shard["completeness"]
    merged["shards"] = shards
    merged["completeness"] = merged_stamp([report.get("completeness") for report in docs])
    return merged


def _file(path: str | os.PathLike[str]) -> Path:
    file = Path(path)
    return (file / REPORT_JSON if file.is_dir() else file).resolve()


def merge_report_files(
    paths: list[str | os.PathLike[str]], *, allow_incomplete: bool = False, across_machines: bool = False
) -> dict[str, Any]:
    """Load, validate and merge report.json files (or directories holding one); one file named
    twice is refused before it is read."""
    seen: dict[Path, str] = {}
    for path in paths:
        if _file(path) in seen:
            raise ReportError(path, "", f"is the report {seen[_file(path)]} names too: merging it would count it twice")
        seen[_file(path)] = str(path)
    loaded = [(str(path), load_report(path)) for path in paths]
    return merge_reports(loaded, allow_incomplete=allow_incomplete, across_machines=across_machines)
