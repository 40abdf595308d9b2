"""Robust statistics of timings: quartiles, and size buckets that group examples of similar cost."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Stats", "bucket_range", "quantiles", "size_bucket", "stats"]

# Size buckets are powers of 4 of the multiply-adds: [2^(2k), 2^(2k+2)).
_BUCKET_LOG2 = 2


def size_bucket(size: int) -> str:
    """The bucket of ``size`` multiply-adds, named by its lower end: ``"2^10"`` holds [2^10, 2^12)."""
    exponent = max(0, int(math.log2(max(size, 1))) // _BUCKET_LOG2 * _BUCKET_LOG2)
    return f"2^{exponent}"


def bucket_range(bucket: str) -> tuple[int, int]:
    low = int(bucket.split("^")[1])
    return 2**low, 2 ** (low + _BUCKET_LOG2)


def quantiles(values: Iterable[float]) -> tuple[float, float, float]:
    """First quartile, median and third quartile, interpolated linearly between order
    statistics (numpy's default, ``statistics.quantiles(method='inclusive')``)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("quantiles of an empty sequence")

    def at(p: float) -> float:
        pos = (len(ordered) - 1) * p
        low = math.floor(pos)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)

    return at(0.25), at(0.5), at(0.75)


@dataclass(frozen=True)
class Stats:
    median: float
    q1: float
    q3: float
    count: int

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1


def stats(values: Iterable[float]) -> Stats:
    values = list(values)
    q1, median, q3 = quantiles(values)
    return Stats(median, q1, q3, len(values))
