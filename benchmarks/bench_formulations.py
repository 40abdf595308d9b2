"""Which formulation of one linear map is faster, on a fixed table of representative shapes.

Each benchmark group is one shape at one batch size (benchmarks/benchmark_shapes.py): a 1x1 conv
head vs a Linear head (512->1000, 2048->1000), the classic ``[N,512,4,4] -> 5`` full-kernel conv
vs flatten + Linear, a 1x1 conv 256->256 at 14x14 (NCHW, channels_last, Linear over channels), a
3x3 conv vs unfold + matmul vs a dense Linear, two patch embeddings (the ViT-B/16 stem
``[N, 3, 224, 224] -> 768`` with 16x16 patches and the ConvNeXt stem, 4x4 patches to 96 channels,
NCHW and channels_last) as a conv vs patches + one Linear, and conv + Linear vs the fused Linear. Forward
(no autograd) at batch 1 and 32; backward alone (of one recorded forward) at batch 32 (the
224x224 stems: 1 and 8, backward at 8).

Each runs on every device of ``--devices`` (env ``LINCONV_DEVICES``, default all: cpu, plus cuda
and mps, each skipped with its reason where absent; a device named in the list must be present
unless ``--skip-absent-devices``), in the flags torch ships (no precision mode:
the benchmarks time what users run). A CPU benchmark keeps the id it had before devices were a
parameter (``shape|batch|variant|phase``), so saved CPU results stay comparable; others end in
``|device``.

Clock: ``torch.utils.benchmark.timer``, which synchronises the accelerator before reading the
time, so an asynchronous CUDA launch is timed to its end; warm-up on, intra-op threads fixed
(``LINCONV_TIMING_THREADS``, default 1); the environment goes into each benchmark's
``extra_info``. Run and save (docs/timing.md):

    pytest benchmarks/bench_formulations.py --benchmark-only --benchmark-json reports/benchmarks.json
    pytest benchmarks/bench_formulations.py --benchmark-only --devices cuda   # CUDA alone
"""

from __future__ import annotations

import os
import timeit

import pytest
import torch
from benchmark_shapes import SHAPES, THREADS, prepared
from torch.utils.benchmark import timer as synchronized_clock

from linconv.lanes.devices import device_unavailable_reason
from linconv.lanes.flags import read_flags
from linconv.runreport import machine_identity
from linconv.timing import problem_size
from linconv.timing.pace import pacer

_CASES = [
    (shape, batch, variant, phase)
    for shape, spec in SHAPES.items()
    for phase in ("forward", "backward")
    for batch in (spec.batches if phase == "forward" else spec.batches[-1:])
    for variant, v in spec.variants.items()
    if phase == "forward" or v.formulation
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every case on every device of --devices; an absent device's benchmarks (of ``all``, or with
    --skip-absent-devices) skip with the reason."""
    if "bench_device" not in metafunc.fixturenames:
        return
    params = []
    for device in metafunc.config._linconv_devices:  # type: ignore[attr-defined]
        reason = device_unavailable_reason(device)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        suffix = "" if device == "cpu" else f"|{device}"
        for shape, batch, variant, phase in _CASES:
            case_id = f"{shape}|batch {batch}|{variant}|{phase}{suffix}"
            params.append(pytest.param(shape, batch, variant, phase, device, id=case_id, marks=marks))
    metafunc.parametrize(("shape", "batch", "variant", "phase", "bench_device"), params)


@pytest.fixture(autouse=True)
def _fixed_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


# Seconds per benchmark after its warm-up (pytest-benchmark's max_time): 0.5 keeps the CPU's 49
# benchmarks near 2 minutes on 2 cores. LINCONV_BENCH_MAX_TIME changes it (the GPU run's rehearsal
# on the CPU uses 0.01: docs/gpu/README.md); at least ROUNDS rounds are timed whatever it is, after
# ROUNDS warm-up calls. LINCONV_BENCH_ROUNDS (default 10) changes that: the rehearsal uses 1, since
# 20 calls of the ViT stem's backward alone take ~10 s on a loaded 2-core CPU and its benchmark
# stage then overran its deadline (the rehearsal checks that every stage runs, not the timings).
MAX_TIME_S = float(os.environ.get("LINCONV_BENCH_MAX_TIME", "0.5"))
if not MAX_TIME_S > 0:
    raise ValueError(f"LINCONV_BENCH_MAX_TIME must be a number of seconds > 0, got {MAX_TIME_S}")
_ROUNDS = os.environ.get("LINCONV_BENCH_ROUNDS", "10")
if not _ROUNDS.isdigit() or int(_ROUNDS) < 1:
    raise ValueError(f"LINCONV_BENCH_ROUNDS must be a whole number >= 1, got {_ROUNDS!r}")
ROUNDS = int(_ROUNDS)


@pytest.mark.benchmark(
    timer=synchronized_clock, warmup=True, warmup_iterations=ROUNDS, max_time=MAX_TIME_S, min_rounds=ROUNDS
)
def test_formulation(benchmark, shape: str, batch: int, variant: str, phase: str, bench_device: str) -> None:
    spec = SHAPES[shape]
    case = spec.case(batch, variant, bench_device)
    call = prepared(spec, batch, variant, phase, bench_device)
    benchmark.group = f"{shape} | batch {batch} | {phase}"
    benchmark.extra_info.update(
        {
            "shape": shape,
            "relation": spec.relation,
            "formulation": variant,
            "phase": phase,
            "batch": batch,
            "memory_format": case.memory_format,
            "dtype": case.dtype,
            "device": case.device,
            "multiply_adds": problem_size(case),
            "geometry": case.geometry.to_dict(),
            "head_features": case.head_features,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "precision_flags": read_flags().to_dict(),
            "machine": machine_identity(),
        }
    )
    pace_before = _pace()
    benchmark(call)
    # the pacer before and after the rounds: the gate compares benchmarks in pacer units
    benchmark.extra_info["pace_s"] = (pace_before + _pace()) / 2


def _pace() -> float:
    """Seconds per call of the pacer (linconv.timing.pace): the median of a few blocks."""
    pacer()
    blocks = [timeit.Timer(pacer).timeit(20) / 20 for _ in range(5)]
    return sorted(blocks)[len(blocks) // 2]
