"""``python -m linconv report PATH [PATH ...]``: re-render a run's report, or merge several runs' reports."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from linconv.runreport import REPORT_JSON, ReportError, merge_report_files, render_from, write_report
from linconv.runreport.merge import ACROSS_MACHINES_FLAG, ALLOW_INCOMPLETE_FLAG


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="re-render report.md and report.png from a report.json, or merge several into one",
        description="With one PATH: read a run report (report.json, written by the property run into --report-dir, "
        "default reports/), check it against the schema in docs/report.md, and write report.md and report.png "
        "beside it (or into --out). With several PATHs (the jobs of one run split by seed or shard, "
        "docs/parallel.md): merge them - counts add, the worst error/bound is the maximum, timing samples are "
        "pooled - and write report.json, report.md and report.png into --out. Refused (exit status 2, naming the "
        "file and field): a report of an interrupted or empty run (see --allow-incomplete), reports of different "
        "torch builds (compare torches with `python -m linconv gate`) or machines (see --across-machines), one "
        "run given twice, and an --out that would overwrite an input. The plot needs matplotlib "
        "(pip install 'linconv[report]'); without it only the Markdown is written.",
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help=f"a {REPORT_JSON}, or a directory that holds one"
    )
    parser.add_argument(
        "--out", type=Path, help="directory to write into (default: beside the json; required to merge)"
    )
    parser.add_argument(
        ALLOW_INCOMPLETE_FLAG,
        action="store_true",
        help="merge reports of interrupted or empty runs too (the merged report is then stamped incomplete)",
    )
    parser.add_argument(
        ACROSS_MACHINES_FLAG,
        action="store_true",
        help="merge reports of different machines: counts add up, timings are dropped (they do not pool)",
    )
    parser.set_defaults(func=run)


def _overwritten_input(paths: list[Path], out: Path) -> Path | None:
    """The input whose report.json writing into ``out`` would replace, if any."""
    target = (out / REPORT_JSON).resolve()
    for path in paths:
        if ((path / REPORT_JSON) if path.is_dir() else path).resolve() == target:
            return path
    return None


def run(args: argparse.Namespace) -> int:
    try:
        if len(args.paths) == 1:
            lines = render_from(args.paths[0], args.out)
        elif args.out is None:
            print(f"report: --out is required to merge {len(args.paths)} reports (a directory to write into)",
                  file=sys.stderr)  # fmt: skip
            return 2
        elif (overwritten := _overwritten_input(args.paths, args.out)) is not None:
            print(f"report: --out {args.out} would overwrite the input {overwritten}: write the merge elsewhere",
                  file=sys.stderr)  # fmt: skip
            return 2
        else:
            merged = merge_report_files(
                args.paths, allow_incomplete=args.allow_incomplete, across_machines=args.across_machines
            )
            args.out.mkdir(parents=True, exist_ok=True)
            lines = write_report(merged, args.out)
            examples = sum(entry["totals"]["examples"] for entry in merged["relations"].values())
            print(f"merged {len(args.paths)} reports: {examples} examples")
            if "machines" in merged["machine"]:
                print(f"the reports come from {len(merged['machine']['machines'])} machines: timings dropped")
            if merged["completeness"]["status"] != "complete":
                print(f"the merged report is stamped {merged['completeness']['status']} ({ALLOW_INCOMPLETE_FLAG})")
    except ReportError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"--out {args.out}" if args.out is not None else f"beside {args.paths[0]}"
        print(f"report: cannot write into {where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line if line.startswith("no plot") else f"wrote {line}")
    return 0
