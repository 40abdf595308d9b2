"""A workload: one formulation on one case, runnable again for timing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from linconv.core.cases import Case

__all__ = ["Observer", "Workload"]


@dataclass(frozen=True)
class Workload:
    """One formulation on one case. Calling it runs what the check compares. ``forward`` (no
    autograd) and ``backward`` (records one forward, returns a callable that runs only its
    backward) re-run the same tensors so an observer can time each half; ``backward`` is None
    where no gradient is compared."""

    run: Callable[[], Any]
    forward: Callable[[], torch.Tensor]
    backward: Callable[[], Callable[[], object] | None] | None = None

    def __call__(self) -> Any:
        return self.run()


# Called as observer(relation, formulation, case, workload) for each formulation; it must return
# workload() and may time workload.forward / .backward (the timing recorder, linconv.timing).
Observer = Callable[[str, str, Case, Workload], Any]
