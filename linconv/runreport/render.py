"""Render a run report as Markdown (report.md) and as the short table that closes the pytest output."""

from __future__ import annotations

from typing import Any

from linconv.runreport.completeness import describe
from linconv.runreport.markdown import fmt_optional, fmt_ratio, fmt_time, table
from linconv.runreport.schema import tally_execution, tally_mode

__all__ = ["reading", "render_markdown", "summary_lines"]


def reading(pair: str, row: dict[str, Any]) -> str:
    """In words: which side of ``A/B`` is faster and by how much; 'within spread' when the
    interquartile range of the paired ratios contains 1."""
    a, b = pair.split("/")
    if row["q1"] <= 1 <= row["q3"] and row["count"] > 1:
        return "within spread"
    median = row["median"]
    return f"{b} {median:.2g}x faster" if median >= 1 else f"{a} {1 / median:.2g}x faster"


def _where(row: dict[str, Any]) -> str:
    """Device, precision mode and execution lane of a row, in words (eager goes unsaid)."""
    lane = tally_execution(row)
    return f"{row['device']} ({row['mode']})" + ("" if lane == "eager" else f" {lane}")


def _pooled(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report["ratios"] if r["dtype"] == "all" and r["size_bucket"] == "all"]


def _describe_machine(machine: dict[str, Any]) -> str:
    gpus = ", ".join(machine.get("gpus", [])) or "none"
    return (
        f"{machine.get('cpu_model')} ({machine.get('cpu_capability')}), {machine.get('cpu_count')} CPUs, GPUs: {gpus}"
    )


def _header(report: dict[str, Any]) -> list[str]:
    env = report["environment"]
    return [
        "# linconv run report",
        "",
        f"torch {env['torch']} · Python {env['python']} · Hypothesis profile `{env['hypothesis_profile']}` · "
        f"{env['threads']} threads (timings: {env.get('timing_threads', '?')}) · created {report.get('created', '?')}",
        "",
        *_completeness(report),
    ]


def _devices(env: dict[str, Any]) -> str:
    """The devices that ran with their names, then each absent one with why (a report written
    before ``devices_absent`` lists every device asked for, present or not)."""
    ran = ", ".join(f"{d} ({n})" for d, n in env.get("devices", {}).items()) or "none"
    absent = "; ".join(f"{d} absent: {why}" for d, why in env.get("devices_absent", {}).items())
    return f"{ran}; {absent}" if absent else ran


def _completeness(report: dict[str, Any]) -> list[str]:
    """A run that did not finish says so first: its counts answer a smaller question."""
    completeness = report.get("completeness")
    if completeness is not None and completeness["status"] == "complete":
        return [f"Run: {describe(completeness)}.", ""]
    return [f"**Incomplete run: {describe(completeness)}.** Merge and gate refuse this report.", ""]


def _environment(report: dict[str, Any]) -> list[str]:
    env, machine = report["environment"], report["machine"]
    rows = [
        ["devices", _devices(env)],
        ["machine", _describe_machine(machine)],
        ["machine fingerprint", f"`{machine['fingerprint']}`"],
        ["precision flags", ", ".join(f"{k}={v}" for k, v in env.get("precision_flags", {}).items())],
        ["CUDA / cuDNN", f"{env.get('cuda')} / {env.get('cudnn')}"],
        ["dtypes, max numel", f"{', '.join(env.get('dtypes', []))}; {env.get('max_numel')}"],
        ["xdist workers", str(env.get("xdist_workers", 0))],
        ["platform", str(env.get("platform"))],
        ["LINCONV_* variables", ", ".join(f"{k}={v}" for k, v in env.get("linconv_env", {}).items()) or "none"],
    ]
    for shard in report.get("shards", []):
        env_text = ", ".join(f"{k}={v}" for k, v in shard.get("linconv_env", {}).items()) or "no LINCONV_*"
        rows.append(
            [
                "merged from",
                f"`{shard['source']}`: profile {shard['hypothesis_profile']}, {env_text}, "
                f"wall {fmt_optional(shard.get('wall_s'), '.0f')} s, machine `{shard['machine_fingerprint']}`",
            ]
        )
    return [*table(["", ""], rows), ""]


def _share(part: float | None, whole: float | None) -> float | None:
    return None if part is None or not whole else 100 * part / whole


def _relations(report: dict[str, Any]) -> list[str]:
    rows = []
    for name, entry in report["relations"].items():
        t, run = entry["totals"], entry.get("run", {})
        rows.append(
            [
                name,
                str(t["examples"]),
                str(t["violations"]),
                str(t.get("exact", "-")),
                fmt_ratio(t["worst_ratio"]),
                fmt_optional(run.get("seconds"), ".1f"),
                fmt_optional(run.get("examples_per_s"), ".2f"),
                fmt_optional(_share(run.get("suite_s"), run.get("seconds")), ".0f"),
                fmt_optional(_share(run.get("timing_s"), run.get("seconds")), ".0f"),
                ", ".join(entry["formulations"]) if entry.get("timed") else "not timed",
            ]
        )
    header = ["relation", "examples", "violations", "exact lane", "worst error/bound", "test s", "examples/s",
              "suite's own cost %", "timing %", "timed formulations"]  # fmt: skip
    by_dtype = [
        [name, r["device"], tally_mode(r), tally_execution(r), r["dtype"], str(r["examples"]), str(r["violations"]),
         fmt_ratio(r["worst_ratio"])]
        for name, entry in report["relations"].items()
        for r in entry["by_device_dtype"]
    ]  # fmt: skip
    return [
        "## Relations",
        "",
        *table(header, rows),
        "",
        "Violations count examples whose outcome was wrong (a negative control counts when it did *not* fire). "
        "Worst error/bound is over examples expected to hold; ≤ 1 passes. Suite's own cost: test time "
        "outside the formulations under test and outside timing (generation, tensors, float64 reference, bound).",
        "",
        "<details><summary>per device, precision mode, execution lane and dtype</summary>",
        "",
        *table(
            ["relation", "device", "mode", "execution", "dtype", "examples", "violations", "worst error/bound"],
            by_dtype,
        ),
        "",
        "</details>",
        "",
    ]


def _drawn_cases(n: int) -> str:
    return f"{n} drawn case" + ("" if n == 1 else "s")


def _rejected(report: dict[str, Any]) -> list[str]:
    """Drawn cases rejected before checking, per relation, lane, dtype and reason."""
    rows = report.get("rejected") or []
    if not rows:
        return []
    body = [
        [r["relation"], r["device"], r["mode"], r["execution"], r["dtype"], r["reason"], str(r["cases"])]
        for r in sorted(rows, key=lambda r: (-r["cases"], r["relation"], r["execution"], r["dtype"]))
    ]
    return [
        "## Cases rejected before checking",
        "",
        f"{_drawn_cases(sum(r['cases'] for r in rows))} rejected and not checked: inputs of a known upstream "
        "bug (avoided beforehand by its signature, or compiled and recognised by its error) or a dtype the device "
        "lacks. They are not examples: Hypothesis drew others in their place, and a test whose every drawn case "
        "was rejected is skipped with these reasons, never passed.",
        "",
        *table(["relation", "device", "mode", "execution", "dtype", "reason", "cases"], body),
        "",
    ]


def _faster(report: dict[str, Any], plot_name: str | None) -> list[str]:
    rows = [
        [r["relation"], _where(r), r["pair"].replace("/", " / "), r["dtype"], r["phase"],
         f"{r['median']:.3g}", f"{r['q1']:.3g} - {r['q3']:.3g}", str(r["count"]), reading(r["pair"], r)]
        for r in report["ratios"]
        if r["size_bucket"] == "all"
    ]  # fmt: skip
    lines = [
        "## Which formulation is faster",
        "",
        "Median of the per-example time ratio A / B (same data, same run) over all sizes, for all dtypes "
        "together and for each dtype; IQR is its interquartile range. > 1: B is faster.",
        "",
        *table(["relation", "device", "A / B", "dtype", "phase", "median ratio", "IQR", "n", "reading"], rows),
        "",
    ]
    return lines + ([f"![time ratio against problem size]({plot_name})", ""] if plot_name else [])


def _by_size(report: dict[str, Any]) -> list[str]:
    rows = [
        [r["relation"], _where(r), r["pair"].replace("/", " / "), r["phase"], r["size_bucket"],
         f"{r['median']:.3g}", f"{r['q1']:.3g} - {r['q3']:.3g}", str(r["count"])]
        for r in report["ratios"]
        if r["dtype"] == "all" and r["size_bucket"] != "all"
    ]  # fmt: skip
    return [
        "## Ratio by problem size",
        "",
        "Size: multiply-adds of the linear map, in buckets [2^k, 2^(k+2)).",
        "",
        *table(["relation", "device", "A / B", "phase", "size", "median ratio", "IQR", "n"], rows),
        "",
    ]


def _timings(report: dict[str, Any]) -> list[str]:
    rows = [
        [r["relation"], r["formulation"], _where(r), r["dtype"], r["phase"], r["size_bucket"],
         fmt_time(r["median_s"]), fmt_time(r["iqr_s"]), str(r["count"])]
        for r in report["timings"]
    ]  # fmt: skip
    lines = [
        "## Timings per formulation",
        "",
        "Seconds per call: forward without autograd; backward of one recorded forward. "
        "Median and IQR over the examples in each cell.",
        "",
        "<details><summary>all timing rows</summary>",
        "",
        *table(["relation", "formulation", "device", "dtype", "phase", "size", "median", "IQR", "n"], rows),
        "",
        "</details>",
        "",
    ]
    if report.get("timing_errors"):
        lines += ["## Timing errors (did not affect any check)", ""]
        lines += [f"- {e}" for e in report["timing_errors"][:20]] + [""]
    return lines


def _compiled(report: dict[str, Any]) -> list[str]:
    """What compiling cost per relation and compiled lane, and each lane's configuration in force."""
    rows = []
    for name, entry in report["relations"].items():
        lanes: dict[str, dict[str, float]] = {}
        for r in entry["by_device_dtype"]:
            if tally_execution(r) == "eager":
                continue
            into = lanes.setdefault(f"{r['device']} ({r['mode']}) {tally_execution(r)}", {"examples": 0})
            into["examples"] += r["examples"]
            for key, value in r.get("compile", {}).items():
                into[key] = into.get(key, 0) + value
        for where, cost in lanes.items():
            per = cost.get("seconds", 0) / cost["examples"] if cost["examples"] else None
            rows.append([name, where, str(int(cost["examples"])), fmt_optional(cost.get("seconds"), ".1f"),
                         fmt_optional(per, ".2f"), str(int(cost.get("graphs", 0))),
                         str(int(cost.get("graph_breaks", 0))), str(int(cost.get("resets", 0)))])  # fmt: skip
    if not rows:
        return []
    configs = [
        [lane, f"`{cfg.get('torch_compile', {})}`", ", ".join(f"{k}={v}" for k, v in cfg.get("inductor", {}).items()),
         ", ".join(f"{k}={v}" for k, v in cfg.get("dynamo", {}).items())]
        for lane, cfg in report["environment"].get("execution_lanes", {}).items()
    ]  # fmt: skip
    return [
        "## Compiled execution lanes",
        "",
        "Compile time (dynamo, AOTAutograd, inductor; forward and backward graphs) apart from run time: the "
        "timings above are of the compiled code, after the checked call compiled it. Graphs: compiled by dynamo "
        "(each recompile is one more); resets: cache clears forced by the recompile limit.",
        "",
        *table(
            ["relation", "lane", "examples", "compile s", "compile s / example", "graphs", "graph breaks", "resets"],
            rows,
        ),
        "",
        "<details><summary>configuration in force per lane</summary>",
        "",
        *table(["lane", "torch.compile", "inductor", "dynamo"], configs),
        "",
        "</details>",
        "",
    ]


def render_markdown(report: dict[str, Any], plot_name: str | None = "report.png") -> str:
    """report.md: header, environment, relations, cases rejected before checking, compiled lanes,
    which formulation is faster, ratios by size, timings."""
    sections = (
        _header(report),
        _environment(report),
        _relations(report),
        _rejected(report),
        _compiled(report),
        _faster(report, plot_name),
        _by_size(report),
        _timings(report),
    )
    return "\n".join(line for section in sections for line in section)


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The short table that closes the pytest terminal output."""
    pooled = _pooled(report)
    columns = f"{'relation':<28} {'examples':>8} {'viol':>4} {'worst':>7} {'ex/s':>6}"
    lines = [f"{columns}  median time ratio A/B: forward | backward"]
    completeness = report.get("completeness")
    if completeness is None or completeness["status"] != "complete":
        lines.insert(0, f"INCOMPLETE RUN: {describe(completeness)}")
    for name, entry in report["relations"].items():
        t, run = entry["totals"], entry.get("run", {})
        eps = fmt_optional(run.get("examples_per_s"), ".1f")
        prefix = f"{name:<28} {t['examples']:>8} {t['violations']:>4} {fmt_ratio(t['worst_ratio']):>7} {eps:>6}  "
        rows = [r for r in pooled if r["relation"] == name]
        if not rows:
            timed = entry.get("timed") and entry["formulations"]
            lines.append(prefix + (f"{', '.join(timed)} timed (nothing to compare)" if timed else "not timed"))
            continue
        cells: dict[tuple[str, str, str, str], dict[str, str]] = {}
        for r in rows:
            cell = cells.setdefault((r["pair"], r["device"], r["mode"], tally_execution(r)), {})
            cell[r["phase"]] = f"{r['median']:.2f}"
        for i, ((pair, device, mode, lane), phases) in enumerate(cells.items()):
            where = "/".join([device] + [w for w in (mode, lane) if w not in ("default", "eager")])
            text = f"{pair} on {where}: {phases.get('forward', '-')} | {phases.get('backward', '-')}"
            lines.append((prefix if i == 0 else " " * len(prefix)) + text)
    rejected = report.get("rejected") or []
    if rejected:
        reasons: dict[str, int] = {}
        for r in rejected:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + r["cases"]
        top = ", ".join(f"{why} ({n})" for why, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
        more = f" and {len(reasons) - 3} more reasons" if len(reasons) > 3 else ""
        lines.append(f"{_drawn_cases(sum(reasons.values()))} rejected before checking: {top}{more}")
    return lines
