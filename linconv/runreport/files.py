"""Run report files: report.json (validated on reading, whatever the file holds), report.md and
report.png, each written atomically with the permissions a plain ``open()`` would give."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from linconv.core.fileio import JSONFileError, read_json, write_text_atomic
from linconv.runreport.render import render_markdown
from linconv.runreport.schema import ReportError, validate

__all__ = ["MAX_REPORT_BYTES", "REPORT_JSON", "REPORT_MD", "REPORT_PNG", "load_report", "render_from", "write_report"]

REPORT_JSON, REPORT_MD, REPORT_PNG = "report.json", "report.md", "report.png"
# The largest report.json read: a thorough run timed on every example, merged from ten jobs, has
# about 120,000 samples of 300 bytes (36 MB); the bound only keeps a hostile file from filling memory.
MAX_REPORT_BYTES = 512 * 2**20


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a report.json (or the report.json in a directory)."""
    file = Path(path)
    if file.is_dir():
        file = file / REPORT_JSON
    try:
        data = read_json(file, max_bytes=MAX_REPORT_BYTES)
    except JSONFileError as exc:
        raise ReportError(file, "", exc.problem) from None
    return validate(data, file)


def _render(report: dict[str, Any], directory: Path, *, plot: bool) -> list[str]:
    """report.md and (with matplotlib) report.png into ``directory``; returns what was written and why
    the plot was not."""
    from linconv.runreport.plot import render_plot

    problem = render_plot(report, directory / REPORT_PNG) if plot else "plot not requested"
    write_text_atomic(directory / REPORT_MD, render_markdown(report, None if problem else REPORT_PNG))
    written = [directory / REPORT_MD] if problem else [directory / REPORT_MD, directory / REPORT_PNG]
    return [str(path) for path in written] + ([f"no plot: {problem}"] if problem and plot else [])


def write_report(report: dict[str, Any], directory: str | os.PathLike[str], *, plot: bool = True) -> list[str]:
    """Write report.json, report.md and (with matplotlib) report.png into ``directory``, each
    atomically. Returns the paths written, then a line saying why there is no plot, if there is none."""
    out = Path(directory)
    write_text_atomic(out / REPORT_JSON, json.dumps(report, indent=1, allow_nan=False) + "\n")
    return [str(out / REPORT_JSON), *_render(report, out, plot=plot)]


def render_from(path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> list[str]:
    """Re-render report.md and report.png from a report.json (into ``out``, default beside it)."""
    file = Path(path)
    report = load_report(file)
    directory = Path(out) if out is not None else (file if file.is_dir() else file.parent)
    return _render(report, directory, plot=True)
