"""What one run has seen, per relation, device, precision mode and dtype: examples, violations,
worst ratio; and which relations it checks (the registry's, or one with an injected fault).

The property helpers record every checked example here; the run report and the terminal summary
read it. The precision mode is the running test's (``mode``, set by the ``precision_mode``
fixture of linconv.plugins.options), so the four CUDA modes keep four tallies. ``observer`` is
where per-formulation timing plugs into the check. A fault injected for the whole run
(``pytest --inject-fault``) is an override held here: the registry itself is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linconv.known_bugs import matching_bug
from linconv.measure import Observer, RelationResult
from linconv.relations import Relation, get

__all__ = ["SESSION", "RelationTally", "Session"]


@dataclass
class RelationTally:
    examples: int = 0
    violations: int = 0
    exact: int = 0
    worst_ratio: float = 0.0
    # violations on inputs of a known bug's signature (the bug reappearing where its reproducer is quiet)
    known_bug_violations: dict[str, int] = field(default_factory=dict)

    def add(self, result: RelationResult, *, holds: bool, negative_control: bool) -> None:
        self.examples += 1
        self.violations += int(not holds)
        self.exact += int(result.exact)
        if not negative_control:
            self.worst_ratio = max(self.worst_ratio, result.worst_ratio)
        bug = None if holds else matching_bug(result.case)
        if bug is not None:
            self.known_bug_violations[bug.name] = self.known_bug_violations.get(bug.name, 0) + 1

    def to_dict(self) -> dict[str, object]:
        return {
            "examples": self.examples,
            "violations": self.violations,
            "exact": self.exact,
            "worst_ratio": self.worst_ratio,
            "known_bug_violations": dict(self.known_bug_violations),
        }


@dataclass
class Session:
    # (relation, device, precision mode, dtype) -> tally
    tallies: dict[tuple[str, str, str, str], RelationTally] = field(default_factory=dict)
    observer: Observer | None = None
    overrides: dict[str, Relation] = field(default_factory=dict)  # relation name -> the one this run checks
    mode: str = "default"  # the precision mode (linconv.lanes.modes) of the test running now

    def relation(self, name: str) -> Relation:
        """The relation this run checks under ``name``: an override (an injected fault), else the registry's."""
        return self.overrides.get(name) or get(name)

    def record(self, relation: Relation, result: RelationResult) -> None:
        """Count one checked example; a negative control counts as violated when it did not fire."""
        key = (result.relation, result.case.device, self.mode, result.case.dtype)
        self.tallies.setdefault(key, RelationTally()).add(
            result, holds=relation.holds(result), negative_control=relation.negative_control is not None
        )


SESSION = Session()
