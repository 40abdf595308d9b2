"""Stress check: N processes run ``python -m linconv regressions add`` of one case at once, each
with its own sighting; every sighting must survive. docs/robustness.md reports its numbers.

    python tests/stress/concurrent_adds.py                      # 20 processes, 10 repetitions
    python tests/stress/concurrent_adds.py --code ../old-tree   # the same against another checkout

By default each process imports linconv and builds the command-line parser, waits until every
process has (a barrier: a file that appears), then does what ``linconv.__main__.main`` does with
``["regressions", "add", FILE, "--dir", DIR]``, the code path of ``python -m linconv regressions
add``: importing torch and linconv takes seconds and on a machine
with fewer cores than processes it spreads the adds out so far that they seldom overlap, while on
a machine with a core each they overlap as here. ``--plain`` starts the command as is instead.

Exit status 1 when a repetition lost a sighting or a process failed. Not collected by pytest
(a minute or more: every process imports torch); tests/test_robust_corpus.py has the fast check.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pending(directory: Path, processes: int, code: Path) -> list[Path]:
    """One pending file per process: the same case, a different sighting in each."""
    script = (
        "import sys\nfrom pathlib import Path\nfrom linconv import corpus\nfrom linconv.core.cases import Case\n"
        "from linconv.core.geometry import ConvGeometry\n"
        "case = Case(ConvGeometry(1, 2, 3, (2, 2)), seed=7)\n"
        "for i in range(int(sys.argv[2])):\n"
        "    r = corpus.Regression('pointwise', case, found=({'sighting': i},))\n"
        "    Path(sys.argv[1], f'pending-{i}.json').write_text(r.to_json())\n"
    )
    command = [sys.executable, "-c", script, str(directory), str(processes)]
    subprocess.run(command, check=True, env=_env(code), cwd=directory)
    return [directory / f"pending-{i}.json" for i in range(processes)]


def _env(code: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}


# Imports linconv (torch included), says so (argv[1]/ready-<pid>), waits for argv[2], then adds.
_ALIGNED = """
import os, sys, time
from pathlib import Path
import linconv.relations
from linconv.__main__ import build_parser
linconv.relations.names()  # the registry, which reading a case file loads
parser = build_parser()  # every command module: what main() imports first
Path(sys.argv[1], f"ready-{os.getpid()}").touch()
while not Path(sys.argv[2]).exists():
    time.sleep(0.005)
args = parser.parse_args(["regressions", "add", *sys.argv[3:]])  # the rest of linconv.__main__.main
sys.exit(int(args.func(args) or 0))
"""


def repetition(processes: int, code: Path, *, plain: bool) -> tuple[int, list[int], float]:
    """Sightings kept, exit statuses, seconds from the start of the adds."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pending = _pending(work, processes, code)
        corpus_dir, go = work / "corpus", work / "go"
        started = time.perf_counter()
        procs = []
        for path in pending:
            add = [str(path), "--dir", str(corpus_dir)]
            command = ["-m", "linconv", "regressions", "add", *add] if plain else ["-c", _ALIGNED, str(work), str(go)]
            procs.append(
                subprocess.Popen(
                    [sys.executable, *command, *([] if plain else add)],
                    env=_env(code),
                    cwd=work,  # not a checkout: `-c` and `-m` put the working directory first on sys.path
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
        if not plain:
            while len(list(work.glob("ready-*"))) < processes:
                time.sleep(0.01)
            started = time.perf_counter()
            go.touch()
        statuses = [proc.wait() for proc in procs]
        seconds = time.perf_counter() - started
        files = list(corpus_dir.glob("*.json"))
        kept = len(json.loads(files[0].read_text())["found"]) if len(files) == 1 else -len(files)
        return kept, statuses, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--code", type=Path, default=ROOT, help="the linconv checkout to run (default: this one)")
    parser.add_argument("--plain", action="store_true", help="start `python -m linconv regressions add` unaligned")
    args = parser.parse_args()
    bad = 0
    for i in range(1, args.repeat + 1):
        kept, statuses, seconds = repetition(args.processes, args.code.resolve(), plain=args.plain)
        failed = sum(status != 0 for status in statuses)
        ok = kept == args.processes and not failed
        bad += not ok
        print(
            f"repetition {i}: {kept} of {args.processes} sightings kept, {failed} process(es) failed, "
            f"{seconds:.1f} s {'ok' if ok else 'LOST'}",
            flush=True,
        )
    print(f"{args.repeat - bad} of {args.repeat} repetitions kept every sighting")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
