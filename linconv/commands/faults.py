"""``python -m linconv faults``: the fault-injection benchmark (does the suite catch real bugs?)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from linconv.core.fileio import write_text_atomic
from linconv.faults import all_faults
from linconv.faults.search import ci_max_examples, markdown_table, outcomes_json, search

DESCRIPTION = """\
Inject each fault of the catalogue (linconv/faults/catalogue/) into ONE formulation of its
relation, run that relation's property search (the strategy the property uses, derandomised,
examples as the `ci` profile) until the first violation, shrink it, and print
a table: caught?, by which comparison, examples and seconds until detection, the shrunk case.
Every harmful fault must be caught and no benign one flagged; the exit status is 1 otherwise.
Catalogue and results: docs/faults.md."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "faults",
        help="fault-injection benchmark: is every injected bug caught, and no benign change flagged?",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--list", action="store_true", help="list the faults (name, relation/formulation, class)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this fault (repeatable)")
    parser.add_argument(
        "--max-examples",
        type=int,
        default=None,
        help=f"examples per fault before giving up (default {ci_max_examples()}, the ci profile's)",
    )
    parser.add_argument("--no-shrink", action="store_true", help="report the first failing case, unshrunk (faster)")
    parser.add_argument("--device", default="cpu", help="device the cases run on (default cpu)")
    parser.add_argument(
        "--lane",
        action="append",
        metavar="LANE",
        help="run only the faults of this execution lane (repeatable; default every lane): e.g. `--lane eager` "
        "leaves out the compiled lanes' faults, which compile for minutes",
    )
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="also write the table to this file")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every outcome as JSON to this file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    faults = all_faults()
    if args.list:
        name_width = max(len(f.name) for f in faults)
        where_width = max(len(f.relation) + 1 + len(f.formulation) for f in faults)
        for f in faults:
            kind = "harmful" if f.harmful else "benign"
            print(f"{f.name:{name_width}} {f.relation + '/' + f.formulation:{where_width}} {kind:8} {f.bug_class}")
        return 0
    if args.max_examples is not None and args.max_examples < 1:
        print(f"faults: --max-examples must be >= 1, got {args.max_examples}", file=sys.stderr)
        return 2
    if args.only:
        known = {f.name for f in faults}
        unknown = [n for n in args.only if n not in known]
        if unknown:
            print(f"faults: unknown fault(s) {', '.join(unknown)}; `python -m linconv faults --list` names them",
                  file=sys.stderr)  # fmt: skip
            return 2
        faults = tuple(f for f in faults if f.name in args.only)
    if args.lane:
        lanes = {f.lane for f in all_faults()}
        unknown = sorted(set(args.lane) - lanes)
        if unknown:
            print(f"faults: --lane must be one of {sorted(lanes)}, got {', '.join(unknown)}", file=sys.stderr)
            return 2
        faults = tuple(f for f in faults if f.lane in args.lane)
    for option, path in (("--markdown", args.markdown), ("--json", args.json)):
        if path is not None and path.is_dir():
            print(f"faults: {option} {path} is a directory, not a file", file=sys.stderr)
            return 2
    from linconv.lanes.devices import device_option_problem

    problem = device_option_problem(args.device)
    if problem:
        print(f"faults: {problem}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    outcomes, stopped = [], []
    from linconv.lanes.execution import get_lane
    from linconv.lanes.time_limit import ExampleTimeLimitExceeded

    for fault in faults:
        why = get_lane(fault.lane).unavailable_reason(args.device)
        if why:  # e.g. freezing is a CPU lane: its faults are not searched on CUDA
            print(f"[skip] {fault.name}: {why}", flush=True)
            continue
        try:
            outcome = search(fault, max_examples=args.max_examples, shrink=not args.no_shrink, device=args.device)
        except ExampleTimeLimitExceeded as exc:  # neither caught nor missed: the search could not finish
            stopped.append(fault.name)
            print(f"[BAD] {fault.name}: search stopped, {str(exc).splitlines()[0]}", flush=True)
            continue
        outcomes.append(outcome)
        mark = "ok " if outcome.as_expected else "BAD"
        status = f"caught after {outcome.examples} example(s)" if outcome.caught else "not caught"
        print(f"[{mark}] {fault.name}: {status} ({outcome.seconds:.1f} s)", flush=True)
    wall = time.perf_counter() - started
    table = markdown_table(outcomes)
    harmful = [o for o in outcomes if o.fault.harmful]
    benign = [o for o in outcomes if not o.fault.harmful]
    summary = (
        f"{sum(o.caught for o in harmful)}/{len(harmful)} harmful faults caught, "
        f"{sum(o.caught for o in benign)}/{len(benign)} benign perturbations flagged; "
        f"{wall:.1f} s on {args.device}"
    ) + (f"; {len(stopped)} search(es) stopped by the compile time limit: {', '.join(stopped)}" if stopped else "")
    print()
    print(table)
    print()
    print(summary)
    try:
        if args.markdown:
            write_text_atomic(args.markdown, table + "\n\n" + summary + "\n")
        if args.json:
            write_text_atomic(args.json, outcomes_json(outcomes) + "\n")
    except OSError as exc:
        print(f"faults: cannot write the results: {exc}", file=sys.stderr)
        return 2
    return 0 if all(o.as_expected for o in outcomes) and not stopped else 1
