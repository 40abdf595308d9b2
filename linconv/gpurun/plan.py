"""The stages of the prepared GPU run, their time budget, and running them with a deadline.

The budget (docs/gpu/README.md explains it): a GPU is lent for minutes, so the whole run must
end within ``DEFAULT_BUDGET_S`` (8 minutes) wherever it runs, and a stage that would overrun is
stopped, not waited for: the page then says which results are missing, instead of the run
never writing one.

1. ``probe`` (in process): versions and the TF32 vs IEEE table, a few seconds;
2. ``checks`` (in parallel, ``CHECKS_S`` at most): one ``pytest properties`` per precision mode
   of the device (each also runs the cross-device relation and replays the regression corpus in
   its mode), and the fault benchmark; the modes run side by side so the slowest one (cuDNN
   benchmark mode, which autotunes every new shape) sets the time, not their sum;
3. ``benchmarks`` (alone, so nothing else loads the GPU or the CPU while they time,
   ``BENCHMARKS_S`` at most): bench_formulations.py on the device;
4. the page (in process).

Every command runs from the source tree (``PYTHONPATH`` = the repository root): no install step.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from linconv.lanes.modes import modes_of

__all__ = [
    "BENCHMARKS_S",
    "CHECKS_S",
    "DEFAULT_BUDGET_S",
    "RESERVE_S",
    "Stage",
    "StageResult",
    "plan",
    "run_group",
]

# The whole run: 8 minutes. Measured stage times are in docs/gpu/README.md; these limits leave
# the margin there (the stages' sum is 390 s of the 480 s).
DEFAULT_BUDGET_S = 480.0
# The properties in every mode and the fault benchmark, side by side. On the 2-core CPU the ci
# profile's properties took 23 s (docs/measurements.md); a GPU adds kernel launches and, in the
# strict-cudnn-benchmark mode, an autotuning per new shape (forward and backward).
CHECKS_S = 270.0
# 49 benchmarks per device, each at most 0.5 s (max_time) after 10 warm-up iterations: ~40 s.
BENCHMARKS_S = 90.0
# Kept back for the probe before the stages and the page after them.
RESERVE_S = 30.0
_POLL_S = 0.2


@dataclass(frozen=True)
class Stage:
    """One command of the run: its name (also its log file's), argv, and where it writes."""

    name: str
    argv: tuple[str, ...]
    outputs: tuple[Path, ...] = ()
    what: str = ""
    env: tuple[tuple[str, str], ...] = ()  # environment variables of this stage alone


@dataclass
class StageResult:
    stage: Stage
    returncode: int | None  # None: stopped at its deadline
    seconds: float
    log: Path
    missing: list[Path] = field(default_factory=list)  # outputs it did not write

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def status(self) -> str:
        if self.timed_out:
            return f"stopped at its deadline after {self.seconds:.0f} s"
        return f"exit {self.returncode} after {self.seconds:.0f} s"


def _python(*args: str) -> tuple[str, ...]:
    return (sys.executable, *args)


def plan(
    device: str,
    work: Path,
    *,
    profile: str = "ci",
    fault_examples: int | None = None,
    bench_max_time: float | None = None,
) -> list[list[Stage]]:
    """The stage groups of the run on ``device``: each group's stages run side by side, the groups
    one after the other. Outputs go under ``work``. ``profile``, ``fault_examples`` and
    ``bench_max_time`` (seconds per benchmark) shrink the run for a rehearsal."""
    checks = []
    for mode in modes_of(device):
        out = work / f"properties-{mode}"
        checks.append(
            Stage(
                f"properties-{mode}",
                _python(
                    *("-m", "pytest", "properties", "--devices", device, "--modes", mode),
                    *("--hypothesis-profile", profile, "-p", "no:cacheprovider", "-q", "-rfE"),
                    *(
                        "--report-dir",
                        str(out),
                        "--junitxml",
                        str(out / "junit.xml"),
                        "--capture-dir",
                        str(out / "cases"),
                    ),
                    # timings come from the benchmarks, which run alone; here they would time 5 processes at once
                    *("--timing", "off"),
                ),
                outputs=(out / "report.json", out / "junit.xml"),
                what=f"every property, the cross-device relation and the regression corpus on {device} in mode {mode}",
            )
        )
    faults = work / "faults"
    examples = () if fault_examples is None else ("--max-examples", str(fault_examples))
    checks.append(
        Stage(
            "faults",
            _python(
                # the eager faults: a compiled lane's fault compiles for minutes (tox -e compile has them)
                *("-m", "linconv", "faults", "--device", device, "--lane", "eager", *examples),
                *("--json", str(faults / "faults.json"), "--markdown", str(faults / "faults.md")),
            ),
            outputs=(faults / "faults.json",),
            what=f"the fault benchmark on {device} (the flags torch ships)",
        )
    )
    bench = work / "benchmarks"
    benchmarks = Stage(
        "benchmarks",
        _python(
            *("-m", "pytest", "benchmarks/bench_formulations.py", "--benchmark-only", "--devices", device),
            *("--benchmark-json", str(bench / "benchmarks.json"), "-p", "no:cacheprovider", "-q"),
        ),
        outputs=(bench / "benchmarks.json",),
        what=f"conv vs Linear timings on {device} (benchmarks/bench_formulations.py, the flags torch ships)",
        # a shrunk run times each benchmark once after one warm-up call (LINCONV_BENCH_ROUNDS)
        env=()
        if bench_max_time is None
        else (("LINCONV_BENCH_MAX_TIME", str(bench_max_time)), ("LINCONV_BENCH_ROUNDS", "1")),
    )
    return [checks, [benchmarks]]


def _environment(root: Path, threads: int) -> dict[str, str]:
    # each stage is a session of its own: an inherited PYTEST_XDIST_WORKER (this command run from a
    # pytest-xdist worker) would make pytest-benchmark switch itself off
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT_TEST"))}
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONHASHSEED"] = "0"
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def _stop(process: subprocess.Popen) -> None:
    """Stop a stage and everything it started (its own process group): TERM, then KILL."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_group(stages: Sequence[Stage], *, root: Path, logs: Path, timeout_s: float, cores: int) -> list[StageResult]:
    """Run ``stages`` side by side from ``root``, each with ``cores // len(stages)`` intra-op
    threads, and stop any still running after ``timeout_s``."""
    logs.mkdir(parents=True, exist_ok=True)
    env = _environment(root, max(1, cores // max(1, len(stages))))
    started = time.perf_counter()
    running = []
    for stage in stages:
        for output in stage.outputs:
            output.parent.mkdir(parents=True, exist_ok=True)
        log = logs / f"{stage.name}.log"
        with open(log, "w", encoding="utf-8") as handle:
            handle.write(" ".join(stage.argv) + "\n\n")
            handle.flush()
            process = subprocess.Popen(
                stage.argv,
                cwd=root,
                env={**env, **dict(stage.env)},
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        running.append((stage, process, log))
    finished: dict[int, tuple[int | None, float]] = {}  # index -> (exit code, seconds)
    while len(finished) < len(running):
        elapsed = time.perf_counter() - started
        for i, (_, process, _) in enumerate(running):
            if i in finished:
                continue
            if process.poll() is not None:
                finished[i] = (process.returncode, elapsed)
            elif elapsed > timeout_s:
                _stop(process)
                finished[i] = (None, elapsed)
        time.sleep(_POLL_S)
    results = []
    for i, (stage, _, log) in enumerate(running):
        code, seconds = finished[i]
        results.append(StageResult(stage, code, seconds, log, [o for o in stage.outputs if not o.is_file()]))
    return results
