"""The gate's power table: how large a slowdown of one op it catches, and how often it cries wolf.

``collect`` makes runs in ABBA order on this machine, each the baseline/candidate flow of tox
(the properties with every example timed, then the benchmarks), with the same torch throughout:
a baseline run, then two runs of a candidate whose op is slowed by a factor
(linconv.faults.slowdown, results unchanged), then a baseline run, and so on for every
(op, factor). ``analyse`` then judges, with the gate as it is in the checkout:

- false positives: every same-torch comparison of the baseline runs (all ABBA quadruples of four
  of them in time order, and all pairs of two for one-run-per-side gates);
- power: each slowed candidate's twin runs against the baseline runs around them (ABBA), and its
  first run against the baseline run before it (one run per side);

and writes the table (Markdown) and every verdict (JSON). From the repository root:

    taskset -c 0 python benchmarks/gate_power.py collect --out reports/power   # 31 runs, 91-118 s each here
    python benchmarks/gate_power.py analyse reports/power --jobs 2 --markdown gate-power.md --json gate-power.json

``analyse --z 6 --bench-noise 0.08 ...`` judges the same runs under other thresholds (how the
defaults were chosen: docs/gating.md, "What is measured"); ``--kinds pair`` judges only the
one-run-per-side comparisons (110 of 460: a quick sweep of ``--run-noise`` / ``--bench-noise``).

``--properties`` (property paths, default all of ``properties``), ``--bench-max-time`` (seconds
per benchmark, LINCONV_BENCH_MAX_TIME) and ``--bench-k`` (a ``-k`` selection of benchmarks) make a
scaled campaign when the full one does not fit: the table then says what the gate resolves on that
part of the flow, which is less than the whole (fewer cells and shorter benchmarks: less power,
and the same thresholds).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

from linconv.gate import Thresholds, compare, load_run

ROOT = Path(__file__).resolve().parent.parent
FACTORS = (1.05, 1.1, 1.25, 1.5, 2.0)
OPS = ("conv", "linear")


def _run(
    out: Path, slowdown: str | None, properties: tuple[str, ...], bench_max_time: float | None, bench_k: str | None
) -> float:
    """One tox-like run into ``out``: properties (every example timed) and benchmarks."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LINCONV_TIMING": "1", "OMP_NUM_THREADS": "1"}
    env.pop("LINCONV_SLOWDOWN", None)
    if slowdown:
        env["LINCONV_SLOWDOWN"] = slowdown
    if bench_max_time is not None:
        env["LINCONV_BENCH_MAX_TIME"] = str(bench_max_time)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--devices", "cpu"]
    subprocess.run([*pytest, *properties, "--hypothesis-profile", "ci", "--report-dir", str(out),
                    "--junitxml", str(out / "junit.xml"), "-o", "junit_family=xunit1"],
                   cwd=ROOT, env=env, check=False, capture_output=True)  # fmt: skip
    select = ["-k", bench_k] if bench_k else []
    subprocess.run([*pytest, "benchmarks/bench_formulations.py", *select, "--benchmark-only",
                    "--benchmark-json", str(out / "benchmarks.json")],
                   cwd=ROOT, env=env, check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - started


def _spec(ops: tuple[str, ...], slowed: str | None, factor: float) -> str:
    """Every op of the campaign wrapped (LINCONV_SLOWDOWN), ``slowed`` by ``factor``, the others by 1:
    the wrapper's own cost is then on both sides, and only the waiting differs."""
    return ",".join(f"{op}={factor if op == slowed else 1.0:g}" for op in ops)


def collect(
    out: Path,
    ops: tuple[str, ...],
    factors: tuple[float, ...],
    properties: tuple[str, ...] = ("properties",),
    bench_max_time: float | None = None,
    bench_k: str | None = None,
    instrument_baseline: bool = True,
) -> None:
    baseline = _spec(ops, None, 1.0) if instrument_baseline else None
    schedule: list[tuple[str, str | None]] = [("A00", baseline)]
    for i, (op, factor) in enumerate(itertools.product(ops, factors), start=1):
        spec = _spec(ops, op, factor) if instrument_baseline else f"{op}={factor:g}"
        schedule += [(f"B{i:02d}-{op}-{factor:g}-1", spec), (f"B{i:02d}-{op}-{factor:g}-2", spec),
                     (f"A{i:02d}", baseline)]  # fmt: skip
    for name, spec in schedule:
        target = out / name
        if (target / "benchmarks.json").is_file():
            continue  # resume an interrupted collection
        seconds = _run(target, spec, properties, bench_max_time, bench_k)
        print(f"{name}: {spec or 'baseline'} in {seconds:.0f} s", flush=True)


# The thresholds ``analyse`` can override, to judge the same runs under other constants (calibration).
_THRESHOLD_FLAGS = ("margin", "z", "bench_margin", "run_noise", "bench_noise")


def _ratio(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _verdicts(gate, what: str) -> dict[str, object]:
    timed = [r for r in gate.rows if r.formulation not in ("(correctness)", "(regression corpus)")]
    prop = [f"{r.relation}/{r.formulation}" for r in timed if r.fails]
    bench = [reason for reason in gate.reasons if reason.startswith("benchmark")]
    ratios = sorted(x for x in (_ratio(r.ratio) for r in timed) if x is not None)
    groups = sorted(x for x in (_ratio(row[3]) for row in gate.bench_rows if row[0].endswith(")")) if x is not None)
    return {"what": what, "passed": gate.passed, "property_rows": prop, "benchmark_reasons": bench,
            "reasons": gate.reasons, "property_ratios": ratios, "benchmark_group_ratios": groups}  # fmt: skip


_RUNS: dict[str, object] = {}


def _judge(task: tuple[str, str, list[str], list[str], Path, Thresholds]) -> tuple[str, dict[str, object]]:
    """One comparison (in a worker process: each loads the runs once)."""
    kind, what, base, cand, directory, thresholds = task
    for name in (*base, *cand):
        if name not in _RUNS:
            _RUNS[name] = load_run(directory / name)
    b, c = [_RUNS[n] for n in base], [_RUNS[n] for n in cand]
    gate = compare(b if len(b) > 1 else b[0], c if len(c) > 1 else c[0], thresholds)
    return kind, _verdicts(gate, what)


def analyse(directory: Path, thresholds: Thresholds, jobs: int = 1, kinds: str = "abba,pair") -> dict[str, list]:
    done = {p.name for p in sorted(directory.iterdir()) if (p / "benchmarks.json").is_file()}
    baselines = sorted(n for n in done if n.startswith("A"))
    tasks = []
    for a1, b1, b2, a2 in itertools.combinations(baselines, 4):
        tasks.append(("abba_same", f"{a1} {b1} {b2} {a2}", [a1, a2], [b1, b2], directory, thresholds))
    for a, b in itertools.permutations(baselines, 2):
        tasks.append(("pair_same", f"{a} {b}", [a], [b], directory, thresholds))
    for name in sorted(n for n in done if n.startswith("B") and n.endswith("-1")):
        index = int(name[1:3])
        before, after, twin = f"A{index - 1:02d}", f"A{index:02d}", name[:-1] + "2"
        if before not in done or after not in done or twin not in done:
            continue
        label = name[4:-2]
        tasks.append(("abba_slow", label, [before, after], [name, twin], directory, thresholds))
        tasks.append(("pair_slow", label, [before], [name], directory, thresholds))
    found: dict[str, list] = {"abba_same": [], "pair_same": [], "abba_slow": [], "pair_slow": []}
    tasks = [task for task in tasks if task[0].split("_")[0] in kinds.split(",")]
    if jobs > 1:
        with multiprocessing.Pool(jobs) as pool:
            results = pool.map(_judge, tasks, chunksize=4)
    else:
        results = [_judge(task) for task in tasks]
    for kind, verdict in results:
        found[kind].append(verdict)
    return found


def _table(found: dict[str, list]) -> str:
    def caught(v: dict, kind: str) -> bool:
        return bool(v["property_rows"]) if kind == "properties" else bool(v["benchmark_reasons"])

    lines = ["| slowed op | factor | ABBA: property timings | ABBA: benchmarks | ABBA: gate | one run per side: "
             "property timings | one run per side: gate |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    pairs = {v["what"]: v for v in found["pair_slow"]}
    for v in found["abba_slow"]:
        op, factor = v["what"].split("-")
        p = pairs.get(v["what"])
        cells = ["yes" if caught(v, "properties") else "no", "yes" if caught(v, "benchmarks") else "no",
                 "FAIL" if not v["passed"] else "pass"]  # fmt: skip
        if p is not None:
            cells += ["yes" if caught(p, "properties") else "no", "FAIL" if not p["passed"] else "pass"]
        lines.append(f"| {op} | {factor} | " + " | ".join(cells) + " |")
    same = found["abba_same"]
    pair = found["pair_same"]
    lines += [
        "",
        f"Same torch, ABBA: {sum(not v['passed'] for v in same)} of {len(same)} comparisons fail the gate "
        f"({sum(bool(v['property_rows']) for v in same)} on property timings, "
        f"{sum(bool(v['benchmark_reasons']) for v in same)} on benchmarks).",
        f"Same torch, one run per side: {sum(not v['passed'] for v in pair)} of {len(pair)} comparisons fail the gate "
        f"({sum(bool(v['property_rows']) for v in pair)} on property timings, "
        f"{sum(bool(v['benchmark_reasons']) for v in pair)} on benchmarks).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    c = actions.add_parser("collect", help="make the runs (ABBA order)")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--ops", default=",".join(OPS))
    c.add_argument("--factors", default=",".join(f"{f:g}" for f in FACTORS))
    c.add_argument("--properties", default="properties", help="comma-separated property paths (default: all)")
    c.add_argument("--bench-max-time", type=float, default=None, help="seconds per benchmark (default 0.5)")
    c.add_argument("--bench-k", default=None, help="a pytest -k expression selecting benchmarks (default: all)")
    c.add_argument("--plain-baseline", action="store_true",
                   help="baseline runs without the injector (default: every op wrapped at factor 1 on both sides, "
                        "so the wrapper's own cost does not count as a slowdown)")  # fmt: skip
    a = actions.add_parser("analyse", help="judge every comparison with the gate as it is")
    a.add_argument("directory", type=Path)
    a.add_argument("--markdown", type=Path)
    a.add_argument("--json", type=Path)
    a.add_argument("--kinds", default="abba,pair", help="which flows to judge: abba, pair or both (default)")
    a.add_argument("--jobs", type=int, default=1, help="worker processes (the comparisons are independent)")
    for name in _THRESHOLD_FLAGS:
        a.add_argument(f"--{name.replace('_', '-')}", type=float, default=None,
                       help=f"the gate's {name} (default: the gate's own)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.action == "collect":
        factors = tuple(float(f) for f in args.factors.split(","))
        collect(
            args.out,
            tuple(args.ops.split(",")),
            factors,
            tuple(args.properties.split(",")),
            args.bench_max_time,
            args.bench_k,
            not args.plain_baseline,
        )
        return 0
    overrides = {name: getattr(args, name) for name in _THRESHOLD_FLAGS if getattr(args, name) is not None}
    found = analyse(args.directory, Thresholds(**overrides), args.jobs, args.kinds)
    text = _table(found)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
