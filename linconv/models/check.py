"""Check a model: for every recorded layer, every relation that applies to it, measured on the
layer's real tensors (forward), with the time of each formulation and of the layer as run.

The relations come from the registry: a relation applies to a layer when it can measure supplied
tensors (a linear map), is not a negative control (those compute a different map on purpose)
and its ``applies_to`` accepts the layer's case. A relation added to the registry is checked
here with no change. A formulation that would build a tensor larger than the size budget (the
dense matrix of a large conv) is skipped and the report says so. A formulation that converts
the layer's weights on every call (a dense matrix, a fused weight, a converter) is checked but
not timed: its time would be mostly the conversion, which a user does once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import torch
from torch.utils.benchmark.utils.common import set_torch_threads

from linconv.core.fileio import json_number
from linconv.measure import Comparison, RelationResult, Workload
from linconv.models.capture import capture_calls
from linconv.models.layers import Target, targets
from linconv.relations import Relation, relations
from linconv.timing import quantiles, synchronized_clock, timing_threads

__all__ = ["DEFAULT_MAX_NUMEL", "ROUND_BUDGET_S", "applicable", "check_model", "check_target", "time_calls"]

_AS_RUN = "as run"

# Most elements of the largest tensor a formulation may build (the dense matrix of a conv, the
# im2col columns): 2**24 float32 values are 64 MiB. Every im2col of the built-in models at batch 1
# fits (the largest, convnext_tiny's first 7x7 depthwise conv, is 96 * 49 * 56 * 56 = 14.8M); the
# dense matrix of a conv on a feature map does not (resnet18's smallest, layer4's 1x1 downsample,
# is 25,088 x 50,176 = 1.26G), while a squeeze-excite 1x1 conv on 1x1 (an [O, C] matrix) does.
DEFAULT_MAX_NUMEL = 2**24
# Per layer, the layer as run and every timed formulation are called in interleaved rounds (one
# call of each per round, after one warm-up call of each) until ROUND_BUDGET_S per callable has
# passed (at least MIN_ROUNDS, at most MAX_ROUNDS); each one's median counts. Interleaving puts a
# burst of load from elsewhere on every side of a ratio alike: timed one after the other, the same
# kernel (the layer as run vs the conv2d formulation) measured 0.04x to 29x itself on a 2-core
# machine shared with other jobs (docs/models.md, "Timing").
ROUND_BUDGET_S = 0.05
MIN_ROUNDS = 5
MAX_ROUNDS = 25


def time_calls(fns: Mapping[Any, Callable[[], object]], *, threads: int) -> dict[Any, float]:
    """Median seconds of each ``fn()`` (no autograd) on ``threads`` intra-op threads, synchronising
    the device, called in interleaved rounds."""
    samples: dict[Any, list[float]] = {key: [] for key in fns}
    with torch.no_grad(), set_torch_threads(threads):
        for fn in fns.values():
            fn()
        start, rounds = synchronized_clock(), 0
        budget = ROUND_BUDGET_S * len(fns)
        while rounds < MIN_ROUNDS or (synchronized_clock() - start < budget and rounds < MAX_ROUNDS):
            for key, fn in fns.items():
                t0 = synchronized_clock()
                fn()
                samples[key].append(synchronized_clock() - t0)
            rounds += 1
    return {key: quantiles(times)[1] for key, times in samples.items()}


def applicable(target: Target, overrides: Mapping[str, Relation] | None = None) -> tuple[list[Relation], list[str]]:
    """The relations that apply to ``target`` (``overrides`` replaces a relation by name: an
    injected fault), and, when none does, why each candidate does not."""
    overrides = overrides or {}
    chosen, reasons = [], []
    for relation in relations():
        if not relation.measures_supplied_tensors or relation.negative_control is not None:
            continue
        why = relation.applies_to(target.case)
        if why:
            reasons.append(f"{relation.name}: {why}")
        else:
            chosen.append(overrides.get(relation.name, relation))
    return chosen, reasons


def _within_budget(relation: Relation, target: Target, max_numel: int) -> tuple[Relation | None, dict[str, str]]:
    skipped = {}
    for name, spec in relation.formulations.items():
        size = spec.workspace(target.case.geometry) if spec.workspace else 0
        if size > max_numel:
            skipped[name] = f"would build {size:,} elements, over the size budget {max_numel:,} (--max-numel)"
    kept = {n: s for n, s in relation.formulations.items() if n not in skipped}
    return (replace(relation, formulations=kept) if kept else None), skipped


def _comparison(c: Comparison) -> dict[str, Any]:
    return {
        "ratio": json_number(c.ratio),
        "error": json_number(c.error),
        "bound": json_number(c.bound),
        "index": list(c.index),
        "value": json_number(c.value),
        "reference": json_number(c.reference),
        "problem": c.problem,
        "c_needed": json_number(c.c_needed),
    }


def check_target(
    target: Target,
    *,
    max_numel: int = DEFAULT_MAX_NUMEL,
    threads: int | None = None,
    overrides: Mapping[str, Relation] | None = None,
    timed: bool = True,
) -> tuple[dict[str, Any], list[tuple[Relation, RelationResult]]]:
    """One target's row of the report, and the results that did not hold."""
    threads = timing_threads() if threads is None else threads
    chosen, reasons = applicable(target, overrides)
    by_name = {r.name: r for r in chosen}
    to_time: dict[object, Callable[[], object]] = {_AS_RUN: target.as_run}
    timed_as: dict[tuple[str, str], object] = {}  # (relation, formulation) -> its function
    references: dict = {}  # relations with the same reference share its float64 results

    def observer(relation: str, formulation: str, case: object, work: Workload) -> object:
        spec = by_name[relation].formulations[formulation]
        if timed and not spec.converts_per_call:  # its time would be mostly the conversion: not timed
            to_time.setdefault(spec.fn, work.forward)  # one function shared by relations is timed once
            timed_as[(relation, formulation)] = spec.fn
        return work()

    rows, failed = [], []
    for relation in chosen:
        measured, skipped = _within_budget(relation, target, max_numel)
        row: dict[str, Any] = {
            "relation": relation.name,
            "statement": relation.statement,
            "reduction_length": relation.reduction_lengths(target.case)["output"],
            "skipped": skipped,
            "formulations": {},
        }
        if measured is not None:
            started = time.perf_counter()
            try:
                result = measured.run_on(
                    target.case, target.tensors, observer=observer, backward=False, references=references
                )
            except Exception as exc:  # a formulation that crashes on a real layer: not a pass
                row.update(holds=False, worst_ratio="inf", error=f"{type(exc).__name__}: {exc}".splitlines()[0])
                rows.append(row)
                continue
            row["check_s"] = time.perf_counter() - started
            for c in result.comparisons:
                entry = _comparison(c)
                entry["converts_per_call"] = measured.formulations[c.formulation].converts_per_call
                row["formulations"][c.formulation] = entry
            row["holds"] = relation.holds(result)
            row["worst_ratio"] = json_number(
                result.worst_ratio if not result.violations else max(c.ratio for c in result.violations)
            )
            if not row["holds"]:
                failed.append((relation, result))
        rows.append(row)
    seconds: dict[Any, float] = {}
    timing_error = ""
    try:
        seconds = time_calls(to_time, threads=threads) if timed else {}
    except Exception as exc:  # timing never decides pass/fail: say why there are no times
        timing_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    for row in rows:
        for name, entry in row["formulations"].items():
            entry["seconds"] = seconds.get(timed_as.get((row["relation"], name)))
    layer: dict[str, Any] = {
        "name": target.name,
        "kind": target.kind,
        "describes": target.describes,
        "input": target.layout,
        "case": target.case.to_dict(),
        "relations": rows,
        "not_applicable": reasons if not chosen else [],
        "as_run_s": seconds.get(_AS_RUN),
    }
    if timing_error:
        layer["timing_error"] = timing_error
    layer.update(_fastest(layer))
    return layer, failed


def _fastest(layer: dict[str, Any]) -> dict[str, Any]:
    """The fastest formulation timed (one that converts its weights on every call is not), and the
    layer-as-run time divided by its time."""
    timed = [
        (entry["seconds"], f"{row['relation']}/{name}")
        for row in layer["relations"]
        for name, entry in row["formulations"].items()
        if entry.get("seconds")
    ]
    if not timed or not layer["as_run_s"]:
        return {"fastest": None, "speedup": None}
    best_s, best = min(timed)
    return {"fastest": best, "fastest_s": best_s, "speedup": layer["as_run_s"] / best_s}


def check_model(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    max_numel: int = DEFAULT_MAX_NUMEL,
    threads: int | None = None,
    overrides: Mapping[str, Relation] | None = None,
    timed: bool = True,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], list[tuple[Target, Relation, RelationResult]]]:
    """Every layer of ``model`` on input ``x``: the layers part of the report, and every result that
    did not hold (with its target, for keeping it). ModelError for a model that cannot be checked."""
    calls, uncalled = capture_calls(model, x)
    found, unsupported = targets(calls)
    layers, failures = [], []
    for target in found:
        row, failed = check_target(target, max_numel=max_numel, threads=threads, overrides=overrides, timed=timed)
        layers.append(row)
        failures += [(target, relation, result) for relation, result in failed]
        if progress:
            progress(_progress_line(row))
    checks = [r for layer in layers for r in layer["relations"] if "holds" in r]
    worst = max((float(r["worst_ratio"]) for r in checks), default=0.0)
    summary = {
        "calls": len(calls),
        "layers": layers,
        "unsupported": [{"name": u.name, "kind": u.kind, "why": u.why} for u in unsupported],
        "not_called": uncalled,
        "totals": {
            "targets": len(layers),
            "checks": len(checks),
            "violations": sum(not r["holds"] for r in checks),
            "worst_ratio": json_number(worst if math.isfinite(worst) else math.inf),
            "without_relation": sum(not layer["relations"] for layer in layers),
        },
    }
    return summary, failures


def _progress_line(layer: dict[str, Any]) -> str:
    checked = [r for r in layer["relations"] if "holds" in r]
    if not checked:
        return f"{layer['name']}: no relation applies"
    worst = max(float(r["worst_ratio"]) for r in checked)
    bad = sum(not r["holds"] for r in checked)
    return f"{layer['name']}: {len(checked)} relation(s), worst error/bound {worst:.3g}" + (
        f", {bad} VIOLATED" if bad else ""
    )
