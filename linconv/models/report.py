"""The model report: ``report.json`` (the schema below, documented in docs/models.md) and
``report.md``, both written atomically, and the table the command prints.

A model report is its own document, not a run report (linconv.runreport): it is about one model's
layers on one input, not about relations over drawn examples, so ``python -m linconv report`` and
the gate do not read it. Top-level keys: ``kind`` ("linconv-model-report"), ``schema_version``,
``model``, ``input_shape``, ``dtype``, ``device``, ``seed``, ``max_numel``, ``created``,
``environment``, ``elapsed_s``, ``verdict`` ("pass" / "fail"), ``totals``, ``layers``,
``unsupported``, ``not_called``, ``kept``. Ratios and errors that are not finite are the strings
"inf" / "nan".
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from linconv.core.fileio import write_text_atomic
from linconv.lanes.flags import read_flags
from linconv.runreport import machine_identity
from linconv.runreport.markdown import fmt_ratio, fmt_time, table

__all__ = ["KIND", "SCHEMA_VERSION", "build_model_report", "render_markdown", "table_lines", "write_model_report"]

KIND = "linconv-model-report"
SCHEMA_VERSION = 1


def build_model_report(
    summary: dict[str, Any],
    *,
    model: str,
    input_shape: tuple[int, ...],
    dtype: str,
    device: str,
    seed: int,
    max_numel: int,
    threads: int,
    elapsed_s: float,
    kept: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "model": model,
        "input_shape": list(input_shape),
        "dtype": dtype,
        "device": device,
        "seed": seed,
        "max_numel": max_numel,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "threads": torch.get_num_threads(),
            "timing_threads": threads,
            "precision_flags": read_flags().to_dict(),
            "machine": machine_identity(threads),
        },
        "elapsed_s": elapsed_s,
        "verdict": "fail" if summary["totals"]["violations"] else "pass",
        **summary,
        "kept": kept or [],
    }


def _times(row: dict[str, Any]) -> str:
    parts = [
        f"{name} {fmt_time(entry['seconds'])}" if entry.get("seconds") else name + "*" * entry["converts_per_call"]
        for name, entry in row["formulations"].items()
    ]
    parts += [f"{name} skipped" for name in row["skipped"]]
    return ", ".join(parts)


def _worst(row: dict[str, Any]) -> str:
    if "holds" not in row:
        return "skipped (size budget)"
    if row.get("error"):
        return f"**ERROR: {row['error']}**"
    text = fmt_ratio(row["worst_ratio"])
    return text if row["holds"] else f"**{text} VIOLATED**"


def table_lines(report: dict[str, Any]) -> list[str]:
    """One row per layer and relation: K, worst error/bound, each formulation's time, the layer as
    run, and the fastest formulation with the layer-as-run time divided by its time."""
    rows = []
    for layer in report["layers"]:
        as_run = fmt_time(layer["as_run_s"]) if layer.get("as_run_s") else "-"
        fastest = f"{layer['fastest']} ({layer['speedup']:.2f}x)" if layer.get("fastest") else "-"
        if not layer["relations"]:
            rows.append([layer["name"], layer["kind"], "none applies", "-", "-", "-", as_run, "-"])
        for i, row in enumerate(layer["relations"]):
            first = i == 0
            rows.append(
                [
                    layer["name"] if first else "",
                    layer["kind"] if first else "",
                    row["relation"],
                    f"{row['reduction_length']:,}",
                    _worst(row),
                    _times(row),
                    as_run if first else "",
                    fastest if first else "",
                ]
            )
    header = [
        "layer",
        "kind",
        "relation",
        "K",
        "worst error/bound",
        "formulations (median time)",
        "as run",
        "fastest (as run / it)",
    ]
    return table(header, rows)


def _verdict_line(report: dict[str, Any]) -> str:
    t = report["totals"]
    word = "FAIL" if report["verdict"] == "fail" else "PASS"
    return (
        f"**{word}**: {t['targets']} layer(s) and pair(s), {t['checks']} relation check(s), "
        f"{t['violations']} violation(s), worst error/bound {fmt_ratio(t['worst_ratio'])}"
    )


def render_markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        f"# linconv model check: `{report['model']}`",
        "",
        f"Input {report['input_shape']} {report['dtype']} on {report['device']} (seed {report['seed']}); "
        f"torch {env['torch']}; {env['threads']} thread(s) for the checks, {env['timing_threads']} for timing; "
        f"size budget {report['max_numel']:,} elements; {report['elapsed_s']:.1f} s.",
        "",
        _verdict_line(report),
        "",
        "Each relation compares every formulation with the float64 reference on the layer's real weights and "
        "input (forward); `error/bound` <= 1 is rounding the error model explains. Times are medians of the "
        "forward alone; `fastest` divides the layer's own call by the fastest formulation's time (> 1: faster). "
        "A formulation marked * builds its weight (a dense matrix, a fused weight, a converter's output) on every "
        "call: it is checked, not timed (its time would be mostly that conversion).",
        "",
        *table_lines(report),
    ]
    without = [layer for layer in report["layers"] if not layer["relations"]]
    if without:
        lines += ["", "## Layers no relation applies to", ""]
        lines += [
            f"- `{layer['name']}` ({layer['describes']}): " + "; ".join(layer["not_applicable"]) for layer in without
        ]
    if report["unsupported"]:
        lines += ["", "## Calls not checked", ""]
        lines += [f"- `{u['name']}` ({u['kind']}): {u['why']}" for u in report["unsupported"]]
    if report["not_called"]:
        lines += ["", "## Conv/Linear modules the forward never called (their weights may be used directly)", ""]
        lines += ["- " + ", ".join(f"`{name}`" for name in report["not_called"])]
    if report["kept"]:
        lines += ["", "## Failing layers kept", ""]
        lines += [f"- `{k['layer']}` / {k['relation']}: {k['summary']}" for k in report["kept"]]
    env_flags = ", ".join(f"{k}={v}" for k, v in sorted(env["precision_flags"].items()))
    lines += ["", f"Precision flags: {env_flags}.", f"Machine: {json.dumps(env['machine'], sort_keys=True)}.", ""]
    return "\n".join(lines)


def write_model_report(report: dict[str, Any], directory: str | os.PathLike[str]) -> list[str]:
    """report.json and report.md into ``directory``, each atomically; returns the paths."""
    out = Path(directory)
    paths = [
        write_text_atomic(out / "report.json", json.dumps(report, indent=1, allow_nan=False) + "\n"),
        write_text_atomic(out / "report.md", render_markdown(report)),
    ]
    umask = os.umask(0)
    os.umask(umask)
    for path in paths:  # the temporary files behind the atomic writes are 0600
        os.chmod(path, 0o666 & ~umask)
    return [str(p) for p in paths]
