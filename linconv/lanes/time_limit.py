"""A limit on the wall time of one example in a compiled execution lane.

Inductor can take unbounded time on one graph: the compile of a 3-D transposed conv's converter with
symbolic ints ran for more than 15 minutes on torch 2.13.0, 10 on 2.14.1 (stopped), in inductor's
sympy simplification (known bug inductor-symbolic-output-positions-compile-hang, docs/compile.md).
Without a limit, such a compile hangs the whole run (a CI job runs into its own timeout and says
nothing of the case); with it, the one example fails with its case and the configuration in force,
and the run goes on.

The limit is a watchdog on the main thread's real-time timer (``SIGALRM``): when it expires, the
handler raises :class:`ExampleTimeLimitExceeded` at the next Python bytecode the main thread runs
(inductor's and sympy's Python code included; a hang inside one C++ call, or in a thread of its
own, is not interrupted). It is a ``BaseException``: dynamo and inductor wrap every ``Exception``
raised inside a compile (``InductorError``, ``BackendCompilerFailed``), and Hypothesis would shrink
an ``Exception``, replaying compiles that may not end either; this one passes through both, so the
test fails at once on the case that ran too long. Where no such timer can be set (no ``SIGALRM``:
Windows; not the main thread; a ``SIGALRM`` handler installed from C; an outer timer due first,
which then fires itself) the example runs without this limit, and :func:`limit_unavailable` says
why where it can be known beforehand (the run's header prints it).

The limit is :data:`EXAMPLE_TIME_LIMIT` seconds unless LINCONV_COMPILE_TIME_LIMIT says otherwise
(0: none); pytest's ``--compile-time-limit`` sets it for a run (:func:`set_example_time_limit`).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = [
    "ENV",
    "EXAMPLE_TIME_LIMIT",
    "ExampleTimeLimitExceeded",
    "current_limit",
    "example_time_limit",
    "limit_unavailable",
    "set_example_time_limit",
]

# Seconds one example may take in a compiled lane: its compiles (forward and backward, every
# formulation) and its runs. Measured (docs/compile.md "CI": cold cache, 2 cores, torch 2.13.0): the
# slowest test of the `compiled` lane took 167 s for its three examples (an explicit one and two
# drawn), most tests under 40 s; 600 s leaves 3.6 times the slowest test for a slower or loaded
# machine, and costs one 10-minute stall where a compile does not end (inside a 45-minute CI job
# whose lane takes about 25 minutes cold).
EXAMPLE_TIME_LIMIT = 600.0

ENV = "LINCONV_COMPILE_TIME_LIMIT"

_limit: list[float] = []  # the run's limit once read or set


class ExampleTimeLimitExceeded(BaseException):
    """One example of a compiled lane ran longer than the limit (see the module's docstring for
    why this is not an ``Exception``)."""


def _checked(seconds: float, source: str) -> float:
    if not (seconds >= 0 and seconds != float("inf")):
        raise ValueError(f"{source} must be seconds >= 0 (0: no limit), got {seconds!r}")
    return float(seconds)


def set_example_time_limit(seconds: float) -> None:
    """The limit for the examples that follow (0: none). ValueError on a negative or non-finite one."""
    _limit[:] = [_checked(seconds, "the time limit of one compiled example")]


def current_limit() -> float:
    """The run's limit, in seconds (0: none): as set, else LINCONV_COMPILE_TIME_LIMIT, else
    :data:`EXAMPLE_TIME_LIMIT`. ValueError naming the variable when it is not seconds >= 0."""
    if not _limit:
        given = os.environ.get(ENV)
        seconds = EXAMPLE_TIME_LIMIT
        if given is not None:
            try:
                seconds = _checked(float(given), ENV)
            except ValueError:
                raise ValueError(f"{ENV} must be seconds >= 0 (0: no limit), got {given!r}") from None
        _limit[:] = [seconds]
    return _limit[0]


def limit_unavailable() -> str:
    """Why no limit can be set here ("" when it can)."""
    if not hasattr(signal, "SIGALRM") or not hasattr(signal, "setitimer"):
        return "this platform has no SIGALRM real-time timer"
    if threading.current_thread() is not threading.main_thread():
        return "signals reach the main thread only, and this example runs in another"
    if signal.getsignal(signal.SIGALRM) is None:
        return "a SIGALRM handler installed outside Python would be lost"
    return ""


@contextmanager
def example_time_limit(describe: Callable[[float], str], seconds: float | None = None) -> Iterator[None]:
    """Run the block under the limit (``seconds``, default the run's): past it, raise
    :class:`ExampleTimeLimitExceeded` with ``describe(elapsed)`` as its message. A timer already
    running (an outer limit, pytest-timeout's) keeps its handler and fires first when it is due
    first; otherwise it is restored afterwards (its interval too) with what was left of it."""
    seconds = current_limit() if seconds is None else seconds
    outer, interval = signal.getitimer(signal.ITIMER_REAL) if hasattr(signal, "getitimer") else (0.0, 0.0)
    if seconds <= 0 or limit_unavailable() or 0 < outer <= seconds:
        yield
        return
    started = time.monotonic()
    armed = [True]

    def expire(signum: int, frame: object) -> None:
        if armed[0]:  # a late signal, once the block has ended, does nothing
            armed[0] = False
            raise ExampleTimeLimitExceeded(describe(time.monotonic() - started))

    previous_handler = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        try:
            armed[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            signal.signal(signal.SIGALRM, previous_handler)
            if outer > 0:  # what was left of it; at once if it ran out meanwhile
                signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 1e-3), interval)
