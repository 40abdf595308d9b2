"""Build the run report: what a property run saw (per relation: examples, violations, worst
error/bound) and how fast each formulation was, as one document of the schema in
:mod:`linconv.runreport.schema`, from the session's tallies, the timing samples and the run's
costs. Every rendering (Markdown, terminal table, plot) reads only that document.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import math
import os
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from linconv.core.fileio import json_number
from linconv.runreport.schema import SCHEMA_VERSION, tally_execution, tally_mode
from linconv.timing import Sample, formulation_order, ratio_rows, timing_rows, timing_threads

__all__ = [
    "build_report",
    "device_truth",
    "environment",
    "machine_identity",
    "merge_rejected",
    "merge_tallies",
    "rejected_rows",
    "tally_rows",
]


# --- environment ---------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_names() -> list[str]:
    names = []
    if torch.cuda.is_available():
        names += [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("Apple MPS")
    return names


def machine_identity(threads: int | None = None) -> dict[str, Any]:
    """What decides whether two runs' timings are comparable, without the hostname: CPU model and
    instruction set torch uses, logical CPUs, GPUs, the intra-op threads timings use (default
    linconv.timing.timing_threads()); ``fingerprint`` hashes them."""
    identity = {
        "cpu_model": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count() or 0,
        "gpus": _gpu_names(),
        "threads": timing_threads() if threads is None else threads,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return {**identity, "fingerprint": digest}


def _device_name(device: str) -> str:
    """The name of a device that is present (linconv.lanes.devices.device_unavailable_reason is None)."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(device)
    if device.startswith("mps"):
        return "Apple MPS"
    return _cpu_model()


def device_truth(devices: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The devices of a run as (present: device -> name, absent: device -> why it is absent)."""
    from linconv.lanes.devices import device_unavailable_reason

    present: dict[str, str] = {}
    absent: dict[str, str] = {}
    for device in devices:
        reason = device_unavailable_reason(device)
        if reason:
            absent[device] = reason
        else:
            present[device] = _device_name(device)
    return present, absent


def environment(
    *, devices: Iterable[str], profile: str, workers: int = 0, threads_timed: int | None = None
) -> dict[str, Any]:
    from hypothesis import __version__ as hypothesis_version

    from linconv.core import config
    from linconv.lanes.flags import read_flags

    present, absent = device_truth(devices)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "hypothesis": hypothesis_version,
        "hypothesis_profile": profile,
        "threads": torch.get_num_threads(),
        "timing_threads": timing_threads() if threads_timed is None else threads_timed,
        "devices": present,
        "devices_absent": absent,
        "precision_flags": read_flags().to_dict(),
        "dtypes": list(config.selected_dtypes()),
        "max_numel": config.max_numel(),
        "xdist_workers": workers,
        "linconv_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("LINCONV_")},
    }


# --- tallies (linconv.session) as plain rows -----------------------------------------------


def tally_rows(tallies: dict) -> list[dict[str, Any]]:
    """SESSION.tallies as JSON rows: relation, device, mode, execution, dtype, examples, violations,
    exact, worst_ratio (and what compiling cost, in a compiled execution lane)."""
    return [
        {"relation": r, "device": d, "mode": m, "execution": e, "dtype": t, **tally.to_dict()}
        for (r, d, m, e, t), tally in sorted(tallies.items())
    ]


def merge_tallies(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of several workers or jobs, summed per (relation, device, precision mode, execution lane,
    dtype); the worst ratio is the max. A row without a mode or an execution lane (an older report)
    gets its :func:`tally_mode` and :func:`tally_execution`."""
    merged: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["relation"], row["device"], tally_mode(row), tally_execution(row), row["dtype"])
        if key not in merged:
            merged[key] = {**row, "mode": key[2], "execution": key[3]}
            continue
        into = merged[key]
        for name in ("examples", "violations", "exact"):
            into[name] += row[name]
        into["worst_ratio"] = _worst(into["worst_ratio"], row["worst_ratio"])
        known = dict(into.get("known_bug_violations", {}))
        for bug, count in row.get("known_bug_violations", {}).items():
            known[bug] = known.get(bug, 0) + count
        into["known_bug_violations"] = known
        if "compile" in row or "compile" in into:
            spent = dict(into.get("compile", {}))
            for name, value in row.get("compile", {}).items():
                spent[name] = spent.get(name, 0) + value
            into["compile"] = spent
    return [merged[k] for k in sorted(merged)]


_REJECTED_KEY = ("relation", "device", "mode", "execution", "dtype", "reason")


def rejected_rows(rejected: Mapping[tuple[str, ...], int]) -> list[dict[str, Any]]:
    """SESSION.rejected (``_REJECTED_KEY`` -> cases) as JSON rows, sorted."""
    return [{**dict(zip(_REJECTED_KEY, key, strict=True)), "cases": n} for key, n in sorted(rejected.items())]


def merge_rejected(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rejected-case rows of several workers or jobs (:func:`rejected_rows`), summed per relation,
    device, precision mode, execution lane, dtype and reason."""
    merged: dict[tuple[str, ...], int] = {}
    for row in rows:
        key = tuple(str(row[k]) for k in _REJECTED_KEY)
        merged[key] = merged.get(key, 0) + int(row["cases"])
    return rejected_rows(merged)


def _worst(a: float | str, b: float | str) -> float:
    """The worse of two ratios, as written in a report (a number, or "inf" / "nan"): NaN, the mark of
    a NaN-producing bug, is worse than any number; infinity is worse than any finite one."""
    a, b = float(a), float(b)
    return math.nan if math.isnan(a) or math.isnan(b) else max(a, b)


# --- the document ----------------------------------------------------------------------------


def _statement(relation: str) -> str:
    from linconv.relations import get

    try:
        return get(relation).statement
    except ValueError:  # a relation this linconv does not register (a report from another version)
        return ""


def build_report(
    *,
    tallies: list[dict[str, Any]],
    samples: list[Sample],
    environment: dict[str, Any],
    machine: dict[str, Any],
    run: dict[str, Any] | None = None,
    timing_errors: list[str] | None = None,
) -> dict[str, Any]:
    """The report document. ``run``: {"wall_s": ..., "relations": {name: {"seconds", "checked_s",
    "timing_s"}}} — the seconds the tests of each relation took and where they went."""
    run = run or {}
    order = formulation_order(samples)
    relations: dict[str, Any] = {}
    for name in sorted({row["relation"] for row in tallies} | set(order)):
        rows = [{k: v for k, v in row.items() if k != "relation"} for row in tallies if row["relation"] == name]
        examples = sum(row["examples"] for row in rows)
        costs = run.get("relations", {}).get(name, {})
        seconds = costs.get("seconds")
        timed = name in order
        entry_run: dict[str, Any] = {"seconds": seconds, "examples_per_s": None, "checked_s": None}
        entry_run["timing_s"] = entry_run["suite_s"] = None
        if seconds:
            entry_run["examples_per_s"] = examples / seconds
            if costs.get("checked_s"):
                entry_run["checked_s"] = costs["checked_s"]
                entry_run["timing_s"] = costs.get("timing_s", 0.0)
                entry_run["suite_s"] = seconds - entry_run["checked_s"] - entry_run["timing_s"]
        relations[name] = {
            "statement": _statement(name),
            "formulations": order.get(name, []),
            "timed": timed,
            "totals": {
                "examples": examples,
                "violations": sum(row["violations"] for row in rows),
                "exact": sum(row["exact"] for row in rows),
                "worst_ratio": json_number(functools.reduce(_worst, (row["worst_ratio"] for row in rows), 0.0)),
            },
            "by_device_dtype": [{**row, "worst_ratio": json_number(float(row["worst_ratio"]))} for row in rows],
            "run": entry_run,
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "environment": environment,
        "machine": machine,
        "run": {"wall_s": run.get("wall_s")},
        "relations": relations,
        "timings": timing_rows(samples),
        "ratios": ratio_rows(samples),
        "samples": [s.to_dict() for s in samples],
        "timing_errors": list(timing_errors or []),
    }
