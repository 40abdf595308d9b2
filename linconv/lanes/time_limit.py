"""A limit on the wall time of one example in a compiled execution lane.

Inductor can take unbounded time on one graph: torch 2.13.0 spent more than 15 minutes (stopped
there) in its sympy simplification of an empty batch of a grouped 3-D transposed conv, compiled with
dynamic sizes (docs/compile.md, "Found by the compiled lanes"). Without a limit, such a compile hangs
the whole run (a CI job runs into its own timeout and says nothing of the case); with it, the one
example fails with its case and the configuration in force, and the run goes on.

The limit is a watchdog on the main thread's real-time timer (``SIGALRM``): when it expires, the
handler raises :class:`ExampleTimeLimitExceeded` wherever the example is, inductor's Python code
included. It is a ``BaseException``: dynamo and inductor wrap every ``Exception`` raised inside a
compile (``InductorError``, ``BackendCompilerFailed``), and Hypothesis would shrink an ``Exception``,
replaying compiles that may not end either; this one passes through both, so the test fails at once
on the case that ran too long. Where no such timer exists (not the main thread, no ``SIGALRM``:
Windows) the example runs unlimited, and :func:`limit_unavailable` says why.

The limit is :data:`EXAMPLE_TIME_LIMIT` seconds (``--compile-time-limit``, env
LINCONV_COMPILE_TIME_LIMIT; 0: none), set for a run with :func:`set_example_time_limit`.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = [
    "EXAMPLE_TIME_LIMIT",
    "ExampleTimeLimitExceeded",
    "current_limit",
    "example_time_limit",
    "limit_unavailable",
    "set_example_time_limit",
]

# Seconds one example may take in a compiled lane: its compiles (forward and backward, every
# formulation) and its runs. The slowest example measured in the five lanes (cold cache, 2 cores)
# is in docs/compile.md; this leaves several times that.
EXAMPLE_TIME_LIMIT = 300.0

_limit = [EXAMPLE_TIME_LIMIT]


class ExampleTimeLimitExceeded(BaseException):
    """One example of a compiled lane ran longer than the limit (see the module's docstring for
    why this is not an ``Exception``)."""


def set_example_time_limit(seconds: float) -> None:
    """The limit for the examples that follow (0: none). ValueError on a negative or non-finite one."""
    if not (seconds >= 0 and seconds != float("inf")):
        raise ValueError(f"the time limit of one compiled example must be seconds >= 0 (0: none), got {seconds!r}")
    _limit[0] = float(seconds)


def current_limit() -> float:
    """The run's limit, in seconds (0: none)."""
    return _limit[0]


def limit_unavailable() -> str:
    """Why no limit can be set here ("" when it can)."""
    if not hasattr(signal, "SIGALRM") or not hasattr(signal, "setitimer"):
        return "this platform has no SIGALRM real-time timer"
    if threading.current_thread() is not threading.main_thread():
        return "signals reach the main thread only, and this example runs in another"
    return ""


@contextmanager
def example_time_limit(describe: Callable[[float], str], seconds: float | None = None) -> Iterator[None]:
    """Run the block under the limit (``seconds``, default the run's): past it, raise
    :class:`ExampleTimeLimitExceeded` with ``describe(elapsed)`` as its message. A timer already
    running (an outer limit, pytest-timeout's) is restored afterwards with what was left of it."""
    seconds = current_limit() if seconds is None else seconds
    if seconds <= 0 or limit_unavailable():
        yield
        return
    started = time.monotonic()

    def expire(signum: int, frame: object) -> None:
        raise ExampleTimeLimitExceeded(describe(time.monotonic() - started))

    previous_handler = signal.signal(signal.SIGALRM, expire)
    previous_timer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_timer > 0:  # what was left of it; at once if it ran out meanwhile
            left = previous_timer - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))
