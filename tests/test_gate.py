"""The torch upgrade gate: verdicts on small synthetic reports (new violation, failing regression
case, failing test, slowdown, noise, other machine, drift), refusal of unusable files with a message
naming the file and the field, the outputs (stdout, --out, $GITHUB_STEP_SUMMARY), and the
``regressions`` section the report plugin records."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from linconv.__main__ import main
from linconv.gate import Thresholds
from linconv.gate.stats import cell_shift, run_noise, verdict
from linconv.plugins.report import _outcome, _regression_rows, _ReportState

FINGERPRINT = "b76c729ff81ca5ec"


def _timing(formulation: str, phase: str, bucket: str, median: float, iqr: float, count: int = 8) -> dict:
    key = f"pointwise|{formulation}|cpu|default|float32|{phase}|{bucket}"
    return {
        "key": key,
        "relation": "pointwise",
        "formulation": formulation,
        "device": "cpu",
        "mode": "default",
        "dtype": "float32",
        "phase": phase,
        "size_bucket": bucket,
        "size_lo": 1024,
        "size_hi": 4096,
        "median_s": median,
        "q1_s": median - iqr / 2,
        "q3_s": median + iqr / 2,
        "iqr_s": iqr,
        "count": count,
    }


# Relative offsets of one cell's 8 timings from its median: quartiles at -/+0.625, so a cell of spread
# w has median m and IQR 1.25 * w * m.
_OFFSETS = (-1.5, -1.0, -0.5, 0.0, 0.0, 0.5, 1.0, 1.5)
_MEDIANS = {"conv2d": 1.0e-4, "linear_over_channels": 5.0e-5}  # forward; backward takes twice as long


def _samples(
    scale: dict[str, tuple[float, float]] | None = None,
    spread: float = 0.08,
    per_cell: int = 8,
    pace: float | None = None,
) -> list:
    """Timings of 8 examples in one (float32, 2^10) cell per phase; ``scale`` maps a formulation to
    (factor on its times, factor on their spread); ``pace``: the pacer's time beside each example."""
    scale = scale or {}
    samples = []
    for offset in _OFFSETS[:per_cell]:
        times = {}
        for formulation, median in _MEDIANS.items():
            factor, widen = scale.get(formulation, (1.0, 1.0))
            forward = median * factor * (1 + spread * widen * offset)
            times[formulation] = {"forward": forward, "backward": 2 * forward}
        samples.append(
            {
                "relation": "pointwise",
                "device": "cpu",
                "dtype": "float32",
                "size": 2048,
                "mode": "default",
                "times": times,
                **({"pace_s": pace} if pace else {}),
            }
        )
    return samples


def _report(**changes) -> dict:
    """A small valid report: pointwise on cpu in two dtypes, two formulations timed in two cells
    each, two regression cases replayed."""
    report = {
        "schema_version": 1,
        "created": "2026-11-22T03:34:49Z",
        "environment": {
            "python": "3.11.7",
            "torch": "2.13.0+cpu",
            "hypothesis_profile": "ci",
            "threads": 1,
            "devices": {"cpu": "AMD EPYC"},
            "dtypes": ["float32", "float64"],
            "max_numel": 65536,
            "precision_flags": {"mkldnn.matmul": "ieee"},
        },
        "machine": {
            "cpu_model": "AMD EPYC",
            "cpu_capability": "AVX2",
            "cpu_count": 2,
            "gpus": [],
            "threads": 1,
            "fingerprint": FINGERPRINT,
        },
        "run": {"wall_s": 10.0},
        "completeness": {"status": "complete", "exit_status": 0, "collected": 6, "ran": 6},
        "relations": {
            "pointwise": {
                "statement": "Conv2d(C, O, 1) equals Linear(C, O) over the channel axis",
                "formulations": ["conv2d", "linear_over_channels"],
                "timed": True,
                "totals": {"examples": 100, "violations": 0, "exact": 10, "worst_ratio": 0.4},
                "by_device_dtype": [
                    {
                        "device": "cpu",
                        "dtype": "float32",
                        "examples": 60,
                        "violations": 0,
                        "exact": 5,
                        "worst_ratio": 0.4,
                    },
                    {
                        "device": "cpu",
                        "dtype": "float64",
                        "examples": 40,
                        "violations": 0,
                        "exact": 5,
                        "worst_ratio": 0.2,
                    },
                ],
                "run": {"seconds": 2.0},
            }
        },
        "timings": [
            _timing("conv2d", "forward", "2^10", 1.0e-4, 1.0e-5),
            _timing("conv2d", "backward", "2^10", 2.0e-4, 2.0e-5),
            _timing("linear_over_channels", "forward", "2^10", 5.0e-5, 5.0e-6),
            _timing("linear_over_channels", "backward", "2^10", 1.0e-4, 1.0e-5),
        ],
        "ratios": [],
        "samples": _samples(),
        "timing_errors": [],
        "regressions": [
            {"id": "0b0895d22f0f", "relation": "pointwise", "device": "cpu", "mode": "default", "outcome": "passed"},
            {"id": "2b1ea9285870", "relation": "pointwise", "device": "cpu", "mode": "default", "outcome": "passed"},
            {"id": "0b0895d22f0f", "relation": "pointwise", "device": "cuda", "mode": "strict", "outcome": "skipped"},
        ],
    }
    report.update(changes)
    return report


UNCHANGED_CONV2D = (
    "| pointwise | conv2d | cpu | 1 (reference) | x1.00 (0.75 - 1.34) | 1.00 | same within noise (2 cells, n 16) |"
)


def _write(path: Path, data: dict | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _gate(tmp_path: Path, baseline: dict, candidate: dict, *args: str) -> tuple[int, Path, Path]:
    base = _write(tmp_path / "baseline" / "report.json", baseline)
    cand = _write(tmp_path / "candidate" / "report.json", candidate)
    return main(["gate", str(base), str(cand), *args]), base, cand


def _timed(scale: dict[str, tuple[float, float]], spread: float = 0.08, pace: float | None = None) -> dict:
    return _report(samples=_samples(scale, spread, pace=pace))


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


# --- verdicts ------------------------------------------------------------------------------------


def test_identical_reports_pass(tmp_path, capsys):
    status, _, _ = _gate(tmp_path, _report(), _report())
    out = capsys.readouterr().out
    assert status == 0
    assert "## Torch upgrade gate: PASS" in out
    assert (
        "| pointwise | (correctness) | cpu | 0 viol. / 100 ex., worst 0.4 | 0 viol. / 100 ex., worst 0.4 | 1 | ok |"
        in out
    )
    assert UNCHANGED_CONV2D in out
    assert "| pointwise | (regression corpus) | cpu | 2 passed | 2 passed |  | ok |" in out
    assert "regression corpus skipped in both runs on cuda (strict)" in out


def test_a_new_violation_fails(tmp_path, capsys):
    candidate = _report()
    candidate["relations"]["pointwise"]["by_device_dtype"][1].update(violations=2, worst_ratio=3.5)
    candidate["relations"]["pointwise"]["totals"].update(violations=2, worst_ratio=3.5)
    status, _, _ = _gate(tmp_path, _report(), candidate)
    out = capsys.readouterr().out
    assert status == 1
    assert "## Torch upgrade gate: FAIL" in out
    assert "- pointwise on cpu: new violation(s) in float64 (2) (baseline: none)" in out
    assert "| 8.75 | **new violation**: float64 (2) |" in out


def test_a_violation_the_baseline_had_too_is_not_new(tmp_path, capsys):
    both = _report()
    both["relations"]["pointwise"]["by_device_dtype"][0].update(violations=1, worst_ratio=2.0)
    status, _, _ = _gate(tmp_path, both, copy.deepcopy(both))
    out = capsys.readouterr().out
    assert status == 0
    assert "violated, as in the baseline" in out
    assert "pointwise on cpu: violated in both runs (not new; still a failing property)" in out


def test_different_draws_under_the_ci_profile_are_noted(tmp_path, capsys):
    candidate = _report()
    candidate["relations"]["pointwise"]["by_device_dtype"][0]["examples"] = 59
    candidate["relations"]["pointwise"]["by_device_dtype"][1]["examples"] = 41
    status, _, _ = _gate(tmp_path, _report(), candidate)
    assert status == 0
    assert "- the runs drew different examples in pointwise (examples per dtype differ)" in capsys.readouterr().out


def test_a_relation_the_candidate_did_not_run_fails(tmp_path, capsys):
    candidate = _report()
    candidate["relations"] = {}
    status, _, _ = _gate(tmp_path, _report(), candidate)
    assert status == 1
    assert "- pointwise on cpu: checked by the baseline, not run by the candidate" in capsys.readouterr().out


def _cuda_modes(report: dict, modes: dict[str, tuple[int, int, float]]) -> dict:
    """``report`` with pointwise float32 rows on cuda: mode -> (examples, violations, worst ratio)."""
    rows = report["relations"]["pointwise"]["by_device_dtype"]
    for mode, (examples, violations, worst) in modes.items():
        row = {"device": "cuda", "dtype": "float32", "examples": examples, "violations": violations, "exact": 0}
        rows.append({**row, "worst_ratio": worst, **({} if mode == "(none)" else {"mode": mode})})
    return report


SHIPPED_STRICT = {"as-shipped": (50, 0, 0.6), "strict": (50, 0, 0.3)}


def test_correctness_is_compared_per_precision_mode(tmp_path, capsys):
    candidate = _cuda_modes(_report(), {"as-shipped": (50, 0, 0.6), "strict": (50, 2, 4.0)})
    status, _, _ = _gate(tmp_path, _cuda_modes(_report(), SHIPPED_STRICT), candidate)
    out = capsys.readouterr().out
    assert status == 1
    assert "- pointwise on cuda (strict): new violation(s) in float32 (2) (baseline: none)" in out
    assert "| pointwise | (correctness) | cuda (as-shipped) | 0 viol. / 50 ex., worst 0.6 |" in out


def test_a_report_that_pools_the_modes_is_compared_with_the_pooled_modes(tmp_path, capsys):
    """A baseline written before modes were kept apart: one cuda row for all modes; the candidate's
    modes are pooled to compare like with like (and a violation in any of them is still new)."""
    baseline = _cuda_modes(_report(), {"(none)": (100, 0, 0.6)})
    candidate = _cuda_modes(_report(), {"as-shipped": (50, 0, 0.6), "strict": (50, 1, 2.0)})
    status, _, _ = _gate(tmp_path, baseline, candidate)
    out = capsys.readouterr().out
    assert status == 1
    assert "| pointwise | (correctness) | cuda (all modes) | 0 viol. / 100 ex., worst 0.6 | 1 viol. / 100 ex." in out
    assert "- pointwise on cuda (all modes): new violation(s) in float32 (1) (baseline: none)" in out
    assert (
        "pointwise on cuda: one report pools the precision modes, so the gate compares as-shipped, strict pooled" in out
    )


def test_a_device_absent_in_the_candidate_fails_and_says_why(tmp_path, capsys):
    candidate = _report()
    candidate["environment"]["devices_absent"] = {"cuda": "CUDA is not available here"}
    status, _, _ = _gate(tmp_path, _cuda_modes(_report(), SHIPPED_STRICT), candidate)
    out = capsys.readouterr().out
    assert status == 1
    assert (
        "- pointwise on cuda (strict): checked by the baseline, absent in the candidate's run "
        "(CUDA is not available here)" in out
    )


def test_precision_flags_one_linconv_does_not_record_are_a_note_not_a_change(tmp_path, capsys):
    candidate = _report()
    candidate["environment"]["precision_flags"] = {
        "mkldnn.matmul": "ieee",
        "cuda_fp16_reduced_precision_reduction": True,
    }
    status, _, _ = _gate(tmp_path, _report(), candidate)
    out = capsys.readouterr().out
    assert status == 0
    assert "precision flags differ" not in out
    assert "precision flags recorded by one run only: cuda_fp16_reduced_precision_reduction" in out


def _on_cuda(report: dict, mode: str = "as-shipped") -> dict:
    """``report`` with its timing samples taken on a GPU in precision mode ``mode``."""
    report["machine"]["gpus"] = ["NVIDIA H200"]
    for sample in report["samples"]:
        sample.update(device="cuda", mode=mode)
    return report


def test_cuda_timings_are_compared_per_precision_mode_on_the_same_gpu(tmp_path, capsys):
    slower = _on_cuda(_timed({"conv2d": (3.0, 1.0)}))
    status, _, _ = _gate(tmp_path, _on_cuda(_report()), slower)
    out = capsys.readouterr().out
    assert status == 1
    assert "- pointwise / conv2d on cuda (as-shipped): slower, x3.00 the baseline's time" in out
    assert "AMD EPYC, NVIDIA H200): timings compared" in out
    status, _, _ = _gate(tmp_path, _on_cuda(_report()), _on_cuda(_timed({"conv2d": (2.0, 1.0)}), mode="strict"))
    out = capsys.readouterr().out
    wanted = "| pointwise | conv2d | cuda (strict) |  |  |  | not compared (no cell with ≥ 3 timings on both sides) |"
    assert wanted in out


def test_a_failing_regression_case_fails(tmp_path, capsys):
    candidate = _report()
    candidate["regressions"][1]["outcome"] = "failed"
    status, _, _ = _gate(tmp_path, _report(), candidate)
    out = capsys.readouterr().out
    assert status == 1
    assert "- regression corpus, pointwise on cpu: 2b1ea9285870 fails (passed in the baseline)" in out
    assert (
        "| pointwise | (regression corpus) | cpu | 2 passed | 1 passed, 1 failed |  "
        "| **new failure**: 2b1ea9285870 fails |" in out
    )


def test_a_known_bug_that_appears_in_the_candidate_fails_and_a_fixed_one_is_noted(tmp_path, capsys):
    baseline, candidate = _report(), _report()
    baseline["regressions"][0]["outcome"] = "xfailed"
    candidate["regressions"][0]["outcome"] = "xpassed"
    candidate["regressions"][1]["outcome"] = "xfailed"
    status, _, _ = _gate(tmp_path, baseline, candidate)
    out = capsys.readouterr().out
    assert status == 1
    assert "2b1ea9285870 known upstream bug (xfail) (passed in the baseline)" in out
    assert (
        "regression case(s) 0b0895d22f0f (pointwise) on cpu hold under the candidate: torch may have fixed them" in out
    )


def test_reports_without_regressions_compare_the_rest(tmp_path, capsys):
    baseline = _report()
    del baseline["regressions"]
    status, _, _ = _gate(tmp_path, baseline, _report())
    assert status == 0
    assert "regression corpus not compared: the baseline report has no 'regressions' section" in capsys.readouterr().out


def test_a_new_failing_test_in_junit_fails(tmp_path, capsys):
    junit = "<testsuites><testsuite>{}</testsuite></testsuites>"
    ok = '<testcase classname="properties.test_pointwise" name="test_conv1x1[cpu-default]"/>'
    bad = ok.replace("/>", '><error message="x"/></testcase>')
    _write(tmp_path / "baseline" / "junit.xml", junit.format(ok))
    _write(tmp_path / "candidate" / "junit.xml", junit.format(bad))
    status, _, _ = _gate(tmp_path, _report(), _report())
    assert status == 1
    out = capsys.readouterr().out
    assert (
        "- test properties.test_pointwise.test_conv1x1[cpu-default] fails in the candidate (passed in the baseline)"
        in out
    )


def test_a_large_slowdown_fails(tmp_path, capsys):
    status, _, _ = _gate(tmp_path, _report(), _timed({"linear_over_channels": (3.0, 1.0)}))
    out = capsys.readouterr().out
    assert status == 1
    assert "- pointwise / linear_over_channels on cpu: slower, x3.00 the baseline's time (> 1 + 0.05 and" in out
    assert "| pointwise | linear_over_channels | cpu | 1 (reference) | x3.00 (" in out
    assert "| 3.00 | **slower** (2 cells, n 16) |" in out
    assert UNCHANGED_CONV2D in out


def test_a_slowdown_inside_the_noise_passes(tmp_path, capsys):
    # 40% slower, above the margin, but the examples spread so widely that the shift is not significant
    status, _, _ = _gate(tmp_path, _report(), _timed({"conv2d": (1.4, 6.0)}))
    assert status == 0
    assert "| 1.40 | same within noise (2 cells, n 16) |" in capsys.readouterr().out


def test_a_slowdown_below_the_margin_passes_however_tight(tmp_path, capsys):
    tight, slower = _timed({}, spread=0.001), _timed({"conv2d": (1.03, 1.0)}, spread=0.001)
    status, _, _ = _gate(tmp_path, tight, slower, "--run-noise", "0")
    assert status == 0
    assert "| 1.03 | same within noise (2 cells, n 16) |" in capsys.readouterr().out
    # the margin is an option: at 1% the same change fails
    status, _, _ = _gate(tmp_path, tight, slower, "--run-noise", "0", "--margin", "0.01")
    assert status == 1


def test_timings_are_compared_in_pacer_units(tmp_path, capsys):
    # the candidate's kernels took twice as long, and so did the pacer beside them: a slower machine, not torch
    status, _, _ = _gate(
        tmp_path, _timed({}, pace=1e-4), _timed({"conv2d": (2.0, 1.0), "linear_over_channels": (2.0, 1.0)}, pace=2e-4)
    )
    assert status == 0
    assert "| pointwise | conv2d | cpu | 1 (reference) | x1.00 (" in capsys.readouterr().out
    # the same times with the pacer unchanged: torch got slower
    status, _, _ = _gate(tmp_path, _timed({}, pace=1e-4), _timed({"conv2d": (3.0, 1.0)}, pace=1e-4))
    assert status == 1


def _abba(tmp_path: Path, reports: list[dict], *args: str) -> int:
    a1, b1, b2, a2 = (
        _write(tmp_path / name / "report.json", r) for name, r in zip(("a1", "b1", "b2", "a2"), reports, strict=True)
    )
    return main(["gate", str(a1), str(b1), "--abba", str(a2), str(b2), *args])


def test_twin_runs_measure_the_run_to_run_noise(tmp_path, capsys):
    quiet = [_timed({}, 0.001), _timed({"conv2d": (1.3, 1.0)}, 0.001), _timed({"conv2d": (1.3, 1.0)}, 0.001),
             _timed({}, 0.001)]  # fmt: skip
    assert _abba(tmp_path, quiet) == 1  # twins agree: the run-to-run noise is small and 30% stands out
    out = capsys.readouterr().out
    assert "run-to-run noise of a formulation's timings: 0.000 (log scale, measured between twin runs; a row" in out
    assert "- baseline run 2:" in out and "runs made in ABBA order" in out
    # twins that differ by 40% between themselves: 30% between the sides is not a verdict
    noisy = [_timed({}, 0.001), _timed({"conv2d": (1.1, 1.0), "linear_over_channels": (1.4, 1.0)}, 0.001),
             _timed({"conv2d": (1.5, 1.0), "linear_over_channels": (1.0, 1.0)}, 0.001),
             _timed({"conv2d": (1.4, 1.0), "linear_over_channels": (1.4, 1.0)}, 0.001)]  # fmt: skip
    assert _abba(tmp_path, noisy) == 0


def test_cells_with_few_timings_do_not_take_part(tmp_path, capsys):
    baseline = _report(samples=_samples(per_cell=2))
    status, _, _ = _gate(tmp_path, baseline, _report(samples=_samples({"conv2d": (5.0, 1.0)})))
    assert status == 0
    assert "not compared (no cell with ≥ 3 timings on both sides)" in capsys.readouterr().out


def test_timings_from_different_machines_are_not_compared(tmp_path, capsys):
    candidate = _timed({"conv2d": (10.0, 1.0)})
    candidate["machine"].update(cpu_model="Intel Xeon", fingerprint="0123456789abcdef")
    status, _, _ = _gate(tmp_path, _report(), candidate)
    out = capsys.readouterr().out
    assert status == 0
    assert (
        "- timings not compared: the runs come from different machines "
        "(cpu_model 'AMD EPYC' vs 'Intel Xeon'); correctness compared alone" in out
    )
    assert "| pointwise | conv2d | cpu |  |  |  | not compared (different machines) |" in out
    assert "- machine: different: timings not compared, correctness alone" in out


def test_drift_is_reported_and_fails_only_when_asked(tmp_path, capsys):
    candidate = _report()
    candidate["relations"]["pointwise"]["by_device_dtype"][0]["worst_ratio"] = 0.9
    status, _, _ = _gate(tmp_path, _report(), candidate)
    out = capsys.readouterr().out
    assert status == 0
    assert "| 2.25 | drift: worst error/bound x2.25 |" in out
    status, _, _ = _gate(tmp_path, _report(), candidate, "--fail-on-drift")
    assert status == 1
    assert "- pointwise on cpu: worst error/bound drifted x2.25 (--fail-on-drift)" in capsys.readouterr().out


def test_the_rule_needs_both_the_margin_and_the_standard_errors():
    assert verdict(0.4, 0.01, margin=0.1, z=3) == "slower"
    assert verdict(0.4, 0.2, margin=0.1, z=3) == "same"  # 0.4 < 3 * 0.2: inside the noise
    assert verdict(0.05, 0.0, margin=0.1, z=3) == "same"  # outside a zero noise, but under 10%
    assert verdict(-0.4, 0.01, margin=0.1, z=3) == "faster"


def test_cell_shift_weighs_cells_on_a_log_scale_and_bootstraps_its_error():
    base = {("a",): [1.0] * 10, ("b",): [100.0] * 10}
    cand = {("a",): [2.0] * 10, ("b",): [100.0] * 10}  # one cell twice as slow, the other unchanged
    shift = cell_shift(base, cand, min_count=3)
    assert abs(shift.ratio - 2**0.5) < 1e-12 and shift.se < 1e-12 and shift.cells == 2
    noisy = cell_shift({("a",): [1.0, 2.0, 3.0, 4.0]}, {("a",): [1.0, 2.0, 3.0, 4.0]}, min_count=3)
    assert noisy.shift == 0.0 and noisy.se > 0.1
    assert cell_shift(base, {("c",): [1.0] * 10}, min_count=3) is None
    assert (
        run_noise([0.1, -0.1, 0.1]) is None and abs(run_noise([0.1, -0.1, 0.1, -0.1]) - 1.4826 * 0.1 / 2**0.5) < 1e-12
    )


def test_thresholds_refuse_nonsense():
    for bad in ({"margin": float("nan")}, {"z": -1.0}, {"min_count": 1}, {"run_noise": float("inf")}):
        try:
            Thresholds(**bad)
        except ValueError as exc:
            assert str(exc).startswith(next(iter(bad)))
        else:
            raise AssertionError(f"Thresholds accepted {bad}")


# --- outputs --------------------------------------------------------------------------------------


def test_directories_out_and_step_summary(tmp_path, capsys, monkeypatch):
    summary = _write(tmp_path / "summary.md", "earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    _write(tmp_path / "b" / "report.json", _report())
    _write(tmp_path / "c" / "report.json", _report())
    out_file = tmp_path / "verdict" / "gate.md"
    status = main(["gate", str(tmp_path / "b"), str(tmp_path / "c"), "--out", str(out_file)])
    printed = capsys.readouterr().out
    assert status == 0
    assert out_file.read_text(encoding="utf-8") == printed
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n## Torch upgrade gate: PASS")


def _benchmarks(median: float, fingerprint: str | None = FINGERPRINT, pace: float = 1e-4) -> dict:
    machine = {"linconv_machine": {"fingerprint": fingerprint}} if fingerprint else {}
    return {
        "machine_info": machine,
        "benchmarks": [
            {
                "fullname": f"benchmarks/bench_formulations.py::test_formulation[head|batch {batch}|conv|forward]",
                "stats": {"median": median * batch, "iqr": 1e-6, "rounds": 50},
                "extra_info": {"formulation": "conv", "phase": "forward", "pace_s": pace},
            }
            for batch in (1, 32)
        ],
    }


def test_benchmarks_beside_the_reports_are_compared_and_gate_by_default(tmp_path, capsys):
    _write(tmp_path / "baseline" / "benchmarks.json", _benchmarks(1e-4))
    _write(tmp_path / "candidate" / "benchmarks.json", _benchmarks(5e-4))
    status, _, _ = _gate(tmp_path, _report(), _report())
    out = capsys.readouterr().out
    assert status == 1
    assert "- benchmarks of conv forward: slower, x5.00 over 2 benchmark(s)" in out
    assert "- benchmark test_formulation[" not in out  # the group fails the gate; its members are rows
    assert "| conv forward (all 2) |  |  | 5.00 | **slower** |" in out
    assert "| test_formulation[head\\|batch 32\\|conv\\|forward] | 3.2 ms | 16 ms | 5.00 | **slower** |" in out
    status, _, _ = _gate(tmp_path, _report(), _report(), "--no-fail-on-benchmarks")
    assert status == 0
    assert "1 group(s) slower; they do not fail the gate (--no-fail-on-benchmarks)" in capsys.readouterr().out


def _bench_file(medians: dict[str, float]) -> dict:
    """Benchmarks named ``group/shape``, each with its median (s), the pacer unchanged."""
    return {
        "machine_info": {"linconv_machine": {"fingerprint": FINGERPRINT}},
        "benchmarks": [
            {
                "fullname": f"benchmarks/bench_formulations.py::test_formulation[{name}]",
                "stats": {"median": median, "iqr": 1e-6, "rounds": 50},
                "extra_info": {"formulation": name.split("/")[0], "phase": "forward", "pace_s": 1e-4},
            }
            for name, median in medians.items()
        ],
    }


def test_one_slower_benchmark_is_reported_and_its_group_decides(tmp_path, capsys):
    base = {f"conv/{i}": 1e-3 for i in range(8)}
    _write(tmp_path / "baseline" / "benchmarks.json", _bench_file(base))
    _write(tmp_path / "candidate" / "benchmarks.json", _bench_file({**base, "conv/0": 4e-3}))
    status, _, _ = _gate(tmp_path, _report(), _report())
    out = capsys.readouterr().out
    assert status == 0  # one of eight 4x slower: the group's mean moved 19%, inside the group's noise
    assert "| test_formulation[conv/0] | 1 ms | 4 ms | 4.00 | **slower** |" in out
    assert "- 1 benchmark(s) slower on their own: reported, not failing; the verdict of their group decides" in out


def test_a_group_whose_twin_runs_differ_is_given_their_difference(tmp_path, capsys):
    # ABBA: the conv group is steady, the dense group's baseline twins differ 2x (a memory-bound
    # benchmark on a shared cache); the candidate is 1.5x the baselines' mean in dense, unchanged in conv
    steady = {f"conv/{i}": 1e-3 for i in range(6)}
    files = [{**steady, "dense/0": 1e-3}, {**steady, "dense/0": 2.1e-3}, {**steady, "dense/0": 2.1e-3},
             {**steady, "dense/0": 2e-3}]  # fmt: skip
    for name, medians in zip(("a1", "b1", "b2", "a2"), files, strict=True):
        _write(tmp_path / name / "benchmarks.json", _bench_file(medians))
    assert _abba(tmp_path, [_report()] * 4) == 0
    out = capsys.readouterr().out
    assert "| dense forward (all 1) |  |  | 1.48 | same within noise |" in out
    # the same shift where the twins agree is a verdict
    files[0] = {**steady, "dense/0": 1.4e-3}
    files[3] = {**steady, "dense/0": 1.4e-3}
    for name, medians in zip(("a1", "a2"), (files[0], files[3]), strict=True):
        _write(tmp_path / name / "benchmarks.json", _bench_file(medians))
    assert _abba(tmp_path, [_report()] * 4) == 1
    assert "- benchmarks of dense forward: slower, x1.50 over 1 benchmark(s)" in capsys.readouterr().out


def test_benchmarks_are_compared_in_pacer_units(tmp_path, capsys):
    base = _write(tmp_path / "b.json", _benchmarks(1e-4, pace=1e-4))
    slow_machine = _write(tmp_path / "c.json", _benchmarks(2e-4, pace=2e-4))
    status, _, _ = _gate(tmp_path, _report(), _report(), "--benchmarks", str(base), str(slow_machine))
    assert status == 0
    assert "| conv forward (all 2) |  |  | 1.00 | same within noise |" in capsys.readouterr().out


def test_benchmarks_of_other_machines_are_not_compared(tmp_path, capsys):
    candidate = _report()
    candidate["machine"].update(fingerprint="0123456789abcdef")
    _write(tmp_path / "baseline" / "benchmarks.json", _benchmarks(1e-4))
    _write(tmp_path / "candidate" / "benchmarks.json", _benchmarks(3e-4))
    status, _, _ = _gate(tmp_path, _report(), candidate)
    assert status == 0
    assert "- benchmarks not compared: the runs come from different machines" in capsys.readouterr().out


# --- unusable files ---------------------------------------------------------------------------------


def _refused(tmp_path: Path, capsys, candidate: dict | str, *args: str) -> str:
    status, _, cand = _gate(tmp_path, _report(), candidate, *args)
    assert status == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err.replace(str(cand), "CAND")


def test_refuses_a_file_that_is_not_json(tmp_path, capsys):
    err = _refused(tmp_path, capsys, "<html>not a report</html>")
    assert err == "gate: CAND: is not valid JSON (line 1, column 1: Expecting value)\n"


def test_refuses_another_schema_version(tmp_path, capsys):
    err = _refused(tmp_path, capsys, _report(schema_version=2))
    assert err == "gate: CAND: field 'schema_version' is 2; this linconv reads version 1\n"


def test_refuses_a_missing_field(tmp_path, capsys):
    candidate = _report()
    del candidate["machine"]["fingerprint"]
    assert _refused(tmp_path, capsys, candidate) == "gate: CAND: field 'machine.fingerprint' is missing\n"


def test_refuses_a_bad_regression_outcome(tmp_path, capsys):
    candidate = _report()
    candidate["regressions"][2]["outcome"] = "broken"
    err = _refused(tmp_path, capsys, candidate)
    assert err == (
        "gate: CAND: field 'regressions[2].outcome' must be one of passed, failed, xfailed, xpassed, skipped, "
        "got 'broken'\n"
    )


def test_refuses_a_bad_timing(tmp_path, capsys):
    candidate = _report()
    candidate["samples"][0]["times"]["conv2d"]["forward"] = "fast"
    err = _refused(tmp_path, capsys, candidate)
    assert (
        err == "gate: CAND: field 'samples[0].times.conv2d.forward' must be a positive number of seconds, got 'fast'\n"
    )


def test_refuses_a_missing_report(tmp_path, capsys):
    status = main(["gate", str(tmp_path / "nowhere"), str(tmp_path / "nowhere")])
    assert status == 2
    assert capsys.readouterr().err == f"gate: {tmp_path / 'nowhere'}: no such file\n"


def test_refuses_a_benchmark_json_given_as_a_report(tmp_path, capsys):
    err = _refused(tmp_path, capsys, _benchmarks(1e-4))
    assert err == "gate: CAND: field 'schema_version' is missing\n"


def test_refuses_a_report_given_as_benchmarks(tmp_path, capsys):
    bench = _write(tmp_path / "b.json", _benchmarks(1e-4))
    not_bench = _write(tmp_path / "r.json", _report())
    status, _, _ = _gate(tmp_path, _report(), _report(), "--benchmarks", str(bench), str(not_bench))
    assert status == 2
    assert capsys.readouterr().err == f"gate: {not_bench}: field 'machine_info' is missing\n"


# --- the report's regressions section ----------------------------------------------------------------


def _test_report(when: str, outcome: str, wasxfail: bool = False, case=("0b0895d22f0f", "pointwise", "cpu", "default")):
    report = pytest.TestReport("t.py::test[x]", ("t.py", 1, "test"), {}, outcome, None, when)
    report.linconv_regression = list(case)
    if wasxfail:
        report.wasxfail = "known bug"
    return report


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        ([("setup", "passed", False), ("call", "passed", False), ("teardown", "passed", False)], "passed"),
        ([("setup", "passed", False), ("call", "failed", False), ("teardown", "passed", False)], "failed"),
        ([("setup", "passed", False), ("call", "skipped", True), ("teardown", "passed", False)], "xfailed"),
        ([("setup", "passed", False), ("call", "passed", True), ("teardown", "passed", False)], "xpassed"),
        ([("setup", "skipped", False), ("teardown", "passed", False)], "skipped"),
        ([("setup", "passed", False), ("call", "passed", False), ("teardown", "failed", False)], "failed"),
    ],
)
def test_regression_outcomes_from_test_reports(tmp_path, phases, expected):
    state = _ReportState(0, tmp_path)
    for when, outcome, wasxfail in phases:
        state.pytest_runtest_logreport(_test_report(when, outcome, wasxfail))
    assert _regression_rows(state.regressions) == [
        {"id": "0b0895d22f0f", "relation": "pointwise", "device": "cpu", "mode": "default", "outcome": expected}
    ]
    assert _outcome(_test_report("call", "failed")) == "failed"


# --- known upstream bugs ----------------------------------------------------------------------------


def _bugs(**reproduced: bool) -> list[dict]:
    return [{"name": name.replace("_", "-"), "kind": "wrong result", "reproduced": value}
            for name, value in reproduced.items()]  # fmt: skip


def test_known_bugs_present_on_both_sides_do_not_block_and_a_fix_is_good_news(tmp_path, capsys):
    baseline = _report(known_bugs=_bugs(grouped=True, amx=True))
    candidate = _report(known_bugs=_bugs(grouped=True, amx=False))
    status, _, _ = _gate(tmp_path, baseline, candidate)
    out = capsys.readouterr().out
    assert status == 0
    assert "| grouped | (known bug) |  | reproduces | reproduces |  | still present (not blocking) |" in out
    assert "| amx | (known bug) |  | reproduces | absent |  | fixed in the candidate |" in out
    assert "known upstream bug amx no longer reproduces in the candidate: good news" in out


def test_a_known_bug_newly_present_in_the_candidate_blocks(tmp_path, capsys):
    status, _, _ = _gate(tmp_path, _report(known_bugs=_bugs(grouped=False)), _report(known_bugs=_bugs(grouped=True)))
    out = capsys.readouterr().out
    assert status == 1
    assert "- known upstream bug grouped reproduces in the candidate, not in the baseline" in out


def test_a_violation_on_a_known_bug_present_in_the_baseline_is_not_new(tmp_path, capsys):
    candidate = _report(known_bugs=_bugs(grouped=False))
    candidate["relations"]["pointwise"]["by_device_dtype"][1].update(violations=3, known_bug_violations={"grouped": 3})
    status, _, _ = _gate(tmp_path, _report(known_bugs=_bugs(grouped=True)), candidate)
    out = capsys.readouterr().out
    assert status == 0
    assert "violated on a known bug present in the baseline" in out
    # the same violations where the baseline did not have the bug: new
    status, _, _ = _gate(tmp_path, _report(known_bugs=_bugs(grouped=False)), candidate)
    assert status == 1
    assert "- pointwise on cpu: new violation(s) in float64 (3) (baseline: none)" in capsys.readouterr().out
