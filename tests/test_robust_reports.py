"""Run reports, merge and gate under interruption and hostile files (docs/robustness.md): a run
stamps its report complete / interrupted / empty, an interrupted or killed run never leaves a
report that looks complete, merge and gate refuse what they cannot compare (exit 2, naming the file
and field), and nonsense thresholds or unwritable outputs are errors before any verdict. Each test
failed on the commit before these fixes."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from linconv.__main__ import main
from tests.test_gate import _benchmarks, _report, _samples

ROOT = Path(__file__).resolve().parent.parent
COMPLETE = {"status": "complete", "exit_status": 0, "collected": 6, "ran": 6}


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def stamped(status: str = "complete", **changes) -> dict:
    report = _report(**changes)
    report["completeness"] = dict(COMPLETE, status=status)
    if status != "complete":
        report["completeness"].update(exit_status=2, ran=3, reason="interrupted (Ctrl-C / SIGINT) after 3 of 6 tests")
    return report


def write(directory: Path, report: dict | str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(report if isinstance(report, str) else json.dumps(report))
    return directory


def cli(capsys, *argv) -> tuple[int, str, str]:
    try:
        status = main([*map(str, argv)])
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


# --- a real run: complete, interrupted, killed, empty --------------------------------------------

# Loaded with -p into the pytest subprocesses: sends the run a signal as its second test starts.
SIGNAL_PLUGIN = """
import os, signal
import pytest

_calls = []

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    _calls.append(item.nodeid)
    if len(_calls) == 2 and os.environ.get("SEND_SIGNAL"):
        os.kill(os.getpid(), getattr(signal, os.environ["SEND_SIGNAL"]))
    yield
"""


def pytest_run(tmp_path: Path, *args: str, send: str = "") -> subprocess.CompletedProcess:
    (tmp_path / "signal_plugin.py").write_text(SIGNAL_PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), "SEND_SIGNAL": send}
    env.update(LINCONV_REPORT_DIR=str(tmp_path / "reports"), LINCONV_TIMING="off")
    command = [sys.executable, "-m", "pytest", "-p", "signal_plugin", "-p", "no:cacheprovider", "-q"]
    command += ["--hypothesis-profile", "debug", "--dtypes", "float32", "properties/test_init.py",
                "properties/test_pointwise.py", *args]  # fmt: skip
    return subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background shell ignores SIGINT
    )


def _completeness(tmp_path: Path) -> dict | None:
    return json.loads((tmp_path / "reports" / "report.json").read_text()).get("completeness")


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory) -> Path:
    """A finished run of two property tests on the cpu; its report is copied where the others run."""
    tmp_path = tmp_path_factory.mktemp("complete")
    proc = pytest_run(tmp_path, "--devices", "cpu")
    assert proc.returncode == 0, proc.stdout[-3000:]
    return tmp_path / "reports" / "report.json"


def _with_old_report(tmp_path: Path, complete_run: Path) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "report.json").write_bytes(complete_run.read_bytes())


def test_a_finished_run_is_stamped_complete(complete_run):
    completeness = json.loads(complete_run.read_text())["completeness"]
    assert completeness == {"status": "complete", "exit_status": 0, "collected": 2, "ran": 2}


def test_ctrl_c_leaves_a_report_stamped_interrupted_that_gate_and_merge_refuse(tmp_path, complete_run, capsys):
    _with_old_report(tmp_path, complete_run)
    proc = pytest_run(tmp_path, "--devices", "cpu", send="SIGINT")
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert _completeness(tmp_path) == {
        "status": "interrupted",
        "exit_status": 2,
        "collected": 2,
        "ran": 1,
        "reason": "interrupted (Ctrl-C / SIGINT) after 1 of 2 tests",
    }
    report = tmp_path / "reports"
    status, out, err = cli(capsys, "gate", complete_run, report)
    assert (status, out) == (2, "")
    assert err == (
        f"gate: {report / 'report.json'}: field 'completeness.status' is interrupted: interrupted (Ctrl-C / SIGINT) "
        "after 1 of 2 tests (1 of 2 tests ran, exit status 2); re-run it, or pass --allow-incomplete to use it anyway\n"
    )
    status, out, err = cli(capsys, "report", complete_run, report, "--out", tmp_path / "merged")
    assert (status, out) == (2, "")
    assert "field 'completeness.status' is interrupted" in err and not (tmp_path / "merged").exists()
    status, out, _ = cli(capsys, "gate", complete_run, report, "--allow-incomplete")
    assert status == 1  # the candidate did not run pointwise: never a pass
    assert "**INCOMPLETE RUN**" in out and "- the candidate report is not complete" in out
    assert "**Incomplete run: interrupted" in (report / "report.md").read_text()


def test_sigterm_leaves_the_stub_not_the_previous_complete_report(tmp_path, complete_run):
    _with_old_report(tmp_path, complete_run)
    proc = pytest_run(tmp_path, "--devices", "cpu", send="SIGTERM")
    assert proc.returncode == -signal.SIGTERM
    completeness = _completeness(tmp_path)
    assert completeness is not None and completeness["status"] == "interrupted"
    assert (completeness["exit_status"], completeness["collected"], completeness["ran"]) == (None, 2, 0)
    assert completeness["reason"].startswith("the run started and did not finish")


def test_a_run_of_absent_devices_is_a_usage_error_or_stamped_empty(tmp_path, complete_run):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    _with_old_report(tmp_path, complete_run)
    proc = pytest_run(tmp_path, "--devices", "cuda")
    assert proc.returncode == 4
    assert "ERROR: --devices: cuda was asked for but is absent: CUDA is not available here" in proc.stderr
    proc = pytest_run(tmp_path, "--devices", "cuda", "--skip-absent-devices")
    assert proc.returncode == 0, proc.stdout[-3000:]
    completeness = _completeness(tmp_path)
    assert completeness is not None and completeness["status"] == "empty"  # not the old complete report


def test_collect_only_leaves_the_report_alone(tmp_path, complete_run):
    _with_old_report(tmp_path, complete_run)
    assert pytest_run(tmp_path, "--devices", "cpu", "--collect-only").returncode == 0
    assert (tmp_path / "reports" / "report.json").read_bytes() == complete_run.read_bytes()


# --- merge ------------------------------------------------------------------------------------------


def test_merge_survives_an_inf_ratio_and_keeps_it(tmp_path, capsys):
    bad = stamped()
    row = bad["relations"]["pointwise"]["by_device_dtype"][0]
    row["worst_ratio"] = bad["relations"]["pointwise"]["totals"]["worst_ratio"] = "inf"
    a, b = write(tmp_path / "a", stamped()), write(tmp_path / "b", bad)
    status, out, err = cli(capsys, "report", a, b, "--out", tmp_path / "m")
    assert (status, err) == (0, "") and out.startswith("merged 2 reports: 200 examples")
    merged = json.loads((tmp_path / "m" / "report.json").read_text())
    assert merged["relations"]["pointwise"]["totals"]["worst_ratio"] == "inf"


def _other_machine() -> dict:
    other = stamped(samples=_samples({"conv2d": (1.1, 1.0)}))
    other["machine"].update(fingerprint="0123456789abcdef", cpu_model="Other CPU")
    return other


def test_merge_refuses_two_machines_unless_told_and_then_drops_the_timings(tmp_path, capsys):
    a, b = write(tmp_path / "a", stamped()), write(tmp_path / "b", _other_machine())
    status, out, err = cli(capsys, "report", a, b, "--out", tmp_path / "m")
    assert (status, out) == (2, "")
    assert err.startswith(f"report: {b}: field 'machine.fingerprint' is 0123456789abcdef (Other CPU), but {a} ran on ")
    assert err.endswith("timings of two machines do not pool; pass --across-machines to add up the counts and drop "
                        "the timings\n")  # fmt: skip
    status, out, _ = cli(capsys, "report", a, b, "--out", tmp_path / "m", "--across-machines")
    assert status == 0 and "the reports come from 2 machines: timings dropped" in out
    merged = json.loads((tmp_path / "m" / "report.json").read_text())
    assert merged["samples"] == [] and merged["timings"] == []
    assert merged["machine"]["fingerprint"].startswith("mixed-") and len(merged["machine"]["machines"]) == 2
    assert merged["relations"]["pointwise"]["totals"]["examples"] == 200


def test_merge_refuses_another_torch_build(tmp_path, capsys):
    other = stamped()
    other["environment"]["cuda"] = "12.4"
    a, b = write(tmp_path / "a", stamped()), write(tmp_path / "b", other)
    status, _, err = cli(capsys, "report", a, b, "--out", tmp_path / "m")
    assert status == 2
    assert err == (
        f"report: {b}: field 'environment.cuda' is 12.4, but {a} ran torch built with cuda None: merge only jobs of "
        "one torch build (compare torches with `python -m linconv gate`)\n"
    )


def test_merge_refuses_one_run_twice(tmp_path, capsys):
    a, b = write(tmp_path / "a", stamped()), write(tmp_path / "b", stamped(created="2026-11-23T00:00:00Z"))
    status, _, err = cli(capsys, "report", a, a, "--out", tmp_path / "m")
    assert (status, err) == (2, f"report: {a}: is the report {a} names too: merging it would count it twice\n")
    copy_of_a = write(tmp_path / "copy", (a / "report.json").read_text())
    status, _, err = cli(capsys, "report", a, copy_of_a, "--out", tmp_path / "m")
    assert status == 2 and err.startswith(f"report: {copy_of_a}: holds a run that {a} holds too")
    assert cli(capsys, "report", a, b, "--out", tmp_path / "ab")[0] == 0
    status, _, err = cli(capsys, "report", tmp_path / "ab", a, "--out", tmp_path / "m")  # a merge of a, and a
    assert status == 2 and err.startswith(f"report: {a}: holds a run that {tmp_path / 'ab'} holds too")


def test_merge_refuses_an_out_that_is_an_input(tmp_path, capsys):
    a, b = write(tmp_path / "a", stamped()), write(tmp_path / "b", stamped(created="2026-11-23T00:00:00Z"))
    before = (b / "report.json").read_text()
    status, out, err = cli(capsys, "report", a, b, "--out", b)
    assert (status, out, err) == (
        2,
        "",
        f"report: --out {b} would overwrite the input {b}: write the merge elsewhere\n",
    )
    assert (b / "report.json").read_text() == before


# --- hostile reports ----------------------------------------------------------------------------------

HOSTILE_REPORTS = {
    "100k-deep JSON": ("[" * 100_000 + "]" * 100_000, "is nested too deeply (more than 64 levels)"),
    "1e400 (infinity)": (
        json.dumps(stamped()).replace('"wall_s": 10.0', '"wall_s": 1e400'),
        "holds the number 1e400, which overflows to infinity",
    ),
    "NaN": (
        json.dumps(stamped()).replace('"wall_s": 10.0', '"wall_s": NaN'),
        "holds NaN, which JSON does not allow (a number must be finite)",
    ),
    "negative examples": (
        json.dumps(stamped()).replace('"examples": 60', '"examples": -50'),
        "field 'relations.pointwise.by_device_dtype[0].examples' must be a count >= 0, got -50",
    ),
    "negative worst ratio": (
        json.dumps(stamped()).replace('"worst_ratio": 0.2', '"worst_ratio": -3.0'),
        'field \'relations.pointwise.by_device_dtype[1].worst_ratio\' must be a ratio >= 0 (or "inf" / "nan"), '
        "got -3.0",
    ),
}


@pytest.mark.parametrize("kind", list(HOSTILE_REPORTS))
def test_merge_and_gate_refuse_a_hostile_report(tmp_path, capsys, kind):
    text, problem = HOSTILE_REPORTS[kind]
    good, bad = write(tmp_path / "good", stamped()), write(tmp_path / "bad", text)
    expected = f"{bad / 'report.json'}: {problem}\n"
    assert cli(capsys, "report", good, bad, "--out", tmp_path / "m") == (2, "", f"report: {expected}")
    assert cli(capsys, "gate", good, bad) == (2, "", f"gate: {expected}")


@pytest.mark.parametrize("name", ["report.json", "junit.xml"])
def test_a_fifo_is_refused_not_read_forever(tmp_path, capsys, name):
    from tests.test_robust_corpus import within

    good = write(tmp_path / "good", stamped())
    other = tmp_path / "other"
    other.mkdir()
    if name == "junit.xml":
        (other / "report.json").write_text(json.dumps(stamped()))
    os.mkfifo(other / name)
    status, out, err = within(10, lambda: cli(capsys, "gate", good, other))
    assert (status, out) == (2, "")
    assert err == f"gate: {other / name}: is not a regular file (a FIFO, a device or a socket)\n" or err == (
        f"gate: {other / name}: is not a regular file (a directory, a FIFO or a device)\n"
    )


def test_gate_refuses_a_benchmark_with_a_nan_spread(tmp_path, capsys):
    base = tmp_path / "b.json"
    base.write_text(json.dumps(_benchmarks(1e-4)).replace('"iqr": 1e-06', '"iqr": NaN'))
    slow = tmp_path / "c.json"
    slow.write_text(json.dumps(_benchmarks(1e-3)))
    a = write(tmp_path / "a", stamped())
    status, out, err = cli(capsys, "gate", a, a, "--benchmarks", base, slow)
    assert (status, out) == (2, "")
    assert err == f"gate: {base}: field 'benchmarks[0].stats.iqr' must be a finite number, got nan\n"


def test_gate_refuses_a_report_without_a_completeness_stamp(tmp_path, capsys):
    unstamped = write(tmp_path / "old", _report())
    del_stamp = json.loads((unstamped / "report.json").read_text())
    del_stamp.pop("completeness", None)
    write(tmp_path / "old", del_stamp)
    status, out, err = cli(capsys, "gate", write(tmp_path / "a", stamped()), unstamped)
    assert (status, out) == (2, "")
    assert err == (
        f"gate: {unstamped / 'report.json'}: field 'completeness' is missing: the report does not say whether its run "
        "finished (written by a linconv before reports recorded it); re-run it, or pass --allow-incomplete to use it "
        "anyway\n"
    )


# --- gate verdicts and arguments ------------------------------------------------------------------


def test_a_regression_case_that_passed_and_is_missing_from_the_candidate_fails(tmp_path, capsys):
    candidate = stamped()
    del candidate["regressions"][1]  # 2b1ea9285870 passed in the baseline
    status, out, _ = cli(capsys, "gate", write(tmp_path / "b", stamped()), write(tmp_path / "c", candidate))
    assert status == 1
    assert "- regression corpus, pointwise on cpu: 2b1ea9285870 not run (passed in the baseline)" in out
    assert "| **new failure**: 2b1ea9285870 not run |" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--z", "nan"], "argument --z: must be a finite number >= 0, got 'nan'"),
        (["--z", "inf"], "argument --z: must be a finite number >= 0, got 'inf'"),
        (["--margin", "nan"], "argument --margin: must be a finite number >= 0, got 'nan'"),
        (["--drift", "nan"], "argument --drift: must be a finite number >= 0, got 'nan'"),
        (["--min-count", "1"], "argument --min-count: must be an int >= 2, got '1'"),
    ],
)
def test_gate_refuses_thresholds_that_switch_a_check_off(capsys, argv, message):
    status, out, err = cli(capsys, "gate", *argv, "a", "b")
    assert (status, out) == (2, "")
    assert err.splitlines()[-1] == f"python -m linconv gate: error: {message}"


def test_an_unwritable_out_or_step_summary_is_an_error_before_any_verdict(tmp_path, capsys, monkeypatch):
    a = write(tmp_path / "a", stamped())
    status, out, err = cli(capsys, "gate", a, a, "--out", "/proc/verdict.md")
    assert (status, out) == (2, "")
    assert err.startswith("gate: --out /proc/verdict.md cannot be written (")
    status, out, err = cli(capsys, "gate", a, a, "--out", tmp_path)
    assert (status, out, err) == (2, "", f"gate: --out {tmp_path} is a directory, not a file\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path))
    status, out, err = cli(capsys, "gate", a, a)
    assert (status, out, err) == (2, "", f"gate: $GITHUB_STEP_SUMMARY {tmp_path} is a directory, not a file\n")
    missing = tmp_path / "no-such-dir" / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(missing))
    status, out, err = cli(capsys, "gate", a, a)
    assert (status, out) == (2, "")
    assert err == f"gate: $GITHUB_STEP_SUMMARY {missing} cannot be written (No such file or directory)\n"


def test_a_write_that_fails_after_the_verdict_is_exit_2_and_says_the_verdict_above_stands(
    tmp_path, capsys, monkeypatch
):
    import linconv.commands.gate as gate_command

    def full_disk(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gate_command, "write_text_atomic", full_disk)
    a = write(tmp_path / "a", stamped())
    status, out, err = cli(capsys, "gate", a, a, "--out", tmp_path / "verdict.md")
    assert status == 2 and out.startswith("## Torch upgrade gate: PASS")
    assert (
        err
        == f"gate: the verdict above could not be written to --out {tmp_path / 'verdict.md'}: No space left on device\n"
    )


def test_report_renders_the_stamp_of_an_incomplete_run(tmp_path, capsys):
    directory = write(tmp_path / "r", stamped("interrupted"))
    assert cli(capsys, "report", directory)[0] == 0
    text = (directory / "report.md").read_text()
    assert "**Incomplete run: interrupted: interrupted (Ctrl-C / SIGINT) after 3 of 6 tests (3 of 6 tests ran, exit " \
           "status 2).** Merge and gate refuse this report." in text  # fmt: skip


def test_merge_of_incomplete_reports_when_allowed_is_stamped_incomplete(tmp_path, capsys):
    a = write(tmp_path / "a", stamped())
    b = write(tmp_path / "b", stamped("interrupted", created="2026-11-23T00:00:00Z"))
    status, out, _ = cli(capsys, "report", a, b, "--out", tmp_path / "m", "--allow-incomplete")
    assert status == 0 and "the merged report is stamped interrupted (--allow-incomplete)" in out
    merged = json.loads((tmp_path / "m" / "report.json").read_text())
    assert merged["completeness"] == {
        "status": "interrupted",
        "exit_status": 2,
        "collected": 12,
        "ran": 9,
        "reason": "merged from incomplete reports (shard 2: interrupted)",
    }
    assert cli(capsys, "gate", a, tmp_path / "m")[0] == 2


def test_copy_of_a_report_is_not_a_new_run(tmp_path):
    """The digest that refuses duplicates ignores nothing: two runs differ at least in 'created'."""
    from linconv.runreport.merge import digest

    one, two = stamped(), copy.deepcopy(stamped())
    assert digest(one) == digest(two)
    two["created"] = "2026-11-23T00:00:00Z"
    assert digest(one) != digest(two)
