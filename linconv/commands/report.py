"""``python -m linconv report PATH``: re-render report.md and report.png from a run's report.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from linconv.report import REPORT_JSON, ReportError, render_from


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="re-render report.md and report.png from a report.json",
        description="Read a run report (report.json, written by the property run into --report-dir, default "
        "reports/), check it against the schema in docs/report.md, and write report.md and report.png beside it "
        "(or into --out). The plot needs matplotlib (pip install 'linconv[report]'); without it only the "
        "Markdown is written.",
    )
    parser.add_argument("path", type=Path, help=f"a {REPORT_JSON}, or a directory that holds one")
    parser.add_argument("--out", type=Path, help="directory to write into (default: beside the json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        lines = render_from(args.path, args.out)
    except ReportError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line if line.startswith("no plot") else f"wrote {line}")
    return 0
