"""Known upstream bugs: inputs that crash the process or that torch computes wrongly, each with a
reproducer, the signature of the inputs it affects, and where it was seen.

Imports :mod:`linconv.core` only; the properties, calibration and the fault search avoid the
signatures through :func:`linconv.search.placement.on_device`.
"""

from linconv.known_bugs.catalogue import KNOWN_BUGS, KnownBug, avoided_bug, cpu_flags, known_crash, run_reproducer

__all__ = ["KNOWN_BUGS", "KnownBug", "avoided_bug", "cpu_flags", "known_crash", "run_reproducer"]
