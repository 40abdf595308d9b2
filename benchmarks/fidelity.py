"""Do the property run's per-example timings tell the same story as a benchmark?

For three shapes of the benchmark table, measure the time ratio of two formulations three ways in
one process, with the same thread count: (1) the run report's ratio, from linconv.timing's
per-example timings while the relation is checked on cases of exactly that geometry; (2)
pytest-benchmark (benchmarks/bench_formulations.py, the same benchmarks `pytest benchmarks`
runs); (3) ``torch.utils.benchmark.Timer.blocked_autorange``. Prints the three ratios and their
spread (largest / smallest); the goal is agreement within 20%. Forward, batch 32.

    python benchmarks/fidelity.py [--examples 15] [--json PATH]

from the repository root, with linconv importable (installed, as tox does, or PYTHONPATH=.).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from benchmark_shapes import SHAPES, THREADS, prepared, train_batch
from torch.utils.benchmark import Timer

from linconv.relations import run_relation
from linconv.runreport import build_report, machine_identity
from linconv.timing import Recorder

# Shapes whose pair (Shape.pair: A, B) is compared; forward at the training batch.
CHOSEN = ("[N,512,4,4] -> 5 classes", "head 2048->1000", "3x3 32->32 at 8x8 pad 1")
TOLERANCE = 1.2


def report_ratio(shape_name: str, batch: int, examples: int) -> tuple[float, int]:
    """Median per-example ratio A / B from a run report of the relation on this exact geometry."""
    shape = SHAPES[shape_name]
    recorder = Recorder()
    for seed in range(examples):
        run_relation(shape.relation, replace(shape.case(batch, shape.pair[0]), seed=seed), observer=recorder)
    report = build_report(tallies=[], samples=recorder.samples, environment={}, machine={})
    pair = "/".join(shape.pair)
    row = next(
        r
        for r in report["ratios"]
        if r["pair"] == pair and r["phase"] == "forward" and r["dtype"] == "all" and r["size_bucket"] == "all"
    )
    return row["median"], row["count"]


def benchmark_ratio(shape_name: str, batch: int) -> float:
    """Ratio of pytest-benchmark medians, from the benchmarks of bench_formulations.py."""
    shape = SHAPES[shape_name]
    here = Path(__file__).parent
    ids = [
        f"{here / 'bench_formulations.py'}::test_formulation[{shape_name}|batch {batch}|{v}|forward]"
        for v in shape.pair
    ]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        code = pytest.main([*ids, "--benchmark-only", f"--benchmark-json={out}", "-q", "-p", "no:cacheprovider"])
        if code != 0:
            raise SystemExit(f"fidelity: pytest-benchmark run failed (exit {code})")
        data = json.loads(out.read_text())
    medians = {b["extra_info"]["formulation"]: b["stats"]["median"] for b in data["benchmarks"]}
    return medians[shape.pair[0]] / medians[shape.pair[1]]


def timer_ratio(shape_name: str, batch: int, rounds: int = 5) -> float:
    """Median over ``rounds`` of the ratio of blocked_autorange medians, A and B measured in turn
    (a load change on a shared machine then moves both sides of most rounds alike)."""
    shape = SHAPES[shape_name]
    timers = [
        Timer("call()", globals={"call": prepared(shape, batch, variant)}, num_threads=THREADS)
        for variant in shape.pair
    ]
    ratios = []
    for _ in range(rounds):
        a, b = (timer.blocked_autorange(min_run_time=0.2).median for timer in timers)
        ratios.append(a / b)
    return statistics.median(ratios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=15, help="property examples per shape (default 15)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    batch = train_batch()
    rows = []
    for name in CHOSEN:
        ratio_report, count = report_ratio(name, batch, args.examples)
        ratio_bench = benchmark_ratio(name, batch)
        torch.set_num_threads(THREADS)  # pytest-benchmark's fixture restored the thread count it found
        ratio_timer = timer_ratio(name, batch)
        ratios = (ratio_report, ratio_bench, ratio_timer)
        spread = max(ratios) / min(ratios)
        rows.append(
            {
                "shape": name,
                "batch": batch,
                "pair": " / ".join(SHAPES[name].pair),
                "report": ratio_report,
                "report_examples": count,
                "pytest_benchmark": ratio_bench,
                "blocked_autorange": ratio_timer,
                "spread": spread,
                "agree": spread <= TOLERANCE,
            }
        )
    print(f"\nthreads {THREADS}, torch {torch.__version__}, machine {machine_identity(THREADS)['cpu_model']}")
    print(f"{'shape':<28} {'A / B':<30} {'report':>8} {'pytest-bm':>10} {'autorange':>10} {'spread':>7}")
    for r in rows:
        print(
            f"{r['shape']:<28} {r['pair']:<30} {r['report']:>8.3f} {r['pytest_benchmark']:>10.3f} "
            f"{r['blocked_autorange']:>10.3f} {r['spread']:>7.3f}{'' if r['agree'] else '  (> 20% apart)'}"
        )
    if args.json:
        args.json.write_text(json.dumps({"threads": THREADS, "torch": torch.__version__, "rows": rows}, indent=1))
    return 0 if all(r["agree"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
