"""Stress check: Ctrl-C (SIGINT) at random moments of a property run never leaves a report that
the gate accepts as complete. docs/robustness.md reports its numbers.

    python tests/stress/interrupted_runs.py                     # 10 interruptions, seed 0
    python tests/stress/interrupted_runs.py --code ../old-tree  # the same against another checkout

First one full run (its report is the gate's baseline, and its length T the range of the
moments), then for each trial: an empty report directory, the same run, SIGINT after a moment
drawn uniformly from [0, 0.95 T) (random.Random(seed)), and ``python -m linconv gate BASELINE
TRIAL``; T becomes the length of a trial that finishes first when that is shorter (on a shared
machine the same run takes twice as long at one time as at another), and trials go on until
``--trials`` runs were interrupted (at most three times as many trials). The gate must refuse
the trial's report (exit status 2: missing, or stamped interrupted); exit 0 or 1 means it took an
interrupted run for a complete one. A trial whose run finished before the signal came is counted
apart (its report is complete, truthfully): pytest exited 0 or 1, or the signal came after the
report was written, while the interpreter shut down (pytest dies of the signal, but the report's
stamp records every collected test run and pytest's exit status 0 or 1). Exit status 1 on any
accepted interrupted report, or fewer interrupted runs than asked for. Not collected by pytest
(an hour on a loaded 2-core machine); tests/test_robust_reports.py interrupts a run at a fixed
point.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = ["properties", "--devices", "cpu", "--hypothesis-profile", "dev", "-p", "no:cacheprovider", "-q"]


def _run(code: Path, report_dir: Path, interrupt_after: float | None) -> tuple[int, float]:
    env = {**os.environ, "PYTHONPATH": str(code), "LINCONV_REPORT_DIR": str(report_dir)}
    env["LINCONV_CAPTURE_DIR"] = str(report_dir / "pending")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *RUN],
        cwd=code,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background shell ignores SIGINT
    )
    if interrupt_after is not None:
        try:
            proc.wait(timeout=interrupt_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
    status = proc.wait()
    return status, time.perf_counter() - started


def _completeness(report_dir: Path) -> dict | None:
    path = report_dir / "report.json"
    return json.loads(path.read_text()).get("completeness", {}) if path.exists() else None


def _stamp(report_dir: Path) -> str:
    completeness = _completeness(report_dir)
    if completeness is None:
        return "no report"
    if not completeness:
        return "report without a stamp"
    return (
        f"{completeness['status']} ({completeness['ran']}/{completeness['collected']} tests, "
        f"exit status {completeness['exit_status']})"
    )


def _finished(report_dir: Path) -> bool:
    """The report says its run finished: every collected test ran and pytest chose exit 0 or 1."""
    c = _completeness(report_dir) or {}
    return c.get("status") == "complete" and c.get("ran") == c.get("collected") and c.get("exit_status") in (0, 1)


def _gate(code: Path, baseline: Path, candidate: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(code)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    command = [sys.executable, "-m", "linconv", "gate", str(baseline), str(candidate)]
    return subprocess.run(command, env=env, capture_output=True, cwd=code).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10, help="interrupted runs to make (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--code", type=Path, default=ROOT, help="the linconv checkout to run (default: this one)")
    args = parser.parse_args()
    code = args.code.resolve()
    rng = random.Random(args.seed)
    accepted = finished = late = interrupted = attempts = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        status, full = _run(code, work / "full", None)
        print(f"full run: exit status {status}, {full:.1f} s, {_stamp(work / 'full')}", flush=True)
        shortest = full  # the load of a shared machine changes the length of a run two-fold
        while interrupted < args.trials and attempts < 3 * args.trials:
            attempts += 1
            moment = rng.uniform(0, 0.95 * shortest)
            trial = work / f"trial-{attempts}"
            status, seconds = _run(code, trial, moment)
            gate = _gate(code, work / "full", trial)
            if status in (0, 1):
                finished += 1
                shortest = min(shortest, seconds)
                verdict = f"finished before the signal ({seconds:.1f} s)"
            elif _finished(trial) and gate in (0, 1):
                finished += 1
                late += 1
                shortest = min(shortest, seconds)
                verdict = "finished: the signal came after the report was written"
            else:
                interrupted += 1
                accepted += gate in (0, 1)
                verdict = "ACCEPTED AS COMPLETE" if gate in (0, 1) else "refused by the gate"
            stamp = _stamp(trial)
            print(f"trial {attempts}: SIGINT at {moment:5.1f} s, pytest exit {status}, {stamp}, gate exit {gate}: "
                  f"{verdict}", flush=True)  # fmt: skip
    print(
        f"{interrupted} interrupted runs, {accepted} accepted by the gate as complete; {finished} finished first "
        f"({late} of them with the signal after the report was written)"
    )
    return 1 if accepted or interrupted < args.trials else 0


if __name__ == "__main__":
    sys.exit(main())
