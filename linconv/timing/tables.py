"""Timing tables: seconds per call and paired time ratios, per relation, formulation, device,
precision mode, dtype, phase and size bucket (median, quartiles, count)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from linconv.timing.recorder import PHASES, Sample
from linconv.timing.stats import bucket_range, size_bucket, stats

__all__ = ["formulation_order", "pairs", "ratio_rows", "timing_rows"]


def formulation_order(samples: Iterable[Sample]) -> dict[str, list[str]]:
    """Formulations of each relation in the order the relation runs them (first seen first)."""
    order: dict[str, list[str]] = {}
    for s in samples:
        names = order.setdefault(s.relation, [])
        names += [f for f in s.times if f not in names]
    return order


def _bucket_order(bucket: str) -> float:
    return math.inf if bucket == "all" else bucket_range(bucket)[0]


def _rows(groups: dict[tuple[str, ...], list[float]], names: tuple[str, ...], suffix: str) -> list[dict[str, Any]]:
    """One row per group, in key order with buckets by size: key fields, statistics, count. The
    ``key`` string leaves out the eager execution lane, so eager keys read as before lanes existed."""
    rows = []
    for key in sorted(groups, key=lambda k: (*k[:-1], _bucket_order(k[-1]))):
        fields = dict(zip(names, key, strict=True))
        shown = [v for n, v in fields.items() if not (n == "execution" and v == "eager")]
        row: dict[str, Any] = {"key": "|".join(shown), **fields}
        if fields["size_bucket"] != "all":
            row["size_lo"], row["size_hi"] = bucket_range(fields["size_bucket"])
        st = stats(groups[key])
        row.update({f"{name}{suffix}": getattr(st, name) for name in ("median", "q1", "q3", "iqr")})
        row["count"] = st.count
        rows.append(row)
    return rows


def timing_rows(samples: Iterable[Sample]) -> list[dict[str, Any]]:
    """Seconds per call, per (relation, formulation, device, mode, execution, dtype, phase, size bucket)."""
    groups: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for s in samples:
        for formulation, phases in s.times.items():
            for phase, seconds in phases.items():
                key = (s.relation, formulation, s.device, s.mode, s.execution, s.dtype, phase, size_bucket(s.size))
                groups[key].append(seconds)
    names = ("relation", "formulation", "device", "mode", "execution", "dtype", "phase", "size_bucket")
    return _rows(groups, names, "_s")


def pairs(order: dict[str, list[str]]) -> dict[str, list[tuple[str, str]]]:
    """Per relation: (first formulation, each other one); the first is the conv side."""
    return {r: [(names[0], other) for other in names[1:]] for r, names in order.items()}


def ratio_rows(samples: list[Sample]) -> list[dict[str, Any]]:
    """Paired time ratios ``first / other`` on the same examples, per (relation, pair, device,
    mode, execution, dtype, phase, size bucket), and pooled over dtypes and/or buckets (``"all"``).
    A ratio above 1 means the other formulation is faster by that factor."""
    relation_pairs = pairs(formulation_order(samples))
    groups: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for s in samples:
        for num, den in relation_pairs[s.relation]:
            for phase in PHASES:
                a, b = s.times.get(num, {}).get(phase), s.times.get(den, {}).get(phase)
                if a is None or b is None:
                    continue
                bucket = size_bucket(s.size)
                for dtype in (s.dtype, "all"):
                    for size in (bucket, "all"):
                        key = (s.relation, f"{num}/{den}", s.device, s.mode, s.execution, dtype, phase, size)
                        groups[key].append(a / b)
    return _rows(groups, ("relation", "pair", "device", "mode", "execution", "dtype", "phase", "size_bucket"), "")
