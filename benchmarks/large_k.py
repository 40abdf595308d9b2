"""Does the error model hold, and still see one dropped input channel, at the reduction lengths
real classifier heads have? For each kernel-covering conv head of linconv.models.zoo (K = 25,088,
100,352, 401,408) and each seed: the model check on the head with random init and a standard
normal input from the seed (python -m linconv model linconv.models.zoo:NAME --seed S), then the
same with one input channel dropped from the flattened Linear (--inject-fault
drop_channel_full_kernel). Prints, per head, the largest error/bound of each correct formulation
over the seeds, and the smallest and median error/bound of the faulty one (> 1: seen).

    python benchmarks/large_k.py [--seeds 10] [--json PATH]

from the repository root, with linconv importable (installed, as tox does, or PYTHONPATH=.).
Data and reading: docs/models.md, "The error model at real sizes".
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from linconv.faults import get_fault
from linconv.models.builtin import HEADS
from linconv.models.check import check_model
from linconv.models.load import build_model, make_input

FAULT = "drop_channel_full_kernel"
NAMES = ("resnet18_conv_head", "resnet50_conv_head", "resnet50_conv_head_448")


def ratios(name: str, seed: int, overrides: dict) -> dict[str, float]:
    head = HEADS[name]
    model = build_model(head.spec, seed=seed)
    x = make_input(head.input_shape, dtype="float32", device="cpu", seed=seed)
    summary, _ = check_model(model, x, timed=False, overrides=overrides)
    rows = summary["layers"][0]["relations"]
    return {f"{r['relation']}/{f}": float(e["ratio"]) for r in rows for f, e in r["formulations"].items()} | {
        "K": max(r["reduction_length"] for r in rows)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--json", help="write the raw ratios here")
    args = parser.parse_args(argv)
    fault = get_fault(FAULT)
    faulted_key = f"{fault.relation}/{fault.formulation}"
    raw = {}
    for name in NAMES:
        correct = [ratios(name, s, {}) for s in range(args.seeds)]
        faulty = [ratios(name, s, {fault.relation: fault.faulted_relation()})[faulted_key] for s in range(args.seeds)]
        raw[name] = {"correct": correct, "faulty": faulty}
        worst = {k: max(c[k] for c in correct) for k in correct[0] if k != "K"}
        print(f"{name}: K = {correct[0]['K']:,}; {args.seeds} seeds")
        print("  correct, largest error/bound: " + ", ".join(f"{k} {v:.3g}" for k, v in sorted(worst.items())))
        seen = sum(r > 1 for r in faulty)
        print(
            f"  {FAULT} ({faulted_key}): smallest error/bound {min(faulty):.3g}, "
            f"median {statistics.median(faulty):.3g}, seen on {seen}/{len(faulty)} seeds"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(raw, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
