"""``python -m linconv report PATH [PATH ...]``: re-render a run's report, or merge several runs' reports."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from linconv.runreport import REPORT_JSON, ReportError, merge_report_files, render_from, write_report


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="re-render report.md and report.png from a report.json, or merge several into one",
        description="With one PATH: read a run report (report.json, written by the property run into --report-dir, "
        "default reports/), check it against the schema in docs/report.md, and write report.md and report.png "
        "beside it (or into --out). With several PATHs (the jobs of one run split by seed or shard, "
        "docs/parallel.md): merge them - counts add, the worst error/bound is the maximum, timing samples are "
        "pooled - and write report.json, report.md and report.png into --out. Reports of different torch versions "
        "are refused (compare torches with `python -m linconv gate`). The plot needs matplotlib "
        "(pip install 'linconv[report]'); without it only the Markdown is written.",
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help=f"a {REPORT_JSON}, or a directory that holds one"
    )
    parser.add_argument(
        "--out", type=Path, help="directory to write into (default: beside the json; required to merge)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        if len(args.paths) == 1:
            lines = render_from(args.paths[0], args.out)
        elif args.out is None:
            print(f"report: --out is required to merge {len(args.paths)} reports (a directory to write into)",
                  file=sys.stderr)  # fmt: skip
            return 2
        else:
            merged = merge_report_files(args.paths)
            args.out.mkdir(parents=True, exist_ok=True)
            lines = write_report(merged, args.out)
            examples = sum(entry["totals"]["examples"] for entry in merged["relations"].values())
            print(f"merged {len(args.paths)} reports: {examples} examples")
    except ReportError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"report: cannot write into --out {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    for line in lines:
        print(line if line.startswith("no plot") else f"wrote {line}")
    return 0
