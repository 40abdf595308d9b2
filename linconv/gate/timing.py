"""The timing half of the verdict: is a formulation (or a benchmark) slower in the candidate?"""

from __future__ import annotations

from typing import Any

from linconv.gate.model import Gate, Row, Thresholds, location
from linconv.runreport.markdown import fmt_time
from linconv.timing import quantiles

__all__ = ["compare_benchmarks", "judge_timing", "timings"]


def judge_timing(
    base_median: float, base_iqr: float, cand_median: float, cand_iqr: float, thresholds: Thresholds
) -> str:
    """'slower', 'faster' or 'same': a change counts when it exceeds both the noise (k times the mean
    IQR of the two runs) and the minimum relative margin; either alone is not enough."""
    noise = thresholds.k * (base_iqr + cand_iqr) / 2
    if cand_median - base_median > noise and cand_median > base_median * (1 + thresholds.margin):
        return "slower"
    if base_median - cand_median > noise and base_median > cand_median * (1 + thresholds.margin):
        return "faster"
    return "same"


def _machine_difference(base: dict[str, Any], cand: dict[str, Any]) -> str:
    fields = ("cpu_model", "cpu_capability", "cpu_count", "gpus", "threads")
    diffs = [f"{name} {base.get(name)!r} vs {cand.get(name)!r}" for name in fields if base.get(name) != cand.get(name)]
    return "; ".join(diffs) or f"fingerprint {base['fingerprint']} vs {cand['fingerprint']}"


def _pooled(
    base: dict[tuple[str, str, str], list[float]], cand: dict[tuple[str, str, str], list[float]], min_count: int
) -> tuple[list[float], list[float], int]:
    """Both runs' timings of the cells each timed at least ``min_count`` times, each divided by the
    baseline's median in its cell: sizes, dtypes and phases then pool on one scale, where the
    baseline's median is about 1 and the candidate's is the typical time ratio."""
    b_pool: list[float] = []
    c_pool: list[float] = []
    cells = 0
    for cell in sorted(base.keys() & cand.keys()):
        if len(base[cell]) < min_count or len(cand[cell]) < min_count:
            continue
        reference = quantiles(base[cell])[1]
        b_pool += [v / reference for v in base[cell]]
        c_pool += [v / reference for v in cand[cell]]
        cells += 1
    return b_pool, c_pool, cells


def timings(gate: Gate) -> None:
    b_machine, c_machine = gate.baseline.report["machine"], gate.candidate.report["machine"]
    base, cand = gate.baseline.times, gate.candidate.times
    gate.timing_compared = b_machine["fingerprint"] == c_machine["fingerprint"]
    if not gate.timing_compared:
        gate.notes.append(
            "timings not compared: the runs come from different machines ("
            + _machine_difference(b_machine, c_machine)
            + "); correctness compared alone"
        )
    t = gate.thresholds
    for key in sorted(base.keys() | cand.keys()):
        relation, formulation, device, mode = key
        where = location(device, mode)
        if not gate.timing_compared:
            gate.rows.append(Row(relation, formulation, where, "", "", "", "not compared (different machines)"))
            continue
        b_pool, c_pool, cells = _pooled(base.get(key, {}), cand.get(key, {}), t.min_count)
        if not cells:
            verdict = f"not compared (no cell with ≥ {t.min_count} timings in both)"
            gate.rows.append(Row(relation, formulation, where, "", "", "", verdict))
            continue
        b_q1, b_med, b_q3 = quantiles(b_pool)
        c_q1, c_med, c_q3 = quantiles(c_pool)
        judged = judge_timing(b_med, b_q3 - b_q1, c_med, c_q3 - c_q1, t)
        verdict = {"slower": "**slower**", "faster": "faster", "same": "same within noise"}[judged]
        ratio = c_med / b_med
        if judged == "slower":
            gate.reasons.append(
                f"{relation} / {formulation} on {where}: slower, x{ratio:.2f} the baseline's time "
                f"(> 1 + {t.margin:g}, and by {c_med - b_med:.2f} > k·mean IQR = "
                f"{t.k * ((b_q3 - b_q1) + (c_q3 - c_q1)) / 2:.2f}; {cells} cells)"
            )
        gate.rows.append(
            Row(
                relation,
                formulation,
                where,
                f"{b_med:.2f} (IQR {b_q3 - b_q1:.2f}, n {len(b_pool)})",
                f"{c_med:.2f} (IQR {c_q3 - c_q1:.2f}, n {len(c_pool)})",
                f"{ratio:.2f}",
                f"{verdict} ({cells} cells)",
                judged == "slower",
            )
        )


def _bench_fingerprint(data: dict[str, Any]) -> str | None:
    return (data["machine_info"].get("linconv_machine") or {}).get("fingerprint")


def compare_benchmarks(gate: Gate, base: dict[str, Any], cand: dict[str, Any], names: tuple[str, str]) -> None:
    """Add the comparison of two pytest-benchmark JSONs (same rule; rounds are the count) to ``gate``."""
    b_print, c_print = _bench_fingerprint(base), _bench_fingerprint(cand)
    if b_print is None or b_print != c_print:
        why = "no linconv machine identity in machine_info" if None in (b_print, c_print) else "different machines"
        gate.bench_notes.append(f"benchmarks not compared: {why} ({names[0]}, {names[1]})")
        return
    t = gate.thresholds
    b_stats = {b["fullname"]: b["stats"] for b in base["benchmarks"]}
    c_stats = {b["fullname"]: b["stats"] for b in cand["benchmarks"]}
    slower_informational = 0
    only = sorted(b_stats.keys() ^ c_stats.keys())
    if only:
        gate.bench_notes.append(f"{len(only)} benchmark(s) in one file only, not compared: {', '.join(only[:5])}")
    for name in sorted(b_stats.keys() & c_stats.keys()):
        b, c = b_stats[name], c_stats[name]
        label = name.split("::", 1)[-1]
        if min(b["rounds"], c["rounds"]) < t.min_count:
            gate.bench_rows.append([label, "", "", "", f"not compared (fewer than {t.min_count} rounds)"])
            continue
        judged = judge_timing(b["median"], b["iqr"], c["median"], c["iqr"], t)
        verdict = {"slower": "**slower**", "faster": "faster", "same": "same within noise"}[judged]
        if judged == "slower" and not t.fail_on_benchmarks:
            verdict, slower_informational = "slower (does not gate)", slower_informational + 1
        elif judged == "slower":
            gate.reasons.append(
                f"benchmark {label}: slower, {fmt_time(b['median'])} -> {fmt_time(c['median'])} "
                f"(x{c['median'] / b['median']:.2f})"
            )
        gate.bench_rows.append(
            [
                label,
                f"{fmt_time(b['median'])} (IQR {fmt_time(b['iqr'])}, {b['rounds']} rounds)",
                f"{fmt_time(c['median'])} (IQR {fmt_time(c['iqr'])}, {c['rounds']} rounds)",
                f"{c['median'] / b['median']:.2f}",
                verdict,
            ]
        )
    if slower_informational:
        gate.bench_notes.append(
            f"{slower_informational} benchmark(s) slower beyond their own spread; they do not fail the gate without "
            "--fail-on-benchmarks: a benchmark's rounds run back to back in one short window, so its IQR does not "
            "see load that changes between windows (docs/gating.md)"
        )
