"""``python -m linconv gpu``: the prepared GPU run, writing docs/gpu/<device>.md."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from linconv.core.fileio import write_text_atomic
from linconv.gpurun.plan import BENCHMARKS_S, CHECKS_S, DEFAULT_BUDGET_S, RESERVE_S, plan, run_group

DESCRIPTION = f"""\
Everything linconv checks on a CUDA GPU, in one command that ends within a budget (default
{DEFAULT_BUDGET_S:.0f} s): the probe (device, driver, torch/CUDA/cuDNN versions, the measured TF32
vs IEEE error of the float32 formulations); then, side by side, every property in every CUDA
precision mode (as-shipped, strict, strict-no-cudnn, strict-cudnn-benchmark; each run also checks
the cross-device relation and replays the regression corpus) and the fault benchmark; then the
benchmarks alone (conv vs Linear timings). It writes DOC_DIR/<device>.md (every violation listed,
each to be explained) and keeps the raw outputs (run reports, junit.xml, JSONs, logs) in WORK.
A stage that would overrun the budget is stopped and the page says what is missing.

Runs from the source tree with the torch installed there, no install step:
    PYTHONPATH=. python -m linconv gpu
Exit status: 0 nothing violated, 1 a violation or an incomplete stage (the page says which),
2 the device is absent or an argument is wrong (nothing run). `--device cpu` rehearses the whole
run on the CPU (to test this command without a GPU). docs/gpu/README.md explains the budget."""

_ROOT = Path(__file__).resolve().parents[2]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gpu",
        help="the prepared GPU run: every property in every CUDA precision mode, corpus, faults, benchmarks, "
        "in one budget; writes docs/gpu/<device>.md",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--device", default="cuda", help="cuda or cuda:N (default cuda); cpu rehearses the run")
    parser.add_argument("--doc-dir", type=Path, default=_ROOT / "docs" / "gpu", help="where the page goes")
    parser.add_argument("--work", type=Path, default=_ROOT / "reports" / "gpu", help="raw outputs and logs")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=DEFAULT_BUDGET_S,
        help=f"seconds for the whole run (default {DEFAULT_BUDGET_S:.0f})",
    )
    parser.add_argument("--profile", default="ci", help="Hypothesis profile of the properties (default ci)")
    parser.add_argument(
        "--fault-examples", type=int, default=None, help="examples per fault (default: the ci profile's)"
    )
    parser.add_argument(
        "--bench-max-time",
        type=float,
        default=None,
        help="seconds per benchmark (default 0.5: bench_formulations.py); given, each benchmark is also "
        "timed once after one warm-up call (a rehearsal)",
    )
    parser.add_argument("--plan", action="store_true", help="print the stages and their time limits; run nothing")
    parser.set_defaults(func=run)


def _refuse(message: str) -> int:
    print(f"gpu: {message}", file=sys.stderr)
    return 2


def _page_name(device: str) -> str:
    import torch

    from linconv.gpurun.document import page_name

    if device.startswith("cuda"):
        return page_name(torch.cuda.get_device_name(device))
    return page_name(f"{device}-rehearsal")


def _print_plan(groups: list, budget_s: float) -> None:
    limits = (CHECKS_S, BENCHMARKS_S)
    print(f"budget {budget_s:.0f} s; {RESERVE_S:.0f} s kept for the probe and the page")
    print("probe (in process): versions, TF32 vs IEEE error table")
    for number, (group, limit) in enumerate(zip(groups, limits, strict=True), 1):
        print(f"group {number}, side by side, stopped after {limit:.0f} s at most:")
        for stage in group:
            print(f"  {stage.name}: {stage.what}")
            print(f"    {' '.join(stage.argv)}")
    print("page: DOC_DIR/<device>.md")


def run(args: argparse.Namespace) -> int:
    from linconv.lanes.devices import device_unavailable_reason
    from linconv.search.profiles import profile

    try:
        reason = device_unavailable_reason(args.device)
    except ValueError as exc:
        return _refuse(f"--device: {exc}")
    try:
        profile(args.profile)
    except ValueError as exc:
        return _refuse(f"--profile: {exc}")
    if args.fault_examples is not None and args.fault_examples < 1:
        return _refuse(f"--fault-examples must be >= 1, got {args.fault_examples}")
    if args.bench_max_time is not None and not args.bench_max_time > 0:
        return _refuse(f"--bench-max-time must be a number of seconds > 0, got {args.bench_max_time:g}")
    if not args.budget_s >= RESERVE_S + 60:
        return _refuse(f"--budget-s must be at least {RESERVE_S + 60:.0f} seconds, got {args.budget_s:g}")
    if not (_ROOT / "properties").is_dir() or not (_ROOT / "benchmarks").is_dir():
        return _refuse(f"needs the source tree (properties/ and benchmarks/ beside {_ROOT / 'linconv'})")
    work = args.work.resolve()
    groups = plan(
        args.device, work, profile=args.profile, fault_examples=args.fault_examples, bench_max_time=args.bench_max_time
    )
    if args.plan:
        _print_plan(groups, args.budget_s)
        return 0
    if reason:
        return _refuse(
            f"--device {args.device}: {reason}. This run checks that device and needs it: nothing was run, "
            "no page written (`--device cpu` rehearses the run without a GPU; `--plan` shows it)."
        )
    return _run(args, groups, work)


def _run(args: argparse.Namespace, groups: list, work: Path) -> int:
    from linconv.gpurun.document import GpuRun, render, violations
    from linconv.gpurun.probe import error_table, versions

    started = time.perf_counter()
    deadline = started + args.budget_s
    print(f"gpu: probing {args.device} ...", flush=True)
    info = versions(args.device)
    problems = []
    try:
        errors = error_table(args.device)
    except Exception as exc:  # the stages and the page still run; the page names what failed
        errors = []
        problems.append(f"the TF32 vs IEEE measurement raised {type(exc).__name__}: {exc}")
    results = []
    nominal = [CHECKS_S, BENCHMARKS_S]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    for number, group in enumerate(groups):
        later = sum(nominal[number + 1 :])
        limit = max(5.0, min(nominal[number], deadline - time.perf_counter() - later - RESERVE_S / 2))
        names = ", ".join(stage.name for stage in group)
        print(f"gpu: running {names} (at most {limit:.0f} s) ...", flush=True)
        done = run_group(group, root=_ROOT, logs=work / "logs", timeout_s=limit, cores=cores)
        for result in done:
            print(f"gpu:   {result.stage.name}: {result.status()}", flush=True)
        results += done
    command = (
        " ".join(["python -m linconv gpu", *sys.argv[2:]]) if sys.argv[1:2] == ["gpu"] else "python -m linconv gpu"
    )
    record = GpuRun(args.device, command, args.budget_s, time.perf_counter() - started, info, errors, results)
    record.problems = problems
    found = violations(record)
    page = args.doc_dir / _page_name(args.device)
    record.wall_s = time.perf_counter() - started
    write_text_atomic(page, render(record).rstrip("\n") + "\n")
    print(f"gpu: wrote {page} ({len(found)} violation(s) to explain; {record.wall_s:.0f} s)")
    return 1 if found else 0
