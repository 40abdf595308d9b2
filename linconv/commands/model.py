"""``python -m linconv model MODULE:FACTORY --input-shape N,C,H,W``: check a model's own layers."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from linconv.core.cases import DTYPES
from linconv.lanes.devices import device_unavailable_reason
from linconv.models.builtin import Builtin, parse_builtin
from linconv.models.check import DEFAULT_MAX_NUMEL, check_model
from linconv.models.keep import keep_failure
from linconv.models.load import ModelError, build_model, make_input, parse_input_shape
from linconv.models.report import build_model_report, table_lines, write_model_report
from linconv.runreport.markdown import fmt_ratio, table
from linconv.timing import timing_threads

DESCRIPTION = """\
Build MODEL (MODULE:FACTORY, called with no arguments, e.g. torchvision.models:resnet18 with random
init), run one forward on a standard normal input of --input-shape with hooks, and check every
relation that applies to each Conv/Linear call on the layer's real weights and the activation it
received: any conv equals im2col + matmul (and a dense Linear within --max-numel); a 1x1 conv equals
a Linear over channels; a kernel-covering conv equals a Linear on the flattened input; a Linear is
checked as the 1x1 conv it equals; a Linear fed directly by a conv (its input is the conv's output
flattened, value for value) equals one fused Linear. Each formulation is compared with the float64
reference through the error model (forward), and timed. Writes report.json and report.md into
--out and prints the table. Exit status: 0 every relation holds, 1 a violation (the failing layer's
tensors are kept, and a pending corpus case where seed-built values reproduce it), 2 bad input.
--builtin checks the built-in list instead (docs/models.md)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "model",
        help="check the relations at a model's own layers, shapes and tensors (docs/models.md)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", nargs="?", metavar="MODEL", help="MODULE:FACTORY, e.g. torchvision.models:resnet18")
    parser.add_argument("--input-shape", metavar="SHAPE", help="the input's shape, comma-separated, e.g. 1,3,224,224")
    parser.add_argument(
        "--builtin",
        metavar="NAMES",
        help="check built-in models instead of MODEL: all, torchvision, heads, or comma-separated names "
        "(resnet18, squeezenet1_1, mobilenet_v3_small, efficientnet_b0, vit_b_16, convnext_tiny, "
        "resnet18_conv_head, resnet50_conv_head, resnet50_conv_head_448, conv_linear_head)",
    )
    parser.add_argument("--dtype", default="float32", help=f"one of {', '.join(DTYPES)} (default float32)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random init and of the input (default 0)")
    parser.add_argument(
        "--out",
        type=Path,
        help="directory for report.json and report.md (default reports/model/<MODEL>; with --builtin, "
        "reports/models, one directory per model and summary.md)",
    )
    parser.add_argument(
        "--max-numel",
        type=int,
        default=DEFAULT_MAX_NUMEL,
        help=f"size budget: a formulation that would build a larger tensor (a conv's dense matrix) is skipped "
        f"and reported (default {DEFAULT_MAX_NUMEL})",
    )
    parser.add_argument(
        "--capture-dir",
        type=Path,
        help="where a failing layer that seed-built values reproduce goes as a pending corpus case "
        "(default $LINCONV_CAPTURE_DIR, else reports/pending-regressions)",
    )
    parser.add_argument("--no-timing", action="store_true", help="check only; do not time the formulations")
    parser.add_argument(
        "--inject-fault",
        metavar="NAME",
        help="check the check: break one formulation of one relation (python -m linconv faults --list) on "
        "every layer it applies to; the command must then exit 1",
    )
    parser.add_argument("--progress", action="store_true", help="print one line per layer as it is checked")
    parser.set_defaults(func=run)


def _slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.split(":")[-1]) or "model"


def _overrides(name: str | None) -> dict[str, Any]:
    if not name:
        return {}
    from linconv.faults import get_fault

    try:
        fault = get_fault(name)
    except ValueError as exc:
        raise ModelError(f"--inject-fault: {exc}") from None
    return {fault.relation: fault.faulted_relation()}


def _check(args: argparse.Namespace, spec: str, shape: tuple[int, ...], out: Path) -> dict[str, Any]:
    reason = device_unavailable_reason_or_error(args.device)
    if reason:
        raise ModelError(f"--device {args.device!r}: {reason}")
    if args.max_numel < 1:
        raise ModelError(f"--max-numel must be a positive int, got {args.max_numel}")
    if not 0 <= args.seed < 2**63:
        raise ModelError(f"--seed must be an int in [0, 2**63), got {args.seed}")
    overrides = _overrides(args.inject_fault)
    started = time.perf_counter()
    model = build_model(spec, dtype=args.dtype, device=args.device, seed=args.seed)
    x = make_input(shape, dtype=args.dtype, device=args.device, seed=args.seed)
    threads = timing_threads()
    progress = (lambda line: print(f"  {line}", file=sys.stderr)) if args.progress else None
    summary, failures = check_model(
        model,
        x,
        max_numel=args.max_numel,
        threads=threads,
        overrides=overrides,
        timed=not args.no_timing,
        progress=progress,
    )
    capture = args.capture_dir or Path(os.environ.get("LINCONV_CAPTURE_DIR") or "reports/pending-regressions")
    kept = [
        keep_failure(
            target,
            relation,
            result,
            tensors_dir=out / "failing",
            capture_dir=capture,
            max_numel=args.max_numel,
            model=spec,
        )
        for target, relation, result in failures
    ]
    report = build_model_report(
        summary,
        model=spec,
        input_shape=shape,
        dtype=args.dtype,
        device=args.device,
        seed=args.seed,
        max_numel=args.max_numel,
        threads=threads,
        elapsed_s=time.perf_counter() - started,
        kept=kept,
    )
    write_model_report(report, out)
    return report


def device_unavailable_reason_or_error(device: str) -> str | None:
    try:
        return device_unavailable_reason(device)
    except ValueError as exc:
        raise ModelError(f"--device: {exc}") from None


def _print_kept(report: dict[str, Any]) -> None:
    for kept in report["kept"]:
        print(f"kept {kept['layer']} / {kept['relation']}: {kept['summary']}")


def _verdict(report: dict[str, Any]) -> str:
    t = report["totals"]
    return (
        f"{report['model']}: {report['verdict'].upper()} - {t['targets']} layer(s)/pair(s), {t['checks']} check(s), "
        f"{t['violations']} violation(s), worst error/bound {fmt_ratio(t['worst_ratio'])}, {report['elapsed_s']:.1f} s"
    )


def _single(args: argparse.Namespace) -> int:
    if not args.model:
        raise ModelError("MODEL (MODULE:FACTORY) or --builtin is required")
    if not args.input_shape:
        raise ModelError("--input-shape is required with MODEL, e.g. --input-shape 1,3,224,224")
    shape = parse_input_shape(args.input_shape)
    out = args.out or Path("reports") / "model" / _slug(args.model)
    report = _check(args, args.model, shape, out)
    print("\n".join(table_lines(report)))
    _print_kept(report)
    print(_verdict(report))
    print(f"wrote {out / 'report.json'} and {out / 'report.md'}")
    return 1 if report["verdict"] == "fail" else 0


def _builtin(args: argparse.Namespace) -> int:
    if args.model or args.input_shape:
        raise ModelError(
            "--builtin checks the built-in list on its own input shapes: give MODEL or --builtin, not both"
        )
    try:
        chosen: dict[str, Builtin] = parse_builtin(args.builtin)
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    out = args.out or Path("reports") / "models"
    rows, status = [], 0
    for name, builtin in chosen.items():
        try:
            report = _check(args, builtin.spec, builtin.input_shape, out / name)
        except ModelError as exc:
            print(f"model: {name}: {exc}", file=sys.stderr)
            rows.append([name, "error", "-", "-", "-", "-", "-", str(exc)])
            status = 2
            continue
        print(_verdict(report))
        _print_kept(report)
        status = max(status, 1 if report["verdict"] == "fail" else 0)
        rows.append(_summary_row(name, report))
    header = ["model", "verdict", "layers/pairs", "checks", "violations", "worst error/bound", "largest K", "seconds"]
    text = "\n".join(["# linconv model check: built-in models", "", *table(header, rows), ""])
    from linconv.core.fileio import write_text_atomic

    write_text_atomic(out / "summary.md", text)
    print(text)
    print(f"wrote {out / 'summary.md'} and one report per model under {out}")
    return status


def _summary_row(name: str, report: dict[str, Any]) -> list[str]:
    t = report["totals"]
    ks = [r["reduction_length"] for layer in report["layers"] for r in layer["relations"] if "holds" in r]
    return [
        name,
        report["verdict"],
        str(t["targets"]),
        str(t["checks"]),
        str(t["violations"]),
        fmt_ratio(t["worst_ratio"]),
        f"{max(ks, default=0):,}",
        f"{report['elapsed_s']:.1f}",
    ]


def run(args: argparse.Namespace) -> int:
    try:
        return _builtin(args) if args.builtin else _single(args)
    except ModelError as exc:
        print(f"model: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"model: cannot write the report: {exc}", file=sys.stderr)
        return 2
