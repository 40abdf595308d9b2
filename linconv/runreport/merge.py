"""Merge the run reports of several jobs into one: a thorough run split by seed or by shard
across CI jobs (docs/parallel.md), read back as if one process had run it all.

Counts add up per relation, device, precision mode and dtype; the worst error/bound is the
maximum; timing samples are pooled (the tables are recomputed from them); regression outcomes
keep the worst outcome per case; a device counts as present when any job ran it, as absent when
none did (each job's devices stay in its ``shards`` entry). Reports of different
torch versions are refused: they answer different questions (that is the gate's job,
``python -m linconv gate``).
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

from linconv.runreport.build import build_report, merge_tallies
from linconv.runreport.files import load_report
from linconv.runreport.schema import OUTCOME_RANK, ReportError
from linconv.timing import Sample

__all__ = ["merge_reports", "merge_report_files"]

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
    """Each known bug once: reproduced if it reproduced in any job (the jobs share one torch)."""
    rows: dict[str, dict[str, Any]] = {}
    for report in reports:
        for row in report.get("known_bugs", []):
            into = rows.setdefault(row["name"], dict(row))
            into["reproduced"] = into["reproduced"] or row["reproduced"]
    return [rows[name] for name in sorted(rows)] if rows else None


def merge_reports(reports: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One report from validated ``(source, report)`` pairs (at least one)."""
    if not reports:
        raise ValueError("reports must name at least one report to merge, got none")
    first_source, first = reports[0]
    torch_version = first["environment"]["torch"]
    for source, report in reports[1:]:
        if report["environment"]["torch"] != torch_version:
            raise ReportError(
                source,
                "environment.torch",
                f"is {report['environment']['torch']}, but {first_source} ran torch {torch_version}: "
                "merge only jobs of one torch (compare torches with `python -m linconv gate`)",
            )
    docs = [report for _, report in reports]
    shards = [
        {
            "source": source,
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
    merged = build_report(
        tallies=merge_tallies(row for report in docs for row in _tallies(report)),
        samples=[Sample.from_dict(s) for report in docs for s in report["samples"]],
        environment=environment,
        machine=first["machine"],
        # the jobs ran side by side: the merged run took as long as its slowest job
        run={"wall_s": max(walls) if walls else None, "relations": _costs(docs)},
        timing_errors=[e for report in docs for e in report.get("timing_errors", [])],
    )
    merged["regressions"] = _regressions(docs)
    known = _known_bugs(docs)
    if known is not None:
        merged["known_bugs"] = known
    merged["shards"] = shards
    return merged


def merge_report_files(paths: list[str | os.PathLike[str]]) -> dict[str, Any]:
    """Load, validate and merge report.json files (or directories holding one)."""
    return merge_reports([(str(path), load_report(path)) for path in paths])
