"""``python -m linconv gate BASELINE CANDIDATE``: one verdict on a torch upgrade from two run reports."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from linconv.core.fileio import write_text_atomic
from linconv.gate import (
    DEFAULT_DRIFT,
    DEFAULT_K,
    DEFAULT_MARGIN,
    DEFAULT_MIN_COUNT,
    Thresholds,
    compare,
    compare_benchmarks,
    load_benchmarks,
    load_run,
    render_markdown,
)
from linconv.runreport import REPORT_JSON, ReportError


def _positive(kind: type) -> object:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a {kind.__name__}, got {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
        return value

    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gate",
        help="compare a candidate torch's run report with a baseline's: one verdict, exit 1 when it fails",
        description="Compare two run reports (tox -e baseline and tox -e candidate write them into reports/baseline "
        "and reports/candidate). The gate fails (exit status 1) when the candidate has a property violation, a "
        "failing regression case or a failing test (junit.xml beside the report) that the baseline did not, or when a "
        "formulation got slower: its timings, each divided by the baseline's median in its (dtype, phase, size) "
        "cell and pooled, have a median above the baseline's by more than K times the mean IQR of the two runs AND "
        "by more than MARGIN. Timings are compared only when both runs come from the same machine "
        "(machine.fingerprint). Drift of the worst error/bound per relation is reported, and fails the gate with "
        "--fail-on-drift; --benchmarks are compared by the same rule and fail it with --fail-on-benchmarks. "
        "The verdict is Markdown with one table: to stdout, to --out, and appended to $GITHUB_STEP_SUMMARY when "
        "set. Exit status 2: a file that cannot be used (the message names the file and the field). "
        "See docs/gating.md.",
    )
    parser.add_argument("baseline", type=Path, help=f"the baseline's {REPORT_JSON}, or a directory that holds one")
    parser.add_argument("candidate", type=Path, help=f"the candidate's {REPORT_JSON}, or a directory that holds one")
    parser.add_argument(
        "--k",
        type=_positive(float),
        default=DEFAULT_K,
        help=f"noise multiple: slower only beyond K*(IQR_baseline+IQR_candidate)/2 (default {DEFAULT_K:g})",
    )
    parser.add_argument(
        "--margin",
        type=_positive(float),
        default=DEFAULT_MARGIN,
        help=f"minimum relative slowdown, 0.25 = 25%% (default {DEFAULT_MARGIN:g})",
    )
    parser.add_argument(
        "--min-count",
        type=_positive(int),
        default=DEFAULT_MIN_COUNT,
        help=f"timings a cell needs in both runs to take part (default {DEFAULT_MIN_COUNT})",
    )
    parser.add_argument(
        "--drift",
        type=_positive(float),
        default=DEFAULT_DRIFT,
        help=f"worst error/bound growth factor reported as drift (default {DEFAULT_DRIFT:g})",
    )
    parser.add_argument("--fail-on-drift", action="store_true", help="drift fails the gate too")
    parser.add_argument(
        "--benchmarks",
        nargs=2,
        type=Path,
        metavar=("BASE.json", "CAND.json"),
        help="also compare two pytest-benchmark JSONs (--benchmark-json) with the same rule",
    )
    parser.add_argument(
        "--fail-on-benchmarks",
        action="store_true",
        help="a benchmark slower by the same rule fails the gate too (default: reported only; for dedicated runners)",
    )
    parser.add_argument("--out", type=Path, help="also write the verdict (Markdown) to this file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    thresholds = Thresholds(
        k=args.k,
        margin=args.margin,
        min_count=args.min_count,
        drift=args.drift,
        fail_on_drift=args.fail_on_drift,
        fail_on_benchmarks=args.fail_on_benchmarks,
    )
    try:
        baseline, candidate = load_run(args.baseline), load_run(args.candidate)
        benchmarks = [load_benchmarks(path) for path in args.benchmarks] if args.benchmarks else None
    except ReportError as exc:
        print(f"gate: {exc}", file=sys.stderr)
        return 2
    gate = compare(baseline, candidate, thresholds)
    if benchmarks:
        compare_benchmarks(gate, benchmarks[0], benchmarks[1], (str(args.benchmarks[0]), str(args.benchmarks[1])))
    text = render_markdown(gate).rstrip("\n") + "\n"
    print(text, end="")
    if args.out:
        write_text_atomic(args.out, text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(text)
    return 0 if gate.passed else 1
