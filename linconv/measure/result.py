"""What one relation gave on one case: every comparison, and a message that reads as a bug report."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from linconv.core.cases import Case
from linconv.measure.compare import Comparison

__all__ = ["RelationResult", "RelationViolation", "flags_in_force"]


def flags_in_force() -> str:
    from linconv.lanes.flags import read_flags

    return read_flags().describe()


@dataclass(frozen=True)
class RelationResult:
    relation: str
    case: Case
    comparisons: tuple[Comparison, ...]
    flags: str = ""
    torch_version: str = field(default_factory=lambda: torch.__version__)
    # formulation -> (forward output, its bound), float64 on the CPU; only with keep_outputs=True
    outputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False, compare=False)
    # the execution lane (linconv.lanes.execution) and, for a compiled one, the configuration in
    # force (torch.compile options, inductor and dynamo settings) and what compiling cost
    execution: str = "eager"
    execution_config: str = ""
    compile: dict[str, float] = field(default_factory=dict, compare=False)
    notes: tuple[str, ...] = ()  # sentences the message adds after the violations

    @property
    def violations(self) -> tuple[Comparison, ...]:
        return tuple(c for c in self.comparisons if not c.ok)

    @property
    def worst_ratio(self) -> float:
        """Largest error / bound over all non-exact comparisons (0 when there are none)."""
        ratios = [c.ratio for c in self.comparisons if not c.exact and not c.problem]
        return max(ratios, default=0.0)

    @property
    def exact(self) -> bool:
        return all(c.exact for c in self.comparisons)

    def message(self) -> str:
        lines = [f"relation '{self.relation}' violated: {len(self.violations)} comparison(s) out of bound"]
        lines += [f"  - {c.describe()}" for c in self.violations]
        lines += [f"  {note}" for note in self.notes]
        lines += [
            f"case: {self.case.to_json()}",
            f"torch {self.torch_version}; device {self.case.device}; dtype {self.case.dtype}; flags: {self.flags}",
        ]
        if self.execution != "eager":
            lines.append(f"execution: {self.execution_config or self.execution}")
        lines += [
            "reproduce:",
            *("    " + line for line in self.case.reproduction(self.relation, self.execution).splitlines()),
        ]
        return "\n".join(lines)


class RelationViolation(AssertionError):
    def __init__(self, result: RelationResult) -> None:
        super().__init__(result.message())
        self.result = result
