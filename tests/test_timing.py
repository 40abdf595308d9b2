"""linconv.timing: quartiles, size buckets, the recorder as an observer, aggregation and merging."""

from __future__ import annotations

import json
import statistics
import time

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.measure import Workload
from linconv.relations import run_relation
from linconv.timing import Recorder, Sample, problem_size, quantiles, ratio_rows, size_bucket, stats, timing_rows

FLOATS = st.floats(min_value=1e-9, max_value=1e3, allow_nan=False)


@given(st.lists(FLOATS, min_size=2, max_size=50))
def test_quartiles_match_statistics_inclusive(values):
    q1, median, q3 = quantiles(values)
    expected = statistics.quantiles(values, n=4, method="inclusive")
    assert [q1, median, q3] == pytest.approx(expected, rel=1e-12)
    assert median == pytest.approx(statistics.median(values), rel=1e-12)


def test_quartiles_by_hand():
    assert quantiles([4.0, 1.0, 3.0, 2.0, 5.0]) == (2.0, 3.0, 4.0)
    assert quantiles([1.0, 2.0]) == (1.25, 1.5, 1.75)
    assert quantiles([7.0]) == (7.0, 7.0, 7.0)
    s = stats([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (s.median, s.iqr, s.count) == (3.0, 2.0, 5)


def test_quartiles_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        quantiles([])


@pytest.mark.parametrize(
    ("size", "bucket"), [(0, "2^0"), (1, "2^0"), (3, "2^0"), (4, "2^2"), (1023, "2^8"), (1024, "2^10"), (4095, "2^10")]
)
def test_size_buckets_are_powers_of_four(size, bucket):
    assert size_bucket(size) == bucket


def test_problem_size_counts_multiply_adds():
    # 3x3 conv 4->8 on 2x[4,6,6], no padding: output 8x4x4, 4*9 terms each
    case = Case(ConvGeometry(2, 4, 8, (6, 6), kernel=3))
    assert problem_size(case) == 2 * 8 * 4 * 4 * 36
    # + a Linear(8*4*4 -> 10) head per sample
    assert (
        problem_size(Case(ConvGeometry(2, 4, 8, (6, 6), kernel=3), head_features=10)) == 2 * 8 * 16 * 36 + 2 * 10 * 128
    )


def _sample(relation="pointwise", dtype="float32", size=100, times=None, device="cpu"):
    return Sample(relation, device, dtype, size, times=times or {})


def test_timing_rows_aggregate_per_cell():
    samples = [
        _sample(times={"conv2d": {"forward": t, "backward": 2 * t}, "linear_over_channels": {"forward": 1.0}})
        for t in (1.0, 2.0, 3.0, 4.0)
    ] + [_sample(dtype="float64", times={"conv2d": {"forward": 9.0}})]
    rows = {r["key"]: r for r in timing_rows(samples)}
    forward = rows["pointwise|conv2d|cpu|default|float32|forward|2^6"]
    assert (forward["median_s"], forward["q1_s"], forward["q3_s"], forward["count"]) == (2.5, 1.75, 3.25, 4)
    assert forward["iqr_s"] == pytest.approx(1.5)
    assert (forward["size_lo"], forward["size_hi"]) == (64, 256)
    assert rows["pointwise|conv2d|cpu|default|float32|backward|2^6"]["median_s"] == 5.0
    assert rows["pointwise|conv2d|cpu|default|float64|forward|2^6"]["count"] == 1
    assert len(rows) == 4


def test_ratio_rows_pair_each_example_and_pool():
    samples = [
        _sample(
            size=10, times={"conv2d": {"forward": 2.0}, "unfold_matmul": {"forward": 1.0}, "dense": {"forward": 4.0}}
        ),
        _sample(size=1000, times={"conv2d": {"forward": 6.0}, "unfold_matmul": {"forward": 2.0}}),
        _sample(size=1000, dtype="bfloat16", times={"conv2d": {"forward": 8.0}, "unfold_matmul": {"forward": 2.0}}),
    ]
    rows = {r["key"]: r for r in ratio_rows(samples)}
    # the first formulation is A; each other one is a B
    assert rows["pointwise|conv2d/unfold_matmul|cpu|default|float32|forward|2^2"]["median"] == 2.0
    assert rows["pointwise|conv2d/unfold_matmul|cpu|default|float32|forward|2^8"]["median"] == 3.0
    assert rows["pointwise|conv2d/unfold_matmul|cpu|default|float32|forward|all"]["median"] == 2.5
    pooled = rows["pointwise|conv2d/unfold_matmul|cpu|default|all|forward|all"]
    assert (pooled["median"], pooled["count"]) == (3.0, 3)
    assert rows["pointwise|conv2d/dense|cpu|default|all|forward|all"]["count"] == 1  # only where both were timed
    assert not any(r["phase"] == "backward" for r in rows.values())


def _relation_cases():
    return [
        ("pointwise", Case(ConvGeometry(2, 4, 6, (5, 5)), seed=1)),
        ("general_conv", Case(ConvGeometry(1, 2, 4, (5, 5), kernel=3, padding=1), seed=2)),
        ("composition", Case(ConvGeometry(1, 2, 4, (4, 4), kernel=3), head_features=3, seed=3)),
        ("composition_with_activation", Case(ConvGeometry(1, 2, 4, (4, 4), kernel=3), head_features=3, seed=3)),
        ("classifier_head", Case(ConvGeometry(3, 4, 5, (2, 2), kernel=2), seed=4)),
    ]


@pytest.mark.parametrize(("relation", "case"), _relation_cases(), ids=[r for r, _ in _relation_cases()])
def test_the_recorder_does_not_change_what_is_checked(relation, case):
    recorder = Recorder()
    with_timing = run_relation(relation, case, observer=recorder)
    without = run_relation(relation, case)
    assert with_timing.comparisons == without.comparisons
    (sample,) = recorder.samples
    assert (sample.relation, sample.device, sample.dtype, sample.size) == (
        relation,
        "cpu",
        "float32",
        problem_size(case),
    )
    formulations = {c.formulation for c in without.comparisons}
    assert set(sample.times) == formulations
    grads = any(c.tensor.startswith("grad") for c in without.comparisons)
    for phases in sample.times.values():
        assert set(phases) == ({"forward", "backward"} if grads else {"forward"})
        assert all(t > 0 for t in phases.values())
    assert recorder.cost[relation]["checked_s"] > 0 and recorder.cost[relation]["timing_s"] > 0
    assert not recorder.errors


def test_a_timing_failure_is_counted_not_raised():
    def broken() -> torch.Tensor:
        raise RuntimeError("out of memory (simulated)")

    recorder = Recorder()
    work = Workload(run=lambda: "checked result", forward=broken)
    case = Case(ConvGeometry(1, 1, 1, (1, 1)))
    assert recorder("pointwise", "conv2d", case, work) == "checked result"
    assert recorder.errors == ["pointwise/conv2d: RuntimeError: out of memory (simulated)"]
    assert recorder.to_dict()["samples"] == []  # an example with no timing is not reported


def test_every_nth_example_is_timed_per_relation_and_device():
    recorder = Recorder(every=3)
    for seed in range(7):
        run_relation("pointwise", Case(ConvGeometry(1, 2, 2, (2, 2)), seed=seed), observer=recorder)
    run_relation("full_kernel", Case(ConvGeometry(1, 2, 2, (2, 2), kernel=2)), observer=recorder)
    assert [s.relation for s in recorder.samples] == ["pointwise"] * 3 + ["full_kernel"]  # examples 1, 4, 7; 1
    with pytest.raises(ValueError, match="every"):
        Recorder(every=0)


def test_the_precision_mode_is_part_of_the_key():
    recorder = Recorder()
    recorder.mode = "strict"
    run_relation("pointwise", Case(ConvGeometry(1, 2, 2, (2, 2))), observer=recorder)
    assert {r["mode"] for r in timing_rows(recorder.samples)} == {"strict"}


def test_time_call_measures_a_known_duration():
    def busy(seconds: float = 3e-4) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    measured = Recorder().time_call(busy)
    # never below the busy wait; above it only load decides (a loaded 2-core machine measured 9 ms), so
    # the upper bound only catches a unit error
    assert 3e-4 <= measured < 1.0


def test_worker_records_merge_into_one():
    a, b = Recorder(), Recorder()
    run_relation("pointwise", Case(ConvGeometry(1, 2, 2, (2, 2)), seed=1), observer=a)
    run_relation("pointwise", Case(ConvGeometry(1, 2, 2, (2, 2)), seed=2), observer=b)
    run_relation("full_kernel", Case(ConvGeometry(1, 2, 2, (2, 2), kernel=2)), observer=b)
    b.errors.append("full_kernel/conv2d: RuntimeError: x")
    merged = Recorder()
    for worker in (a, b):
        merged.merge(json.loads(json.dumps(worker.to_dict())))  # what travels between processes
    assert [s.to_dict() for s in merged.samples] == [s.to_dict() for s in a.samples + b.samples]
    assert merged.errors == b.errors
    total = a.cost["pointwise"]["checked_s"] + b.cost["pointwise"]["checked_s"]
    assert merged.cost["pointwise"]["checked_s"] == pytest.approx(total)
    rows = {r["key"]: r for r in ratio_rows(merged.samples)}
    assert rows["pointwise|conv2d/linear_over_channels|cpu|default|all|forward|all"]["count"] == 2


def test_timing_runs_with_its_own_thread_count_and_restores_the_runs(monkeypatch):
    seen = []

    def forward() -> torch.Tensor:
        seen.append(torch.get_num_threads())
        return torch.zeros(())

    before = torch.get_num_threads()
    recorder = Recorder(threads=1)
    recorder("pointwise", "conv2d", Case(ConvGeometry(1, 1, 1, (1, 1))), Workload(run=lambda: None, forward=forward))
    assert set(seen) == {1} and torch.get_num_threads() == before
    monkeypatch.setenv("LINCONV_TIMING_THREADS", "3")
    assert Recorder().threads == 3
    monkeypatch.setenv("LINCONV_TIMING_THREADS", "0")
    with pytest.raises(ValueError, match="LINCONV_TIMING_THREADS must be an int >= 1, got '0'"):
        Recorder()


def test_benchmarks_run_per_device_and_skip_an_absent_one_with_its_reason():
    """bench_formulations.py on --devices cpu,cuda: the CPU ids are unchanged (saved results stay
    comparable), CUDA's end in |cuda and, without CUDA, skip saying why (--skip-absent-devices: a
    device named in --devices must otherwise be present)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    bench = root / "benchmarks" / "bench_formulations.py"
    options = ["--benchmark-disable", "-p", "no:cacheprovider", "-q", "-rs"]
    options += ["--devices", "cpu,cuda", "--skip-absent-devices"]
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", str(bench), *options, "--collect-only"],
        cwd=root, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    ids = [line for line in listed.stdout.splitlines() if "::test_formulation[" in line]
    assert ids and sum(i.endswith("|cuda]") for i in ids) == len(ids) // 2
    one = "head 512->1000|batch 1|conv2d|forward"
    assert f"::test_formulation[{one}]" in ids[0]
    nodes = [f"{bench}::test_formulation[{one}]", f"{bench}::test_formulation[{one}|cuda]"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *nodes, *options], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    if torch.cuda.is_available():
        assert "2 passed" in done.stdout
    else:
        assert "1 passed, 1 skipped" in done.stdout
        assert "CUDA is not available here (torch.cuda.is_available() is False)" in done.stdout
