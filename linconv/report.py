"""The run report: what a property run saw (per relation: examples, violations, worst error/bound)
and how fast each formulation was, as ``report.json`` (schema: docs/report.md), ``report.md`` and
a plot of time ratios against problem size (linconv.plot).

``build_report`` assembles the JSON document from the session's tallies, the timing samples and
the run's costs; every rendering (Markdown, terminal table, plot) reads only that document, so
``python -m linconv report PATH`` re-renders exactly what the run wrote.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from linconv.atomic import write_text_atomic
from linconv.timing import Sample, formulation_order, ratio_rows, timing_rows, timing_threads

__all__ = [
    "REPORT_JSON",
    "REPORT_MD",
    "REPORT_PNG",
    "SCHEMA_VERSION",
    "need_field",
    "ReportError",
    "build_report",
    "environment",
    "load_report",
    "machine_identity",
    "merge_tallies",
    "render_from",
    "render_markdown",
    "summary_lines",
    "tally_rows",
    "validate_report",
    "write_report",
]

# Bump when a key is renamed or its meaning changes; adding keys keeps the version.
SCHEMA_VERSION = 1
REPORT_JSON, REPORT_MD, REPORT_PNG = "report.json", "report.md", "report.png"

# Relations checked outside linconv.relations (their own runners), with their statements.
_SPECIAL_STATEMENTS = {
    "classifier_head": "a conv head [N,K,1,1] + CrossEntropyLoss on [N,1,1] equals a Linear head [N,K] on [N]",
    "init": "under one seed, Conv2d(C, O, (kh, kw)) and Linear(C*kh*kw, O) get bit-identical default parameters",
}


class ReportError(ValueError):
    """A report file that cannot be used: names the file and the field."""

    def __init__(self, path: str | os.PathLike[str], field: str, problem: str) -> None:
        self.path, self.field, self.problem = str(path), field, problem
        where = f"field '{field}' " if field else ""
        super().__init__(f"{path}: {where}{problem}")


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
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    if device.startswith("mps"):
        return "Apple MPS"
    return _cpu_model()


def environment(
    *, devices: Iterable[str], profile: str, workers: int = 0, threads_timed: int | None = None
) -> dict[str, Any]:
    from hypothesis import __version__ as hypothesis_version

    from linconv import config
    from linconv.precision import read_flags

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
        "devices": {d: _device_name(d) for d in devices},
        "precision_flags": read_flags().to_dict(),
        "dtypes": list(config.selected_dtypes()),
        "max_numel": config.max_numel(),
        "xdist_workers": workers,
        "linconv_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("LINCONV_")},
    }


# --- tallies (linconv.session) as plain rows -----------------------------------------------


def tally_rows(tallies: dict) -> list[dict[str, Any]]:
    """SESSION.tallies as JSON rows: relation, device, dtype, examples, violations, exact, worst_ratio."""
    return [{"relation": r, "device": d, "dtype": t, **tally.to_dict()} for (r, d, t), tally in sorted(tallies.items())]


def merge_tallies(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of several workers, summed per (relation, device, dtype); the worst ratio is the max."""
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["relation"], row["device"], row["dtype"])
        if key not in merged:
            merged[key] = dict(row)
            continue
        into = merged[key]
        for name in ("examples", "violations", "exact"):
            into[name] += row[name]
        into["worst_ratio"] = max(into["worst_ratio"], row["worst_ratio"])
    return [merged[k] for k in sorted(merged)]


# --- the document ----------------------------------------------------------------------------


def _statement(relation: str) -> str:
    from linconv.relations import RELATIONS

    return RELATIONS[relation].statement if relation in RELATIONS else _SPECIAL_STATEMENTS.get(relation, "")


def _finite(value: float) -> float | str:
    """JSON has no infinity: a non-finite ratio is written as the string "inf" / "nan"."""
    return value if math.isfinite(value) else str(value)


def _number(value: float | str) -> float:
    return float(value)


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
                "worst_ratio": _finite(max((_number(row["worst_ratio"]) for row in rows), default=0.0)),
            },
            "by_device_dtype": [{**row, "worst_ratio": _finite(_number(row["worst_ratio"]))} for row in rows],
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


# --- reading and validating --------------------------------------------------------------------

_NUMBER = (int, float)


def need_field(data: Any, key: str, kind: type | tuple[type, ...], where: str, path: str | os.PathLike[str]) -> Any:
    """``data[key]`` if ``data`` is an object holding a ``kind`` there (a number may be "inf"/"nan"),
    else a ReportError naming the file and the field."""
    name = f"{where}.{key}" if where else key
    if not isinstance(data, dict):
        raise ReportError(path, where or "(top level)", f"must be an object, got {type(data).__name__}")
    if key not in data:
        raise ReportError(path, name, "is missing")
    value = data[key]
    if kind is float or kind == _NUMBER:
        ok = isinstance(value, _NUMBER) and not isinstance(value, bool)
        ok = ok or (isinstance(value, str) and value in ("inf", "nan"))
    else:
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        expected = kind.__name__ if isinstance(kind, type) else "number"
        raise ReportError(path, name, f"must be {expected}, got {value!r}")
    return value


_ROW_STRINGS = {
    "timings": ("key", "relation", "formulation", "device", "mode", "dtype", "phase", "size_bucket"),
    "ratios": ("key", "relation", "pair", "device", "mode", "dtype", "phase", "size_bucket"),
}
_ROW_NUMBERS = {
    "timings": ("median_s", "q1_s", "q3_s", "iqr_s"),
    "ratios": ("median", "q1", "q3", "iqr"),
}


def validate_report(data: Any, path: str | os.PathLike[str] = "<report>") -> dict[str, Any]:
    """Check the fields the renderers and a gate rely on; raise ReportError naming the first bad one."""
    path = str(path)
    version = need_field(data, "schema_version", int, "", path)
    if version != SCHEMA_VERSION:
        raise ReportError(path, "schema_version", f"is {version}; this linconv reads version {SCHEMA_VERSION}")
    env = need_field(data, "environment", dict, "", path)
    for key in ("torch", "python", "hypothesis_profile"):
        need_field(env, key, str, "environment", path)
    need_field(env, "threads", int, "environment", path)
    machine = need_field(data, "machine", dict, "", path)
    need_field(machine, "fingerprint", str, "machine", path)
    for name, entry in need_field(data, "relations", dict, "", path).items():
        where = f"relations.{name}"
        need_field(entry, "formulations", list, where, path)
        totals = need_field(entry, "totals", dict, where, path)
        for key in ("examples", "violations"):
            need_field(totals, key, int, f"{where}.totals", path)
        need_field(totals, "worst_ratio", float, f"{where}.totals", path)
        for i, row in enumerate(need_field(entry, "by_device_dtype", list, where, path)):
            for key in ("device", "dtype"):
                need_field(row, key, str, f"{where}.by_device_dtype[{i}]", path)
            for key in ("examples", "violations", "exact"):
                need_field(row, key, int, f"{where}.by_device_dtype[{i}]", path)
            need_field(row, "worst_ratio", float, f"{where}.by_device_dtype[{i}]", path)
    for table in ("timings", "ratios"):
        for i, row in enumerate(need_field(data, table, list, "", path)):
            for key in _ROW_STRINGS[table]:
                need_field(row, key, str, f"{table}[{i}]", path)
            for key in _ROW_NUMBERS[table]:
                need_field(row, key, float, f"{table}[{i}]", path)
            need_field(row, "count", int, f"{table}[{i}]", path)
    for i, sample in enumerate(need_field(data, "samples", list, "", path)):
        for key in ("relation", "device", "dtype"):
            need_field(sample, key, str, f"samples[{i}]", path)
        need_field(sample, "size", int, f"samples[{i}]", path)
        need_field(sample, "times", dict, f"samples[{i}]", path)
    return data


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a report.json (or the report.json in a directory)."""
    file = Path(path)
    if file.is_dir():
        file = file / REPORT_JSON
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(file, "", "no such file") from None
    except UnicodeDecodeError as exc:
        raise ReportError(file, "", f"is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise ReportError(file, "", f"cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(file, "", f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return validate_report(data, file)


# --- rendering -------------------------------------------------------------------------------------


def _fmt_ratio(value: float | str) -> str:
    value = _number(value)
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def _fmt_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def _fmt_optional(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def reading(pair: str, row: dict[str, Any]) -> str:
    """In words: which side of ``A/B`` is faster and by how much; 'within spread' when the
    interquartile range of the paired ratios contains 1."""
    a, b = pair.split("/")
    if row["q1"] <= 1 <= row["q3"] and row["count"] > 1:
        return "within spread"
    median = row["median"]
    return f"{b} {median:.2g}x faster" if median >= 1 else f"{a} {1 / median:.2g}x faster"


def _pooled(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report["ratios"] if r["dtype"] == "all" and r["size_bucket"] == "all"]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _describe_machine(machine: dict[str, Any]) -> str:
    gpus = ", ".join(machine.get("gpus", [])) or "none"
    return (
        f"{machine.get('cpu_model')} ({machine.get('cpu_capability')}), {machine.get('cpu_count')} CPUs, GPUs: {gpus}"
    )


def render_markdown(report: dict[str, Any], plot_name: str | None = REPORT_PNG) -> str:
    env, machine = report["environment"], report["machine"]
    lines = [
        "# linconv run report",
        "",
        f"torch {env['torch']} · Python {env['python']} · Hypothesis profile `{env['hypothesis_profile']}` · "
        f"{env['threads']} threads (timings: {env.get('timing_threads', '?')}) · created {report.get('created', '?')}",
        "",
    ]
    env_rows = [
        ["devices", ", ".join(f"{d} ({n})" for d, n in env.get("devices", {}).items())],
        ["machine", _describe_machine(machine)],
        ["machine fingerprint", f"`{machine['fingerprint']}`"],
        ["precision flags", ", ".join(f"{k}={v}" for k, v in env.get("precision_flags", {}).items())],
        ["CUDA / cuDNN", f"{env.get('cuda')} / {env.get('cudnn')}"],
        ["dtypes, max numel", f"{', '.join(env.get('dtypes', []))}; {env.get('max_numel')}"],
        ["xdist workers", str(env.get("xdist_workers", 0))],
        ["platform", str(env.get("platform"))],
        ["LINCONV_* variables", ", ".join(f"{k}={v}" for k, v in env.get("linconv_env", {}).items()) or "none"],
    ]
    for shard in report.get("shards", []):
        env_text = ", ".join(f"{k}={v}" for k, v in shard.get("linconv_env", {}).items()) or "no LINCONV_*"
        wall = shard.get("wall_s")
        env_rows.append(
            [
                "merged from",
                f"`{shard['source']}`: profile {shard['hypothesis_profile']}, {env_text}, "
                f"wall {_fmt_optional(wall, '.0f')} s, machine `{shard['machine_fingerprint']}`",
            ]
        )
    lines += [*_table(["", ""], env_rows), ""]

    lines += ["## Relations", ""]
    rows = []
    for name, entry in report["relations"].items():
        t, run = entry["totals"], entry.get("run", {})
        suite = run.get("suite_s")
        share = None if suite is None or not run.get("seconds") else 100 * suite / run["seconds"]
        timing = run.get("timing_s")
        timing_share = None if timing is None or not run.get("seconds") else 100 * timing / run["seconds"]
        rows.append(
            [
                name,
                str(t["examples"]),
                str(t["violations"]),
                str(t.get("exact", "-")),
                _fmt_ratio(t["worst_ratio"]),
                _fmt_optional(run.get("seconds"), ".1f"),
                _fmt_optional(run.get("examples_per_s"), ".2f"),
                _fmt_optional(share, ".0f"),
                _fmt_optional(timing_share, ".0f"),
                ", ".join(entry["formulations"]) if entry.get("timed") else "not timed",
            ]
        )
    lines += _table(
        [
            "relation",
            "examples",
            "violations",
            "exact lane",
            "worst error/bound",
            "test s",
            "examples/s",
            "suite's own cost %",
            "timing %",
            "timed formulations",
        ],
        rows,
    )
    lines += [
        "",
        "Violations count examples whose outcome was wrong (a negative control counts when it did *not* fire). "
        "Worst error/bound is over examples expected to hold; ≤ 1 passes. Suite's own cost: test time "
        "outside the formulations under test and outside timing (generation, tensors, float64 reference, bound).",
        "",
    ]
    by_dtype = [
        [name, r["device"], r["dtype"], str(r["examples"]), str(r["violations"]), _fmt_ratio(r["worst_ratio"])]
        for name, entry in report["relations"].items()
        for r in entry["by_device_dtype"]
    ]
    lines += ["<details><summary>per device and dtype</summary>", ""]
    lines += _table(["relation", "device", "dtype", "examples", "violations", "worst error/bound"], by_dtype)
    lines += ["", "</details>", ""]

    lines += [
        "## Which formulation is faster",
        "",
        "Median of the per-example time ratio A / B (same data, same run) over all sizes, for all dtypes "
        "together and for each dtype; IQR is its interquartile range. > 1: B is faster.",
        "",
    ]
    rows = [
        [
            r["relation"],
            f"{r['device']} ({r['mode']})",
            r["pair"].replace("/", " / "),
            r["dtype"],
            r["phase"],
            f"{r['median']:.3g}",
            f"{r['q1']:.3g} - {r['q3']:.3g}",
            str(r["count"]),
            reading(r["pair"], r),
        ]
        for r in report["ratios"]
        if r["size_bucket"] == "all"
    ]
    lines += _table(["relation", "device", "A / B", "dtype", "phase", "median ratio", "IQR", "n", "reading"], rows)
    lines += [""]
    if plot_name:
        lines += [f"![time ratio against problem size]({plot_name})", ""]

    lines += ["## Ratio by problem size", "", "Size: multiply-adds of the linear map, in buckets [2^k, 2^(k+2)).", ""]
    rows = [
        [
            r["relation"],
            f"{r['device']} ({r['mode']})",
            r["pair"].replace("/", " / "),
            r["phase"],
            r["size_bucket"],
            f"{r['median']:.3g}",
            f"{r['q1']:.3g} - {r['q3']:.3g}",
            str(r["count"]),
        ]
        for r in report["ratios"]
        if r["dtype"] == "all" and r["size_bucket"] != "all"
    ]
    lines += [*_table(["relation", "device", "A / B", "phase", "size", "median ratio", "IQR", "n"], rows), ""]

    lines += [
        "## Timings per formulation",
        "",
        "Seconds per call: forward without autograd; backward of one recorded forward. "
        "Median and IQR over the examples in each cell.",
        "",
        "<details><summary>all timing rows</summary>",
        "",
    ]
    rows = [
        [
            r["relation"],
            r["formulation"],
            f"{r['device']} ({r['mode']})",
            r["dtype"],
            r["phase"],
            r["size_bucket"],
            _fmt_time(r["median_s"]),
            _fmt_time(r["iqr_s"]),
            str(r["count"]),
        ]
        for r in report["timings"]
    ]
    lines += _table(["relation", "formulation", "device", "dtype", "phase", "size", "median", "IQR", "n"], rows)
    lines += ["", "</details>", ""]
    if report.get("timing_errors"):
        lines += ["## Timing errors (did not affect any check)", ""]
        lines += [f"- {e}" for e in report["timing_errors"][:20]] + [""]
    return "\n".join(lines)


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The short table that closes the pytest terminal output."""
    pooled = _pooled(report)
    columns = f"{'relation':<28} {'examples':>8} {'viol':>4} {'worst':>7} {'ex/s':>6}"
    lines = [f"{columns}  median time ratio A/B: forward | backward"]
    for name, entry in report["relations"].items():
        t, run = entry["totals"], entry.get("run", {})
        eps = _fmt_optional(run.get("examples_per_s"), ".1f")
        prefix = f"{name:<28} {t['examples']:>8} {t['violations']:>4} {_fmt_ratio(t['worst_ratio']):>7} {eps:>6}  "
        rows = [r for r in pooled if r["relation"] == name]
        if not rows:
            timed = entry.get("timed") and entry["formulations"]
            lines.append(prefix + (f"{', '.join(timed)} timed (nothing to compare)" if timed else "not timed"))
            continue
        cells: dict[tuple[str, str, str], dict[str, str]] = {}
        for r in rows:
            cell = cells.setdefault((r["pair"], r["device"], r["mode"]), {})
            cell[r["phase"]] = f"{r['median']:.2f}"
        for i, ((pair, device, mode), phases) in enumerate(cells.items()):
            where = device if mode == "default" else f"{device}/{mode}"
            text = f"{pair} on {where}: {phases.get('forward', '-')} | {phases.get('backward', '-')}"
            lines.append((prefix if i == 0 else " " * len(prefix)) + text)
    return lines


def _readable(paths: list[Path]) -> None:
    """The temporary files behind the atomic writes are created 0600; a report is for everyone
    who may read its directory, so give the written files the mode a plain open() would."""
    umask = os.umask(0)
    os.umask(umask)
    for path in paths:
        os.chmod(path, 0o666 & ~umask)


def _render(report: dict[str, Any], directory: Path, *, plot: bool) -> list[str]:
    """report.md and (with matplotlib) report.png into ``directory``; returns what was written and why
    the plot was not."""
    from linconv.plot import render_plot

    problem = render_plot(report, directory / REPORT_PNG) if plot else "plot not requested"
    write_text_atomic(directory / REPORT_MD, render_markdown(report, None if problem else REPORT_PNG))
    written = [directory / REPORT_MD] if problem else [directory / REPORT_MD, directory / REPORT_PNG]
    _readable(written)
    return [str(path) for path in written] + ([f"no plot: {problem}"] if problem and plot else [])


def write_report(report: dict[str, Any], directory: str | os.PathLike[str], *, plot: bool = True) -> list[str]:
    """Write report.json, report.md and (with matplotlib) report.png into ``directory``, each
    atomically. Returns the paths written, then a line saying why there is no plot, if there is none."""
    out = Path(directory)
    write_text_atomic(out / REPORT_JSON, json.dumps(report, indent=1, allow_nan=False) + "\n")
    _readable([out / REPORT_JSON])
    return [str(out / REPORT_JSON), *_render(report, out, plot=plot)]


def render_from(path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> list[str]:
    """Re-render report.md and report.png from a report.json (into ``out``, default beside it)."""
    file = Path(path)
    report = load_report(file)
    directory = Path(out) if out is not None else (file if file.is_dir() else file.parent)
    return _render(report, directory, plot=True)
