"""Keeping a failing layer. A corpus case is a seed-built Case (geometry, dtype, layout, seed), not
tensors, so a layer's real weights and activation cannot go into the corpus as they are. What is
kept, and said plainly in the report:

1. always, the real tensors and the case that describes them: ``<dir>/<layer>.<relation>.pt``
   (``torch.load`` it; ``Relation.run_on(Case.from_dict(d["case"]), CaseTensors(...))`` re-checks);
2. a pending corpus case, only where the same relation also fails on seed-built tensors of the
   layer's geometry, dtype and layout (seeds 0 .. SEEDS-1): then the corpus keeps a case that
   reproduces the failure by itself. Where none does, the failure depends on the layer's values
   and only the tensors keep it; where the relation has a formulation over the size budget, no
   case is tried (the corpus replays every formulation).
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from linconv import corpus
from linconv.corpus.capture import Failure
from linconv.lanes.flags import read_flags
from linconv.measure import RelationResult
from linconv.models.layers import Target
from linconv.relations import Relation

__all__ = ["SEEDS", "keep_failure"]

# Seed-built tries per failing layer: a failure that comes from the shape (a kernel path, a
# layout) shows on the first; four keep the cost at four checks of the layer.
SEEDS = 4


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "layer"


def _save_atomic(obj: dict[str, Any], path: Path) -> Path:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def keep_failure(
    target: Target,
    relation: Relation,
    result: RelationResult,
    *,
    tensors_dir: str | os.PathLike[str],
    capture_dir: str | os.PathLike[str],
    max_numel: int,
    model: str = "",
) -> dict[str, Any]:
    """Keep one failing (layer, relation); returns what was kept, for the report."""
    t = target.tensors
    saved = _save_atomic(
        {
            "model": model,
            "layer": target.name,
            "relation": relation.name,
            "case": target.case.to_dict(),
            "x": t.x.cpu(),
            "weight": t.weight.cpu(),
            "bias": None if t.bias is None else t.bias.cpu(),
            "head_weight": None if t.head_weight is None else t.head_weight.cpu(),
            "head_bias": None if t.head_bias is None else t.head_bias.cpu(),
            "message": result.message(),
        },
        Path(tensors_dir) / f"{_slug(target.name)}.{relation.name}.pt",
    )
    kept: dict[str, Any] = {"layer": target.name, "relation": relation.name, "tensors": str(saved), "pending": None}
    over = {n: s.workspace(target.case.geometry) for n, s in relation.formulations.items() if s.workspace}
    over = {n: size for n, size in over.items() if size > max_numel}
    if over:
        kept["summary"] = (
            f"real tensors kept in {saved}; no corpus case: the corpus replays every formulation and "
            + ", ".join(f"{n} would build {size:,} elements" for n, size in over.items())
            + f" (size budget {max_numel:,})"
        )
        return kept
    for seed in range(SEEDS):
        case = replace(target.case, seed=seed)
        seeded = relation.run(case)
        if not relation.holds(seeded):
            failure = Failure(relation.name, case, read_flags().to_dict(), seeded, "model check: " + target.name)
            regression = failure.regression(test=f"python -m linconv model {model} (layer {target.name})")
            path = corpus.write(regression, capture_dir)
            kept["pending"] = str(path)
            kept["summary"] = (
                f"reproduced with seed-built values (seed {seed}): pending corpus case {path} "
                f"(python -m linconv regressions add {path}); real tensors in {saved}"
            )
            return kept
    kept["summary"] = (
        f"does not reproduce with seed-built values of the same geometry, dtype and layout (seeds 0-{SEEDS - 1}): "
        f"the failure depends on the layer's values, kept only as real tensors in {saved}"
    )
    return kept
