"""What one run has seen, per relation, device, precision mode, execution lane and dtype: examples,
violations, worst ratio, compile cost; and which relations it checks (the registry's, or one with
an injected fault, in the running test's execution lane).

The property helpers record every checked example here; the run report and the terminal summary
read it. The precision mode and the execution lane are the running test's (``mode`` and
``execution``, set by the ``precision_mode`` and ``execution`` fixtures of
linconv.plugins.options), so the four CUDA modes keep four tallies and a compiled lane never
pools with the eager one. ``observer`` is
where per-formulation timing plugs into the check. A fault injected for the whole run
(``pytest --inject-fault``) is an override held here: the registry itself is never changed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from linconv.known_bugs import matching_bug
from linconv.measure import Observer, RelationResult
from linconv.relations import Relation, get, in_lane

__all__ = ["SESSION", "RelationTally", "Session"]


@dataclass
class RelationTally:
    examples: int = 0
    violations: int = 0
    exact: int = 0
    worst_ratio: float = 0.0
    # violations on inputs of a known bug's signature (the bug reappearing where its reproducer is quiet)
    known_bug_violations: dict[str, int] = field(default_factory=dict)
    # compiled execution lanes: what compiling cost (linconv.lanes.execution.CompileStats, summed)
    compile: dict[str, float] = field(default_factory=dict)

    def add(self, result: RelationResult, *, holds: bool, negative_control: bool) -> None:
        self.examples += 1
        for name, value in result.compile.items():
            self.compile[name] = self.compile.get(name, 0) + value
        self.violations += int(not holds)
        self.exact += int(result.exact)
        if not negative_control:
            self.worst_ratio = max(self.worst_ratio, result.worst_ratio)
        bug = None if holds else matching_bug(result.case, result.execution, result.relation)
        if bug is not None:
            self.known_bug_violations[bug.name] = self.known_bug_violations.get(bug.name, 0) + 1

    def to_dict(self) -> dict[str, object]:
        return {
            "examples": self.examples,
            "violations": self.violations,
            "exact": self.exact,
            "worst_ratio": self.worst_ratio,
            "known_bug_violations": dict(self.known_bug_violations),
            **({"compile": dict(self.compile)} if self.compile else {}),
        }


@dataclass
class Session:
    # (relation, device, precision mode, execution lane, dtype) -> tally
    tallies: dict[tuple[str, str, str, str, str], RelationTally] = field(default_factory=dict)
    observer: Observer | None = None
    overrides: dict[str, Relation] = field(default_factory=dict)  # relation name -> the one this run checks
    mode: str = "default"  # the precision mode (linconv.lanes.modes) of the test running now
    execution: str = "eager"  # the execution lane (linconv.lanes.execution) of the test running now
    # lane -> its configuration as it was in force (linconv.lanes.execution.read_config), for the report
    execution_configs: dict[str, dict] = field(default_factory=dict)
    _compiled: dict[str, Relation] = field(default_factory=dict)  # this lane's compiled relations
    # (relation, device, precision mode, execution lane, dtype, reason) -> drawn cases rejected before
    # being checked (a known bug's inputs, a dtype the device lacks): not examples, but what they cost
    rejected: Counter[tuple[str, str, str, str, str, str]] = field(default_factory=Counter)

    def record_rejections(self, relation: str, where: Counter[tuple[str, str, str]]) -> None:
        """The running test's rejected cases (linconv.search.placement's ``where``: (device, dtype,
        reason) -> count), in its precision mode and execution lane."""
        for (device, dtype, reason), count in where.items():
            self.rejected[(relation, device, self.mode, self.execution, dtype, reason)] += count

    def relation(self, name: str) -> Relation:
        """The relation this run checks under ``name``: an override (an injected fault), else the
        registry's; compiled as the running test's execution lane says."""
        base = self.overrides.get(name) or get(name)
        if self.execution == "eager":
            return base
        if name not in self._compiled:
            self._compiled[name] = in_lane(base, self.execution)
        return self._compiled[name]

    def enter_lane(self, execution: str, config: dict) -> None:
        """The running test's execution lane (the ``execution`` fixture, inside the lane's context)."""
        self.execution = execution
        self._compiled.clear()
        if config:
            self.execution_configs[execution] = config

    def leave_lane(self) -> None:
        self.execution = "eager"
        self._compiled.clear()

    def record(self, relation: Relation, result: RelationResult) -> None:
        """Count one checked example; a negative control counts as violated when it did not fire."""
        key = (result.relation, result.case.device, self.mode, result.execution, result.case.dtype)
        self.tallies.setdefault(key, RelationTally()).add(
            result, holds=relation.holds(result), negative_control=relation.negative_control is not None
        )


SESSION = Session()
