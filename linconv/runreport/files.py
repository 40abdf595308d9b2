"""Run report files: report.json (validated on reading), report.md and report.png, each written
atomically and readable by everyone who may read the directory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from linconv.core.fileio import write_text_atomic
from linconv.runreport.render import render_markdown
from linconv.runreport.schema import ReportError, validate

__all__ = ["REPORT_JSON", "REPORT_MD", "REPORT_PNG", "load_report", "render_from", "write_report"]

REPORT_JSON, REPORT_MD, REPORT_PNG = "report.json", "report.md", "report.png"


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
    return validate(data, file)


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
    from linconv.runreport.plot import render_plot

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
