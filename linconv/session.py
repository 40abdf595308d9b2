"""What one run has seen, per relation, device and dtype: examples, violations, worst ratio.

The property helpers record every checked example here; the run report and the terminal
summary read it. ``observer`` is where per-formulation timing plugs into the check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linconv.check import Observer, RelationResult

__all__ = ["SESSION", "RelationTally", "Session"]


@dataclass
class RelationTally:
    examples: int = 0
    violations: int = 0
    exact: int = 0
    worst_ratio: float = 0.0

    def add(self, result: RelationResult, *, expect_violation: bool) -> None:
        self.examples += 1
        failed = bool(result.violations) != expect_violation
        self.violations += int(failed)
        self.exact += int(result.exact)
        if not expect_violation:
            self.worst_ratio = max(self.worst_ratio, result.worst_ratio)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "examples": self.examples,
            "violations": self.violations,
            "exact": self.exact,
            "worst_ratio": self.worst_ratio,
        }


@dataclass
class Session:
    tallies: dict[tuple[str, str, str], RelationTally] = field(default_factory=dict)
    observer: Observer | None = None

    def record_result(self, result: RelationResult, *, expect_violation: bool = False) -> None:
        key = (result.relation, result.case.device, result.case.dtype)
        self.tallies.setdefault(key, RelationTally()).add(result, expect_violation=expect_violation)


SESSION = Session()
