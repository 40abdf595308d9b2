"""Eager vs compiled, on the benchmark table's shapes: for each shape and formulation (the relation's
own, benchmarks/benchmark_shapes.py), seconds per call eagerly and in each compiled execution lane
(linconv.lanes.execution), and the compile time of the first call (cold: the lane's cache is
cleared before each shape; inductor's on-disk cache is whatever the machine has). Forward without
autograd at batch 1 and 32, and the backward alone at batch 32 (not in inference-only lanes).

    python benchmarks/compiled_timings.py [--lanes compiled,compiled-freezing] [--json PATH]

from the repository root, with linconv importable (installed, as tox does, or PYTHONPATH=.);
prints a Markdown table (docs/compile.md keeps one). Timing: the median of 5 blocks of
``torch.utils.benchmark.Timer.timeit``, intra-op threads fixed as the benchmarks fix them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from benchmark_shapes import BATCHES, SHAPES, THREADS, train_batch
from torch.utils.benchmark import Timer

from linconv.core.cases import Params
from linconv.lanes.execution import compile_formulation, execution_lane, get_lane, parse_executions

PHASES = [("forward", b) for b in BATCHES] + [("backward", train_batch())]


def _median_seconds(fn) -> float:
    timer = Timer("fn()", globals={"fn": fn}, num_threads=THREADS)
    blocks = sorted(timer.timeit(max(1, int(0.05 / max(timer.timeit(1).median, 1e-7)))).median for _ in range(5))
    return blocks[2]


def _call(fn, shape, variant: str, phase: str, batch: int):
    case = shape.case(batch, variant)
    t = case.build()
    g = case.geometry
    if phase == "forward":

        def forward():
            with torch.no_grad():
                return fn(t.x, t.params, g)

        return forward
    leaves = [v.detach().requires_grad_(True) if v is not None else None for v in (t.x, *t.params.as_dict().values())]
    y = fn(leaves[0], Params(*leaves[1:]), g)
    upstream = case.upstream(tuple(y.shape))
    wanted = [v for v in leaves if v is not None]
    return lambda: torch.autograd.grad(y, wanted, upstream, retain_graph=True)


def measure(lanes: tuple[str, ...]) -> list[dict]:
    rows = []
    # the backward is timed by calling it again on one graph (retain_graph=True), which a compiled
    # backward with donated buffers refuses ("requires ... retain_graph=False"): buffer donation off,
    # an allocation saving, not a change of the kernels timed
    import torch._functorch.config as functorch_config

    donation = functorch_config.patch(donated_buffer=False)
    with torch.inference_mode(False), donation:
        torch.set_num_threads(THREADS)
        for shape in SHAPES.values():
            for variant, spec in shape.variants.items():
                if not spec.formulation:
                    continue  # prebuilt weights: not a formulation of the relation
                fn = shape.fn(variant)
                for lane in lanes:
                    forward_only = get_lane(lane).forward_only
                    with execution_lane(lane):
                        run = compile_formulation(fn, get_lane(lane))
                        for phase, batch in PHASES:
                            if phase == "backward" and forward_only:
                                continue
                            started = time.perf_counter()
                            call = _call(run, shape, variant, phase, batch)
                            call()
                            first = time.perf_counter() - started
                            seconds = _median_seconds(call)
                            rows.append({"shape": shape.name, "variant": variant, "lane": lane, "phase": phase,
                                         "batch": batch, "seconds": seconds, "first_call_s": first})  # fmt: skip
                            print(f"{shape.name} | {variant} | {lane} | {phase} {batch}: {seconds * 1e6:.1f} us "
                                  f"(first call {first:.2f} s)", file=sys.stderr, flush=True)  # fmt: skip
    return rows


def markdown(rows: list[dict], lanes: tuple[str, ...]) -> str:
    head = ["shape", "formulation", "phase, batch", *(f"{lane} (us)" for lane in lanes)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = dict.fromkeys((r["shape"], r["variant"], r["phase"], r["batch"]) for r in rows)
    for shape, variant, phase, batch in keys:
        cells = []
        eager = next((r["seconds"] for r in rows if (r["shape"], r["variant"], r["phase"], r["batch"], r["lane"])
                      == (shape, variant, phase, batch, "eager")), None)  # fmt: skip
        for lane in lanes:
            row = next((r for r in rows if (r["shape"], r["variant"], r["phase"], r["batch"], r["lane"])
                        == (shape, variant, phase, batch, lane)), None)  # fmt: skip
            if row is None:
                cells.append("-")
                continue
            ratio = "" if eager is None or lane == "eager" else f" (x{row['seconds'] / eager:.2f})"
            compile_s = "" if lane == "eager" else f", compile {row['first_call_s']:.1f} s"
            cells.append(f"{row['seconds'] * 1e6:.1f}{ratio}{compile_s}")
        lines.append(f"| {shape} | {variant} | {phase} {batch} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lanes", default="eager,compiled", help="execution lanes (default eager,compiled)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    try:
        lanes = parse_executions(args.lanes)
    except ValueError as exc:
        print(f"compiled_timings: --lanes: {exc}", file=sys.stderr)
        return 2
    rows = measure(lanes)
    print(markdown(rows, lanes))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
