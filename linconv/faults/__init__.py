"""Faults: deliberately broken formulations (and benign perturbations) that show the suite
catches real bugs and stays quiet on legitimate rounding changes.

- :mod:`~linconv.faults.record`: the Fault record, the :func:`fault` decorator, the bug classes;
- :mod:`~linconv.faults.catalogue`: the faults, one module per bug class;
- :mod:`~linconv.faults.search`: the fault benchmark, each fault against its relation's property search.

Imports :mod:`linconv.relations`, :mod:`linconv.search` and below.
"""

from linconv.faults.record import BUG_CLASSES, Fault, all_faults, fault, get_fault

__all__ = ["BUG_CLASSES", "Fault", "all_faults", "fault", "get_fault"]
