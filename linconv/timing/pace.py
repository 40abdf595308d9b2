"""The pace of the machine: how long a fixed, torch-free workload takes right now.

Timings of two runs (a baseline and a candidate torch) are taken minutes apart, and on a shared
machine the speed a process gets changes between them: another job starts, the CPU's clock
changes. The kernels do not know that. So every timed example (and every benchmark) also times
this pacer, a pure-Python loop on one thread that no torch release changes, and the gate compares
times in pacer units: a burst of load that slows the kernels slows the pacer timed beside them
too, and cancels out (docs/gating.md, "The timing rule", has the measurement).
"""

from __future__ import annotations

__all__ = ["PACER_STEPS", "pacer"]

# About 50 µs on a 2026 x86 core: long enough to time in a few blocks, short enough to time on
# every example without changing the run time.
PACER_STEPS = 1500


def pacer() -> int:
    """The fixed workload: integer arithmetic in a Python loop (no allocation, no torch)."""
    total = 0
    for i in range(PACER_STEPS):
        total = (total + i * i) % 1_000_003
    return total
