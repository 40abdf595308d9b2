"""Building a conv's dense matrix by index arithmetic costs about as much as allocating it.

For each representative geometry, ``dense_conv_weight`` and ``torch.zeros`` of the same
``[out_features, in_features]`` shape are timed in one ``benchmark.group``; the aim is a ratio of
at most 2. Run with ``pytest benchmarks/bench_dense_builder.py --benchmark-only``.
"""

from __future__ import annotations

import pytest
import torch

from linconv.converters import dense_conv_weight
from linconv.core.geometry import ConvGeometry

# A fixed table, so that runs (and torch versions) compare like with like.
GEOMETRIES = {
    "3x3 16->16 14x14 zeros pad 1": ConvGeometry(1, 16, 16, (14, 14), kernel=3, padding=1),
    "3x3 16->16 14x14 stride 2 reflect pad 1": ConvGeometry(
        1, 16, 16, (14, 14), kernel=3, stride=2, padding=1, padding_mode="reflect"
    ),
    "3x3 32->32 8x8 groups 8 zeros pad 1": ConvGeometry(1, 32, 32, (8, 8), kernel=3, padding=1, groups=8),
}
# One intra-op thread: the ratio is the measure, and on a shared machine several threads stall
# at their barrier whenever one is descheduled (seen on 2 cores: timings in 8 ms steps).
THREADS = 1


@pytest.fixture(autouse=True)
def _fixed_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", GEOMETRIES)
def test_dense_conv_weight(benchmark, name: str) -> None:
    geometry = GEOMETRIES[name]
    weight = torch.randn(geometry.weight_shape, generator=torch.Generator().manual_seed(0))
    benchmark.group = name
    dense = benchmark(dense_conv_weight, weight, geometry)
    assert dense.shape == (geometry.out_features, geometry.in_features)


@pytest.mark.parametrize("name", GEOMETRIES)
def test_zeros_of_the_same_shape(benchmark, name: str) -> None:
    geometry = GEOMETRIES[name]
    benchmark.group = name
    benchmark(torch.zeros, geometry.out_features, geometry.in_features)
