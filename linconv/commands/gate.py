"""``python -m linconv gate BASELINE CANDIDATE``: one verdict on a torch upgrade from two run reports."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from linconv.core.fileio import output_problem, write_text_atomic
from linconv.gate import (
    ALLOW_INCOMPLETE_FLAG,
    BENCHMARKS_JSON,
    DEFAULT_BENCH_MARGIN,
    DEFAULT_BENCH_NOISE,
    DEFAULT_DRIFT,
    DEFAULT_MARGIN,
    DEFAULT_MIN_COUNT,
    DEFAULT_RUN_NOISE,
    DEFAULT_Z,
    Thresholds,
    compare,
    load_run,
    render_markdown,
)
from linconv.runreport import REPORT_JSON, ReportError


def _positive(kind: type, *, least: float = 0) -> object:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a {kind.__name__}, got {text!r}") from None
        if not least <= value < math.inf:  # nan compares false with everything, inf hides everything: a rule off
            what = "an int" if kind is int else "a finite number"
            raise argparse.ArgumentTypeError(f"must be {what} >= {least:g}, got {text!r}")
        return value

    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gate",
        help="compare a candidate torch's run reports with a baseline's: one verdict, exit 1 when it fails",
        description="Compare the run reports of a baseline torch and a candidate torch (tox -e baseline and tox -e "
        "candidate write them, with junit.xml and benchmarks.json, into reports/<env>). The gate fails (exit status "
        "1) when the candidate has a property violation, a failing regression case or a failing test that the "
        "baseline did not (violations on inputs of a known upstream bug present in the baseline excepted), a known "
        "upstream bug that reproduces in the candidate only, or when a formulation, a benchmark or a formulation's "
        "group of benchmarks got slower: its timings in pacer units shift by more than MARGIN and more than Z "
        "standard errors (bootstrap within the runs plus the run-to-run noise, measured between twin runs when "
        "--abba gives each side a second run made in ABBA order: baseline, candidate, candidate, baseline). Timings "
        "are compared only when every run comes from the same machine. Drift of the worst error/bound is reported, "
        "and fails the gate with --fail-on-drift. The verdict is Markdown with one table: to stdout, to --out, and "
        "appended to $GITHUB_STEP_SUMMARY when set. Exit status 2: a file that cannot be used (the message names "
        f"the file and the field), a report of an interrupted or empty run (unless {ALLOW_INCOMPLETE_FLAG}), or an "
        "--out / $GITHUB_STEP_SUMMARY that cannot be written (checked before the comparison; should a write still "
        "fail, the verdict already printed stands and the exit status is 2). See docs/gating.md.",
    )
    where = f"its {REPORT_JSON}, or a directory holding one (and {BENCHMARKS_JSON}, junit.xml)"
    parser.add_argument("baseline", type=Path, help=f"the baseline run: {where}")
    parser.add_argument("candidate", type=Path, help=f"the candidate run: {where}")
    parser.add_argument(
        "--abba",
        nargs=2,
        type=Path,
        metavar=("BASELINE2", "CANDIDATE2"),
        help="the second run of each side, the four made in ABBA order (baseline, candidate, candidate, baseline): "
        "slow drift of the machine cancels, and the twins measure the run-to-run noise",
    )
    parser.add_argument(
        "--margin",
        type=_positive(float),
        default=DEFAULT_MARGIN,
        help=f"smallest relative slowdown of a formulation worth a verdict (default {DEFAULT_MARGIN:g})",
    )
    parser.add_argument(
        "--z",
        type=_positive(float),
        default=DEFAULT_Z,
        help=f"standard errors a slowdown must exceed (default {DEFAULT_Z:g})",
    )
    parser.add_argument(
        "--min-count",
        type=_positive(int, least=2),  # a quartile of fewer is an extreme value (Thresholds)
        default=DEFAULT_MIN_COUNT,
        help=f"timings a cell needs on both sides to take part (default {DEFAULT_MIN_COUNT})",
    )
    parser.add_argument(
        "--run-noise",
        type=_positive(float),
        default=DEFAULT_RUN_NOISE,
        help=f"run-to-run noise of a formulation's log timing without twin runs (default {DEFAULT_RUN_NOISE:g})",
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
        help=f"the benchmark JSONs of the first runs, where they are not {BENCHMARKS_JSON} beside the reports",
    )
    parser.add_argument(
        "--bench-margin",
        type=_positive(float),
        default=DEFAULT_BENCH_MARGIN,
        help=f"smallest relative slowdown of a benchmark worth a verdict (default {DEFAULT_BENCH_MARGIN:g})",
    )
    parser.add_argument(
        "--bench-noise",
        type=_positive(float),
        default=DEFAULT_BENCH_NOISE,
        help=f"run-to-run noise of a benchmark's log time without twin runs (default {DEFAULT_BENCH_NOISE:g})",
    )
    parser.add_argument(
        "--no-fail-on-benchmarks",
        action="store_true",
        help="report slower benchmarks without failing the gate (default: they fail it)",
    )
    parser.add_argument("--out", type=Path, help="also write the verdict (Markdown) to this file")
    parser.add_argument(
        ALLOW_INCOMPLETE_FLAG,
        action="store_true",
        help="compare a report of an interrupted or empty run too (the verdict notes it); by default refused",
    )
    parser.set_defaults(func=run)


def _outputs(args: argparse.Namespace) -> list[tuple[str, Path, bool]]:
    """Where the verdict goes besides stdout: (name, path, append)."""
    outputs = [("--out", args.out, False)] if args.out else []
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    return outputs + ([("$GITHUB_STEP_SUMMARY", Path(summary), True)] if summary else [])


def run(args: argparse.Namespace) -> int:
    thresholds = Thresholds(
        margin=args.margin,
        z=args.z,
        min_count=args.min_count,
        run_noise=args.run_noise,
        drift=args.drift,
        fail_on_drift=args.fail_on_drift,
        bench_margin=args.bench_margin,
        bench_noise=args.bench_noise,
        fail_on_benchmarks=not args.no_fail_on_benchmarks,
    )
    # The outputs are checked first: a verdict printed, then lost to an unwritable file, reads as
    # PASS in a log whose job then fails for another reason.
    for name, path, append in _outputs(args):
        problem = output_problem(path, append=append)
        if problem:
            print(f"gate: {name} {path} {problem}", file=sys.stderr)
            return 2
    explicit = args.benchmarks or (None, None)
    incomplete = {"allow_incomplete": args.allow_incomplete}
    try:
        baselines = [load_run(args.baseline, explicit[0], **incomplete)]
        candidates = [load_run(args.candidate, explicit[1], **incomplete)]
        if args.abba:
            baselines.append(load_run(args.abba[0], **incomplete))
            candidates.append(load_run(args.abba[1], **incomplete))
    except ReportError as exc:
        print(f"gate: {exc}", file=sys.stderr)
        return 2
    gate = compare(baselines, candidates, thresholds)
    text = render_markdown(gate).rstrip("\n") + "\n"
    print(text, end="")
    for name, path, append in _outputs(args):
        try:
            if append:
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write(text)
            else:
                write_text_atomic(path, text)
        except OSError as exc:
            print(f"gate: the verdict above could not be written to {name} {path}: {exc.strerror or exc}",
                  file=sys.stderr)  # fmt: skip
            return 2
    return 0 if gate.passed else 1
