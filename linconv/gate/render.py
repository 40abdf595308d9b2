"""The verdict as Markdown: one table (relation x formulation x device), reasons, notes, thresholds."""

from __future__ import annotations

from linconv.gate.model import Gate, Run
from linconv.runreport.markdown import table

__all__ = ["render_markdown"]


def _side(run: Run) -> str:
    env, created = run.report["environment"], run.report.get("created", "?")
    completeness = run.report.get("completeness")
    incomplete = "" if completeness and completeness["status"] == "complete" else ", **INCOMPLETE RUN**"
    return f"`{run.path}` (torch {env['torch']}, profile `{env['hypothesis_profile']}`, created {created}{incomplete})"


def render_markdown(gate: Gate) -> str:
    b_env, c_env = gate.baseline.report["environment"], gate.candidate.report["environment"]
    title = "PASS" if gate.passed else "FAIL"
    lines = [f"## Torch upgrade gate: {title} — torch {b_env['torch']} → {c_env['torch']}", ""]
    for label, runs in (("baseline", gate.baselines), ("candidate", gate.candidates)):
        lines += [f"- {label}{'' if len(runs) == 1 else f' run {i + 1}'}: {_side(run)}" for i, run in enumerate(runs)]
    if len(gate.baselines) > 1 or len(gate.candidates) > 1:
        lines.append("- runs made in ABBA order: timings pooled per side, run-to-run noise measured between twins")
    machine = gate.baseline.report["machine"]
    if gate.timing_compared:
        gpus = ", ".join(machine.get("gpus", [])) or "no GPU"
        lines.append(
            f"- machine: the same for both (`{machine['fingerprint']}`, {machine.get('cpu_model')}, {gpus}): "
            "timings compared"
        )
    else:
        lines.append("- machine: different: timings not compared, correctness alone")
    lines.append("")
    if gate.reasons:
        lines += ["**Why it fails:**", ""] + [f"- {reason}" for reason in gate.reasons] + [""]
    else:
        lines += [
            "Nothing got worse: no new violation, no new failing regression case or test, "
            + (
                "no formulation slower beyond the noise threshold."
                if gate.timing_compared
                else "(timings not compared)."
            ),
            "",
        ]
    rows = [[r.relation, r.formulation, r.device, r.baseline, r.candidate, r.ratio, r.verdict] for r in gate.rows]
    lines += table(["relation", "formulation", "device", "baseline", "candidate", "ratio", "verdict"], rows)
    lines += [
        "",
        "Correctness rows: violations / examples and the worst error/bound (≤ 1 holds); ratio: candidate's worst "
        "over the baseline's. Known-bug rows: whether each known upstream bug's reproducer failed on each side. "
        "Formulation rows: the candidate's time over the baseline's, in pacer units, the weighted geometric mean "
        "over the (dtype, phase, size) cells both sides timed, with a two-standard-error interval.",
        "",
    ]
    if gate.bench_rows or gate.bench_notes:
        lines += ["### pytest-benchmark", ""]
        if gate.bench_rows:
            lines += table(["benchmark", "baseline median", "candidate median", "ratio", "verdict"], gate.bench_rows)
            lines += [
                "",
                "Ratio: candidate over baseline in pacer units (the medians are seconds, first run of each side); "
                "a group row pools one formulation's benchmarks at every shape and batch.",
                "",
            ]
        lines += [f"- {note}" for note in gate.bench_notes] + ([""] if gate.bench_notes else [])
    if gate.notes:
        lines += ["**Notes:**", ""] + [f"- {note}" for note in gate.notes] + [""]
    lines += [f"Thresholds: {gate.thresholds.describe()}", ""]
    return "\n".join(lines)
