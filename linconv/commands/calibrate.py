"""``python -m linconv calibrate``: measure the error model's constant C on this machine."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from linconv.calibration import Sample, calibrated_relations, collect, current_constant, render_markdown, summarize
from linconv.core.fileio import output_problem, write_text_atomic
from linconv.lanes.execution import get_lane, lane_names


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="measure the smallest error-model constant C each comparison needs (calibration data)",
        description="Run generated examples of each relation without asserting, record the smallest "
        "constant C of the error model that covers every comparison, and print p50/p99/max per dtype and "
        "formulation. The committed data is docs/calibration.md.",
    )
    parser.add_argument("--examples", type=int, default=1000, help="examples per relation (default 1000)")
    calibrated = ",".join(calibrated_relations())
    parser.add_argument(
        "--relations",
        default=calibrated,
        help=f"comma-separated relations (default: every calibrated one, {calibrated})",
    )
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0)")
    parser.add_argument("--device", default="cpu", help="device to calibrate on (default cpu)")
    parser.add_argument(
        "--execution",
        default="eager",
        help="execution lane the formulations run in (linconv.lanes.execution: "
        + ", ".join(lane_names())
        + "; default eager). In a compiled lane the relations that lane cannot run are left out of the default",
    )
    parser.add_argument("--json", type=Path, help="write the summary rows as JSON to this file")
    parser.add_argument(
        "--samples", type=Path, help="append every comparison's sample to this JSON-lines file, relation by relation"
    )
    parser.add_argument(
        "--from-samples",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="summarise samples files written by --samples instead of running examples",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        lane = get_lane(args.execution)
    except ValueError as exc:
        print(f"calibrate: --execution: {exc}", file=sys.stderr)
        return 2
    why = lane.unavailable_reason(args.device)
    if why:
        print(f"calibrate: --execution {args.execution}: {why}", file=sys.stderr)
        return 2
    allowed = calibrated_relations(args.execution)
    if args.relations == ",".join(calibrated_relations()):  # the default: every one this lane can run
        args.relations = ",".join(allowed)
    relations = [r.strip() for r in args.relations.split(",") if r.strip()]
    unknown = [r for r in relations if r not in allowed]
    if unknown or not relations:
        print(f"calibrate: --relations must be a subset of {','.join(allowed)} (execution lane {args.execution}), "
              f"got {args.relations!r}", file=sys.stderr)  # fmt: skip
        return 2
    if args.json is not None and args.json.is_dir():
        print(f"calibrate: --json must be a file path, got the directory {str(args.json)!r}", file=sys.stderr)
        return 2
    if args.examples < 1:
        print(f"calibrate: --examples must be >= 1, got {args.examples}", file=sys.stderr)
        return 2
    # Outputs and the device are checked before the run: they failed after minutes of examples.
    for option, path, append in (("--json", args.json, False), ("--samples", args.samples, True)):
        problem = output_problem(path, append=append) if path is not None else ""
        if problem:
            print(f"calibrate: {option} {path} {problem}", file=sys.stderr)
            return 2
    if not args.from_samples:
        from linconv.lanes.devices import device_option_problem

        problem = device_option_problem(args.device)
        if problem:
            print(f"calibrate: {problem}", file=sys.stderr)
            return 2
    samples, timings = [], {}
    if args.from_samples:
        for path in args.from_samples:
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
                samples += [Sample(**json.loads(line)) for line in lines if line.strip()]
            except (OSError, ValueError, TypeError) as exc:
                print(f"calibrate: --from-samples {path}: cannot read samples: {exc}", file=sys.stderr)
                return 2
        relations = sorted({s.relation for s in samples})
    for relation in [] if args.from_samples else relations:
        got, seconds = collect(relation, args.examples, seed=args.seed, device=args.device, execution=args.execution)
        samples += got
        timings[relation] = seconds
        print(f"{relation}: {args.examples} examples, {len(got)} comparisons, {seconds:.1f} s", flush=True)
        if args.samples:
            with args.samples.open("a", encoding="utf-8") as handle:
                handle.writelines(json.dumps(asdict(s)) + "\n" for s in got)
    by_formulation = summarize(samples, ("dtype", "formulation"))
    by_tensor = summarize(samples, ("relation", "dtype", "formulation", "tensor"))
    print(f"\nexecution lane: {args.execution}; C in use: {current_constant()}\n")
    print(render_markdown(by_formulation, ("dtype", "formulation")))
    print()
    print(render_markdown(by_tensor, ("relation", "dtype", "formulation", "tensor")))
    if args.json:
        payload = {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "device": args.device,
            "execution": args.execution,
            "examples_per_relation": None if args.from_samples else args.examples,
            "relations": relations,
            "seed": args.seed,
            "seconds": timings,
            "c_in_use": current_constant(),
            "by_formulation": by_formulation,
            "by_tensor": by_tensor,
        }
        write_text_atomic(args.json, json.dumps(payload, indent=1, sort_keys=True, default=str) + "\n")
    return 0
