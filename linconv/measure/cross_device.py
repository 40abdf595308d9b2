"""Cross-device agreement: the same case on the CPU and on another device, formulation by
formulation, within the sum of both devices' bounds (both are bounded against the same
float64 reference, so the triangle inequality makes this the honest tolerance)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from linconv.core.cases import Case
from linconv.measure.result import RelationResult

__all__ = ["cross_device_disagreements"]


def cross_device_disagreements(
    run: Callable[[Case], RelationResult], case: Case, *, baseline: str = "cpu"
) -> list[str]:
    """Sentences describing each formulation whose outputs on ``case.device`` and on ``baseline``
    differ by more than both bounds; empty when they agree. ``run`` measures a case keeping its
    outputs (``relation.run(case, keep_outputs=True)``)."""
    here = run(case.on(baseline))
    there = run(case)
    relation = here.relation
    problems = []
    for name, (a, bound_a) in here.outputs.items():
        if name not in there.outputs:
            problems.append(f"{relation}/{name}: no comparable output on {case.device}")
            continue
        b, bound_b = there.outputs[name]
        excess = (a - b).abs() - (bound_a + bound_b)
        excess = torch.nan_to_num(excess, nan=float("inf"), posinf=float("inf"))
        worst = int(torch.argmax(excess))
        if float(excess.flatten()[worst]) > 0:
            problems.append(
                f"{relation}/{name}: {baseline} {float(a.flatten()[worst])!r} vs {case.device} "
                f"{float(b.flatten()[worst])!r} at flat index {worst} differ by more than both bounds "
                f"({float(bound_a.flatten()[worst]):.3e} + {float(bound_b.flatten()[worst]):.3e}); "
                f"case {case.to_json()}"
            )
    return problems
