"""Capture: turn the exception a failing property raised into a regression case.

The property helpers (properties.support) call :func:`remember` as an exception leaves them: it
pins the relation, the case and the precision flags in force to the exception object. Hypothesis
raises, at the end, the exception of its final replay of the shrunk example (or a group of them,
one per distinct failure), so reading what is pinned to *that* exception gives exactly the shrunk
case, however many failures shrinking went through. A :class:`~linconv.measure.RelationViolation`
raised elsewhere carries its result and is read the same way.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import hypothesis
import torch

from linconv.core.cases import Case
from linconv.core.fileio import json_number
from linconv.corpus.store import Regression
from linconv.measure import RelationResult, RelationViolation

__all__ = ["Failure", "failures_in", "remember"]

_ATTRIBUTE = "_linconv_failure"


@dataclass(frozen=True)
class Failure:
    """A failed check: relation, case (on its device), flags in force, and the result if one was measured."""

    relation: str
    case: Case
    flags: dict[str, Any]
    result: RelationResult | None = None
    error: str = ""

    def regression(self, *, test: str = "", precision_mode: str = "") -> Regression:
        """A pending regression case: the case plus one sighting (where, when, under what, how far off)."""
        sighting: dict[str, Any] = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "test": test,
            "device": self.case.device,
            "dtype": self.case.dtype,
            "precision_mode": precision_mode,
            "flags": self.flags,
            "torch": torch.__version__,
            "hypothesis": hypothesis.__version__,
            "python": platform.python_version(),
            "error": self.error,
            "violations": [_violation(c) for c in self.result.violations] if self.result else [],
        }
        if self.result is not None and self.result.execution != "eager":
            # a compiled execution lane's find: the lane and its configuration in force (the corpus
            # replays cases eagerly; this says where to reproduce it, docs/compile.md)
            sighting["execution"] = self.result.execution
            sighting["execution_config"] = self.result.execution_config
        return Regression(self.relation, self.case, found=(sighting,))


def _violation(c) -> dict[str, Any]:
    return {
        "formulation": c.formulation,
        "tensor": c.tensor,
        "lane": "exact" if c.exact else "error model",
        "index": list(c.index),
        "value": json_number(c.value),
        "reference": json_number(c.reference),
        "error": json_number(c.error),
        "bound": json_number(c.bound),
        "ratio": json_number(c.ratio),
        "problem": c.problem,
    }


def _flags() -> dict[str, Any]:
    from linconv.lanes.flags import read_flags

    return read_flags().to_dict()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def remember(exc: BaseException, relation: str, case: Case, result: RelationResult | None = None) -> None:
    """Pin the failed check to ``exc`` (called as ``exc`` leaves the property helper)."""
    if result is None and isinstance(exc, RelationViolation):
        result = exc.result
    setattr(exc, _ATTRIBUTE, Failure(relation, case, _flags(), result, _first_line(exc)))


def failures_in(exc: BaseException) -> list[Failure]:
    """The failed checks behind ``exc``: its own, or those of the exceptions it groups."""
    failure = getattr(exc, _ATTRIBUTE, None)
    if failure is not None:
        return [failure]
    if isinstance(exc, RelationViolation):
        result = exc.result
        return [Failure(result.relation, result.case, _flags(), result, _first_line(exc))]
    found: list[Failure] = []
    for inner in getattr(exc, "exceptions", ()):  # ExceptionGroup: several distinct failures
        found += failures_in(inner)
    return found
