"""Is a known bug present here? Its reproducer answers, in a subprocess, once per torch build and CPU.

The answers are cached in memory and on disk (``$LINCONV_CACHE_DIR``, else
``$XDG_CACHE_HOME/linconv``, else ``~/.cache/linconv``), in a file named by a digest of what
decides them: the torch build (version and git revision), the CPU (model, torch's CPU capability,
the feature flags), whether oneDNN is on, and each reproducer's source. A pytest run asks before
its workers start, so xdist workers and later runs read the file; a file lock keeps two processes
from running the reproducers at once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from linconv.core.fileio import file_lock, write_text_atomic
from linconv.known_bugs.catalogue import KNOWN_BUGS, KnownBug, cpu_flags

__all__ = ["Reproduction", "build_fingerprint", "cache_file", "reproductions", "run_reproducer"]

# A reproducer that takes longer than this counts as reproducing: heap corruption can deadlock the
# allocator instead of aborting (seen once for oneDNN#6035 under a loaded xdist run, where the whole
# program takes under 5 s).
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Reproduction:
    """What a known bug's reproducer did here."""

    bug: str
    reproduced: bool
    returncode: int
    seconds: float
    output: str  # the last lines it printed

    def to_dict(self) -> dict:
        return asdict(self)


def run_reproducer(bug: KnownBug, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run the reproducer in a fresh interpreter; the bug shows as a non-zero return code, and a
    reproducer that hangs past ``timeout`` counts as failing (return code -9)."""
    env = {**os.environ, **dict(bug.env)}
    command = [sys.executable, "-c", bug.reproducer]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, -9, "", f"hung: no exit within {timeout:.0f} s")


def build_fingerprint() -> dict[str, object]:
    """What decides whether a reproducer fails: the torch build and the CPU."""
    return {
        "torch": torch.__version__,
        "git": getattr(torch.version, "git_version", ""),
        "python": sys.executable,
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_flags": sorted(cpu_flags()),
        "mkldnn": bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
        "reproducers": {bug.name: hashlib.sha256(bug.reproducer.encode()).hexdigest()[:12] for bug in KNOWN_BUGS},
    }


def _cache_dir() -> Path:
    chosen = os.environ.get("LINCONV_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    base = Path(chosen) if chosen else Path.home() / ".cache"
    return base if os.environ.get("LINCONV_CACHE_DIR") else base / "linconv"


def cache_file() -> Path:
    digest = hashlib.sha256(json.dumps(build_fingerprint(), sort_keys=True).encode()).hexdigest()[:16]
    return _cache_dir() / f"known-bugs-{digest}.json"


def _run(bug: KnownBug) -> Reproduction:
    started = time.perf_counter()
    result = run_reproducer(bug)
    output = (result.stdout + result.stderr).strip().splitlines()[-3:]
    return Reproduction(bug.name, result.returncode != 0, result.returncode, time.perf_counter() - started,
                        "\n".join(output))  # fmt: skip


def _run_all() -> dict[str, Reproduction]:
    """Every reproducer, side by side: each is a fresh interpreter that mostly waits for torch to import."""
    with ThreadPoolExecutor(max_workers=len(KNOWN_BUGS)) as pool:
        return {r.bug: r for r in pool.map(_run, KNOWN_BUGS)}


def _read(path: Path) -> dict[str, Reproduction] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        found = {name: Reproduction(**entry) for name, entry in data["reproductions"].items()}
    except (OSError, ValueError, TypeError, KeyError, RecursionError):
        return None  # no cache, or one this linconv cannot use: run the reproducers again
    return found if set(found) == {bug.name for bug in KNOWN_BUGS} else None


@functools.cache
def reproductions() -> dict[str, Reproduction]:
    """Every known bug's reproduction here, by name (run once per build and CPU, then cached)."""
    path = cache_file()
    cached = _read(path)
    if cached is not None:
        return cached
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(path.with_suffix(".lock")):
            cached = _read(path)  # another process may have run them while this one waited
            if cached is not None:
                return cached
            found = _run_all()
            payload = {"fingerprint": build_fingerprint(), "reproductions": {n: r.to_dict() for n, r in found.items()}}
            write_text_atomic(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")
            return found
    except OSError:  # an unwritable cache directory: answer without caching
        return _run_all()
