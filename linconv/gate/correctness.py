"""The correctness half of the verdict: property violations, the regression corpus, failing tests,
and notes on what differs between the two runs' environments."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from linconv.gate.model import DRIFT_FLOOR, JUNIT_XML, Gate, Row, location
from linconv.runreport import OUTCOMES
from linconv.runreport.completeness import describe
from linconv.runreport.markdown import fmt_ratio
from linconv.runreport.schema import ALL_MODES, tally_execution, tally_mode

__all__ = ["compile_notes", "correctness", "environment_notes", "known_bugs", "regression_rows", "tests"]

_FAILING = ("failed", "xfailed")
_HOLDING = ("passed", "xpassed")


_Key = tuple[str, str, str, str]  # relation, device, precision mode, execution lane


def _tallies(report: dict[str, Any]) -> dict[_Key, dict[str, dict[str, Any]]]:
    """(relation, device, mode, execution lane) -> dtype -> tally row (a compiled lane is judged
    apart from the eager one: a report without lanes is all eager)."""
    out: dict[_Key, dict[str, dict[str, Any]]] = defaultdict(dict)
    for name, entry in report["relations"].items():
        for row in entry["by_device_dtype"]:
            out[(name, row["device"], tally_mode(row), tally_execution(row))][row["dtype"]] = row
    return out


def _pooled(rows: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Several modes' dtype -> row tallies as one (counts add, the worst ratio is the max)."""
    pooled: dict[str, dict[str, Any]] = {}
    for by_dtype in rows:
        for dtype, row in by_dtype.items():
            into = pooled.setdefault(dtype, {"examples": 0, "violations": 0, "worst_ratio": 0.0})
            into["examples"] += row["examples"]
            into["violations"] += row["violations"]
            into["worst_ratio"] = max(float(into["worst_ratio"]), float(row["worst_ratio"]))
    return pooled


def _like_with_like(gate: Gate, base: dict, cand: dict) -> None:
    """Where one report pools a device's precision modes (written before linconv kept them apart)
    and the other keeps them apart, pool the other's too: the two then count the same examples."""
    for one, other in ((base, cand), (cand, base)):
        for relation, device, _, lane in [k for k in one if k[2] == ALL_MODES]:
            split = [k for k in other if k[:2] == (relation, device) and k[3] == lane and k[2] != ALL_MODES]
            if split:
                other[(relation, device, ALL_MODES, lane)] = _pooled([other.pop(k) for k in split])
                gate.notes.append(
                    f"{relation} on {device}: one report pools the precision modes, so the gate compares "
                    f"{', '.join(k[2] for k in split)} pooled"
                )


def _tally_text(rows: dict[str, dict[str, Any]]) -> tuple[str, float]:
    violations = sum(r["violations"] for r in rows.values())
    examples = sum(r["examples"] for r in rows.values())
    worst = max((float(r["worst_ratio"]) for r in rows.values()), default=0.0)
    return f"{violations} viol. / {examples} ex., worst {fmt_ratio(worst)}", worst


def _reproduced(report: dict[str, Any]) -> dict[str, bool] | None:
    rows = report.get("known_bugs")
    return None if rows is None else {row["name"]: row["reproduced"] for row in rows}


def _unexplained(row: dict[str, Any], baseline_bugs: dict[str, bool]) -> int:
    """A tally row's violations, less those on inputs of a known bug present in the baseline: the
    same upstream bug on both sides is not a new violation, whatever the candidate's reproducer said."""
    explained = sum(n for bug, n in row.get("known_bug_violations", {}).items() if baseline_bugs.get(bug))
    return row["violations"] - explained


def known_bugs(gate: Gate) -> None:
    """One row per known upstream bug: present in both (not blocking), fixed in the candidate (good
    news), newly present (blocking), absent in both."""
    base, cand = _reproduced(gate.baseline.report), _reproduced(gate.candidate.report)
    if base is None or cand is None:
        missing = " and ".join(side for side, bugs in (("baseline", base), ("candidate", cand)) if bugs is None)
        gate.notes.append(f"known upstream bugs not compared: the {missing} report has no 'known_bugs' section")
        return
    for name in sorted(base.keys() | cand.keys()):
        b, c = base.get(name), cand.get(name)
        b_text = "not tracked" if b is None else ("reproduces" if b else "absent")
        c_text = "not tracked" if c is None else ("reproduces" if c else "absent")
        if c and not b:
            verdict, fails = "**newly present**", True
            gate.reasons.append(f"known upstream bug {name} reproduces in the candidate, not in the baseline")
        elif b and c:
            verdict, fails = "still present (not blocking)", False
        elif b and c is not None:
            verdict, fails = "fixed in the candidate", False
            gate.notes.append(f"known upstream bug {name} no longer reproduces in the candidate: good news; "
                              "its inputs are checked there again")  # fmt: skip
        else:
            verdict, fails = "absent", False
        gate.rows.append(Row(name, "(known bug)", "", b_text, c_text, "", verdict, fails))


def _why_not_run(gate: Gate, device: str) -> str:
    """Why the candidate has no tally for a device the baseline checked."""
    absent = gate.candidate.report["environment"].get("devices_absent", {})
    return f"absent in the candidate's run ({absent[device]})" if device in absent else "not run by the candidate"


def correctness(gate: Gate) -> None:
    base, cand = _tallies(gate.baseline.report), _tallies(gate.candidate.report)
    baseline_bugs = _reproduced(gate.baseline.report) or {}
    _like_with_like(gate, base, cand)
    t = gate.thresholds
    for key in sorted(base.keys() | cand.keys()):
        relation, device, mode, lane = key
        where = location(device, mode, lane)
        if key not in cand:
            why = _why_not_run(gate, device)
            gate.rows.append(
                Row(relation, "(correctness)", where, _tally_text(base[key])[0], "not run", "", "**not run**", True)
            )
            gate.reasons.append(f"{relation} on {where}: checked by the baseline, {why}")
            continue
        c_text, c_worst = _tally_text(cand[key])
        b_rows = base.get(key, {})
        new = [
            f"{dtype} ({_unexplained(row, baseline_bugs)})"
            for dtype, row in sorted(cand[key].items())
            if _unexplained(row, baseline_bugs) and not b_rows.get(dtype, {}).get("violations")
        ]
        if key not in base:
            b_text, b_worst = "not run", 0.0
            gate.notes.append(f"{relation} on {where}: new in the candidate's report, no baseline to compare with")
        else:
            b_text, b_worst = _tally_text(b_rows)
        ratio = c_worst / b_worst if b_worst > 0 else (1.0 if c_worst == 0 else math.inf)
        ratio_text = fmt_ratio(ratio) if key in base else ""
        if new:
            verdict, fails = f"**new violation**: {', '.join(new)}", True
            gate.reasons.append(f"{relation} on {where}: new violation(s) in {', '.join(new)} (baseline: none)")
        elif any(row["violations"] for row in cand[key].values()) and not any(
            _unexplained(row, baseline_bugs) for row in cand[key].values()
        ):
            verdict, fails = "violated on a known bug present in the baseline", False
            gate.notes.append(f"{relation} on {where}: violations on inputs of a known upstream bug present in the "
                              "baseline (not new)")  # fmt: skip
        elif any(row["violations"] for row in cand[key].values()):
            verdict, fails = "violated, as in the baseline", False
            gate.notes.append(f"{relation} on {where}: violated in both runs (not new; still a failing property)")
        elif key in base and ratio > t.drift and c_worst >= DRIFT_FLOOR:
            verdict, fails = f"drift: worst error/bound x{fmt_ratio(ratio)}", t.fail_on_drift
            if fails:
                gate.reasons.append(
                    f"{relation} on {where}: worst error/bound drifted x{fmt_ratio(ratio)} (--fail-on-drift)"
                )
        else:
            verdict, fails = "ok", False
        gate.rows.append(Row(relation, "(correctness)", where, b_text, c_text, ratio_text, verdict, fails))


def _outcome_counts(outcomes: list[str]) -> str:
    counts = {name: outcomes.count(name) for name in OUTCOMES if outcomes.count(name)}
    return ", ".join(f"{n} {name}" for name, n in counts.items()) or "none"


def regression_rows(gate: Gate) -> None:
    base_rows = gate.baseline.report.get("regressions")
    cand_rows = gate.candidate.report.get("regressions")
    missing = [side for side, rows in (("baseline", base_rows), ("candidate", cand_rows)) if rows is None]
    if missing:
        gate.notes.append(
            f"regression corpus not compared: the {' and '.join(missing)} report has no 'regressions' section "
            "(written by a linconv before it recorded them)"
        )
        return
    base = {(r["id"], r["relation"], r["device"], r["mode"]): r["outcome"] for r in base_rows}
    cand = {(r["id"], r["relation"], r["device"], r["mode"]): r["outcome"] for r in cand_rows}
    groups: dict[tuple[str, str], list[tuple[str, str, str]]] = defaultdict(list)
    for key in base.keys() | cand.keys():
        groups[(key[1], location(key[2], key[3]))].append(key)
    skipped_everywhere = set()
    for (relation, where), keys in sorted(groups.items()):
        if all(base.get(k) == cand.get(k) == "skipped" for k in keys):
            skipped_everywhere.add(where)  # a device neither run has: one note, not a row per relation
            continue
        new_failures, fixed = [], []
        for key in sorted(keys):
            b, c = base.get(key, "not run"), cand.get(key, "not run")
            if c in _FAILING and b not in _FAILING:
                kind = "known upstream bug (xfail)" if c == "xfailed" else "fails"
                new_failures.append(f"{key[0]} {kind}")
            elif b in _HOLDING and c == "not run":  # a case the candidate dropped proves nothing
                new_failures.append(f"{key[0]} not run")
            elif b in _FAILING and c in _HOLDING:
                fixed.append(key[0])
            elif b in _HOLDING and c == "skipped":
                gate.notes.append(
                    f"regression {key[0]} ({relation}) on {where}: passed in the baseline, skipped in the candidate"
                )
        b_text = _outcome_counts([base[k] for k in keys if k in base])
        c_text = _outcome_counts([cand[k] for k in keys if k in cand])
        if new_failures:
            verdict = "**new failure**: " + ", ".join(new_failures)
            gate.reasons.append(
                f"regression corpus, {relation} on {where}: " + ", ".join(new_failures) + " (passed in the baseline)"
            )
        elif fixed:
            verdict = "fixed: " + ", ".join(fixed)
        else:
            verdict = "ok"
        if fixed:
            gate.notes.append(
                f"regression case(s) {', '.join(fixed)} ({relation}) on {where} hold under the candidate: "
                "torch may have fixed them"
            )
        gate.rows.append(Row(relation, "(regression corpus)", where, b_text, c_text, "", verdict, bool(new_failures)))
    if skipped_everywhere:
        gate.notes.append(f"regression corpus skipped in both runs on {', '.join(sorted(skipped_everywhere))}")


def tests(gate: Gate) -> None:
    base, cand = gate.baseline.failed_tests, gate.candidate.failed_tests
    if base is None or cand is None:
        gate.notes.append(
            f"failing tests not compared: no {JUNIT_XML} beside "
            + " and ".join(str(run.path) for run in (gate.baseline, gate.candidate) if run.failed_tests is None)
        )
        return
    regression_tests = "test_regressions.test_regression_case["  # judged per case above
    new = sorted(t for t in cand - base if regression_tests not in t)
    for test in new:
        gate.reasons.append(f"test {test} fails in the candidate (passed in the baseline)")
    if cand & base:
        gate.notes.append(f"{len(cand & base)} test(s) fail in both runs (not new)")


def _drawn(report: dict[str, Any]) -> dict[str, list[tuple[str, str, str, str, int]]]:
    """Per relation: examples per (device, mode, execution lane, dtype) — what the derandomised
    profile should make equal."""
    return {
        name: sorted(
            (r["device"], tally_mode(r), tally_execution(r), r["dtype"], r["examples"])
            for r in entry["by_device_dtype"]
        )
        for name, entry in report["relations"].items()
    }


def _compile_seconds(report: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Per compiled execution lane: (seconds compiling, graphs compiled), summed over relations."""
    out: dict[str, tuple[float, float]] = {}
    for entry in report["relations"].values():
        for row in entry["by_device_dtype"]:
            cost = row.get("compile")
            if cost:
                seconds, graphs = out.get(tally_execution(row), (0.0, 0.0))
                out[tally_execution(row)] = (seconds + cost.get("seconds", 0.0), graphs + cost.get("graphs", 0))
    return out


def compile_notes(gate: Gate) -> None:
    """Compile time per graph, baseline vs candidate, per compiled lane: reported, never failing (it
    depends on the compile caches and the machine's load as much as on torch)."""
    base, cand = _compile_seconds(gate.baseline.report), _compile_seconds(gate.candidate.report)
    for lane in sorted(base.keys() & cand.keys()):
        (b_s, b_n), (c_s, c_n) = base[lane], cand[lane]
        if b_n and c_n:
            gate.notes.append(
                f"compile time in {lane}: {b_s / b_n:.2f} s per graph in the baseline ({b_n:.0f} graphs), "
                f"{c_s / c_n:.2f} s in the candidate ({c_n:.0f} graphs); reported only"
            )


def environment_notes(gate: Gate) -> None:
    for side, run in (("baseline", gate.baseline), ("candidate", gate.candidate)):
        completeness = run.report.get("completeness")
        if completeness is None or completeness["status"] != "complete":
            gate.notes.append(f"the {side} report is not complete, compared anyway (--allow-incomplete): "
                              f"{describe(completeness)}")  # fmt: skip
    b_env, c_env = gate.baseline.report["environment"], gate.candidate.report["environment"]
    profiles = {b_env["hypothesis_profile"], c_env["hypothesis_profile"]}
    if profiles != {"ci"}:
        gate.notes.append(
            f"Hypothesis profiles {b_env['hypothesis_profile']!r} / {c_env['hypothesis_profile']!r}: only the "
            "derandomised 'ci' profile makes both runs draw the same examples"
        )
    for name in ("max_numel", "dtypes", "devices", "devices_absent"):
        if name == "devices_absent" and not (name in b_env and name in c_env):
            continue  # a report written before linconv recorded absent devices
        if b_env.get(name) != c_env.get(name):
            gate.notes.append(
                f"environment.{name} differs ({b_env.get(name)!r} vs {c_env.get(name)!r}): "
                "the runs drew different examples"
            )
    b_drawn, c_drawn = _drawn(gate.baseline.report), _drawn(gate.candidate.report)
    differ = sorted(name for name in b_drawn.keys() & c_drawn.keys() if b_drawn[name] != c_drawn[name])
    if differ and profiles == {"ci"}:
        gate.notes.append(
            f"the runs drew different examples in {', '.join(differ)} (examples per dtype differ), although the "
            "derandomised 'ci' profile should draw the same: those rows compare different draws"
        )
    b_flags, c_flags = b_env.get("precision_flags") or {}, c_env.get("precision_flags") or {}
    changed = sorted(k for k in b_flags.keys() & c_flags.keys() if b_flags[k] != c_flags[k])
    if changed:
        gate.notes.append(
            "precision flags differ: " + ", ".join(f"{k} {b_flags[k]!r} -> {c_flags[k]!r}" for k in changed)
        )
    one_sided = sorted(b_flags.keys() ^ c_flags.keys())
    if one_sided:  # a flag one linconv (or torch) records and the other does not
        gate.notes.append(f"precision flags recorded by one run only: {', '.join(one_sided)}")
