"""The run report: JSON round trip, validation errors that name the file and the field, rendering,
``python -m linconv report PATH``, and one merged report from a pytest-xdist run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.plugins.session import Session
from linconv.relations import get, run_relation
from linconv.runreport import (
    REPORT_JSON,
    REPORT_MD,
    REPORT_PNG,
    SCHEMA_VERSION,
    ReportError,
    build_report,
    environment,
    load_report,
    machine_identity,
    merge_rejected,
    merge_tallies,
    rejected_rows,
    render_markdown,
    summary_lines,
    tally_rows,
    validate,
    write_report,
)
from linconv.runreport.build import device_truth
from linconv.runreport.schema import ALL_MODES, tally_mode
from linconv.timing import Recorder

ROOT = Path(__file__).resolve().parents[1]


def _report() -> dict:
    session, recorder = Session(), Recorder()
    cases = {
        "pointwise": [Case(ConvGeometry(2, 4, 6, (5, 5)), seed=s) for s in range(3)],
        "general_conv": [Case(ConvGeometry(1, 2, 4, (5, 5), kernel=3, padding=1), dtype="float64", seed=4)],
        "init": [Case(ConvGeometry(1, 2, 4, (3, 3), kernel=3))],
    }
    for relation, examples in cases.items():
        for case in examples:
            session.record(get(relation), run_relation(relation, case, observer=recorder))
    report = build_report(
        tallies=tally_rows(session.tallies),
        samples=recorder.samples,
        environment=environment(devices=["cpu"], profile="ci"),
        machine=machine_identity(),
        run={"wall_s": 2.0, "relations": {"pointwise": {"seconds": 1.5, **recorder.cost["pointwise"]}}},
    )
    report["completeness"] = {"status": "complete", "exit_status": 0, "collected": 3, "ran": 3}
    return report


@pytest.fixture(scope="module")
def report() -> dict:
    return _report()


def test_report_holds_every_relation_with_tallies_and_timings(report):
    assert report["schema_version"] == SCHEMA_VERSION
    assert set(report["relations"]) == {"pointwise", "general_conv", "init"}
    pointwise = report["relations"]["pointwise"]
    assert pointwise["totals"]["examples"] == 3 and pointwise["totals"]["violations"] == 0
    assert pointwise["formulations"] == ["conv2d", "linear_over_channels"] and pointwise["timed"]
    assert pointwise["run"]["examples_per_s"] == pytest.approx(2.0)
    assert pointwise["run"]["suite_s"] == pytest.approx(
        1.5 - pointwise["run"]["checked_s"] - pointwise["run"]["timing_s"]
    )
    assert report["relations"]["init"]["timed"] is False
    keys = [r["key"] for r in report["timings"] + report["ratios"]]
    assert len(keys) == len(set(keys))
    assert "pointwise|conv2d/linear_over_channels|cpu|default|all|forward|all" in keys
    env, machine = report["environment"], report["machine"]
    assert env["hypothesis_profile"] == "ci" and env["torch"] and env["threads"] >= 1
    assert set(env["precision_flags"]) >= {"api", "mkldnn_conv"}
    assert set(machine) == {"cpu_model", "cpu_capability", "cpu_count", "gpus", "threads", "fingerprint"}


def test_machine_fingerprint_depends_on_the_machine_not_the_host(monkeypatch):
    import socket

    first = machine_identity(threads=4)
    monkeypatch.setattr(socket, "gethostname", lambda: "elsewhere")
    assert machine_identity(threads=4) == first
    assert machine_identity(threads=8)["fingerprint"] != first["fingerprint"]


def test_json_round_trip(report, tmp_path):
    notes = write_report(report, tmp_path)
    assert notes[:3] == [str(tmp_path / REPORT_JSON), str(tmp_path / REPORT_MD), str(tmp_path / REPORT_PNG)]
    assert load_report(tmp_path / REPORT_JSON) == report
    assert load_report(tmp_path) == report  # a directory holding report.json
    assert (tmp_path / REPORT_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_non_finite_ratios_are_written_as_strings(report, tmp_path):
    data = json.loads(json.dumps(report))
    data["relations"]["pointwise"]["by_device_dtype"][0]["worst_ratio"] = float("inf")
    rows = [{"relation": "pointwise", **r} for r in data["relations"]["pointwise"]["by_device_dtype"]]
    rebuilt = build_report(tallies=rows, samples=[], environment=report["environment"], machine=report["machine"])
    assert rebuilt["relations"]["pointwise"]["totals"]["worst_ratio"] == "inf"
    write_report(rebuilt, tmp_path, plot=False)
    assert "inf" in (tmp_path / REPORT_MD).read_text()
    load_report(tmp_path / REPORT_JSON)


def test_markdown_and_terminal_tables(report):
    text = render_markdown(report)
    for heading in ("## Relations", "## Which formulation is faster", "## Ratio by problem size", "## Timings"):
        assert heading in text
    assert "| pointwise | cpu (default) | conv2d / linear_over_channels | all | forward |" in text
    assert "| pointwise | cpu (default) | conv2d / linear_over_channels | float32 | backward |" in text
    assert f"![time ratio against problem size]({REPORT_PNG})" in text
    assert REPORT_PNG not in render_markdown(report, plot_name=None)
    lines = summary_lines(report)
    assert lines[0].startswith("relation")
    assert any(line.startswith("init") and line.endswith("not timed") for line in lines)
    assert any("conv2d/linear_over_channels on cpu:" in line for line in lines)


def test_rejected_cases_are_counted_per_lane_dtype_and_reason_through_merge_markdown_and_summary(report):
    from collections import Counter

    session = Session()
    session.execution = "compiled-freezing"
    session.record_rejections("pointwise", Counter({("cpu", "float64", "known compile error a-bug"): 5}))
    session.execution = "eager"
    session.record_rejections("pointwise", Counter({("cpu", "float64", "known compile error a-bug"): 2}))
    session.record_rejections("pointwise", Counter({("mps", "float64", "mps has no float64"): 1}))
    rows = rejected_rows(session.rejected)
    assert [(r["execution"], r["device"], r["cases"]) for r in rows] == [
        ("compiled-freezing", "cpu", 5), ("eager", "cpu", 2), ("eager", "mps", 1),
    ]  # fmt: skip
    merged = merge_rejected([*rows, *rows])  # two workers or jobs
    assert [r["cases"] for r in merged] == [10, 4, 2]
    doc = validate({**report, "rejected": merged}, "report.json")
    text = render_markdown(doc)
    assert "## Cases rejected before checking" in text and "16 drawn cases rejected and not checked" in text
    assert "| pointwise | cpu | default | compiled-freezing | float64 | known compile error a-bug | 10 |" in text
    assert summary_lines(doc)[-1] == (
        "16 drawn cases rejected before checking: known compile error a-bug (14), mps has no float64 (2)"
    )
    assert "rejected before checking" not in render_markdown(report)  # none rejected: no section, no line
    assert not any("rejected" in line for line in summary_lines(report))
    with pytest.raises(ReportError, match="cases"):
        validate({**report, "rejected": [{**merged[0], "cases": -1}]}, "report.json")


def test_without_matplotlib_json_and_markdown_are_still_written(report, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    notes = write_report(report, tmp_path)
    assert notes[-1] == "no plot: matplotlib is not installed (pip install 'linconv[report]')"
    assert {p.name for p in tmp_path.iterdir()} == {REPORT_JSON, REPORT_MD}


def test_merge_tallies_sums_and_keeps_the_worst():
    rows = [
        {"relation": "pointwise", "device": "cpu", "dtype": "float32", "examples": 3, "violations": 0, "exact": 1,
         "worst_ratio": 0.5},
        {"relation": "pointwise", "device": "cpu", "dtype": "float32", "examples": 4, "violations": 1, "exact": 0,
         "worst_ratio": 0.7},
        {"relation": "init", "device": "cpu", "dtype": "float32", "examples": 2, "violations": 0, "exact": 2,
         "worst_ratio": 0.0},
    ]  # fmt: skip
    merged = merge_tallies(rows)
    assert [(r["relation"], r["examples"], r["violations"], r["exact"], r["worst_ratio"]) for r in merged] == [
        ("init", 2, 0, 2, 0.0),
        ("pointwise", 7, 1, 1, 0.7),
    ]


def _broken(report: dict, path: list, value: object = None, delete: bool = False) -> dict:
    data = json.loads(json.dumps(report))
    holder = data
    for key in path[:-1]:
        holder = holder[key]
    if delete:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "delete", "field", "problem"),
    [
        (["schema_version"], None, True, "schema_version", "is missing"),
        (["schema_version"], 99, False, "schema_version", "is 99; this linconv reads version 1"),
        (["environment", "torch"], None, True, "environment.torch", "is missing"),
        (["machine", "fingerprint"], 7, False, "machine.fingerprint", "must be str, got 7"),
        (["relations", "pointwise", "totals", "examples"], "3", False, "relations.pointwise.totals.examples",
         "must be int, got '3'"),
        (["timings", 0, "median_s"], None, True, "timings[0].median_s", "is missing"),
        (["ratios", 1, "count"], 2.5, False, "ratios[1].count", "must be int, got 2.5"),
        (["samples", 0, "times"], [], False, "samples[0].times", "must be an object, got []"),
    ],
)  # fmt: skip
def test_a_malformed_report_names_the_file_and_the_field(report, tmp_path, path, value, delete, field, problem):
    file = tmp_path / REPORT_JSON
    file.write_text(json.dumps(_broken(report, path, value, delete)))
    with pytest.raises(ReportError) as info:
        load_report(file)
    assert (info.value.path, info.value.field, info.value.problem) == (str(file), field, problem)
    assert str(info.value) == f"{file}: field '{field}' {problem}"


def test_unreadable_files(tmp_path):
    with pytest.raises(ReportError, match=r"missing\.json: no such file"):
        load_report(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1,\n')
    with pytest.raises(ReportError, match=r"bad\.json: is not valid JSON \(line 2, column 1: "):
        load_report(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ReportError, match=r"field '\(top level\)' must be an object, got list"):
        validate([1, 2], bad)


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "linconv", "report", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_cli_rerenders_markdown_and_plot(report, tmp_path):
    write_report(report, tmp_path, plot=False)
    (tmp_path / REPORT_MD).unlink()
    out = tmp_path / "out"
    done = _cli(str(tmp_path / REPORT_JSON), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"wrote {out / REPORT_MD}", f"wrote {out / REPORT_PNG}"]
    assert (out / REPORT_MD).read_text() == render_markdown(report)
    done = _cli(str(tmp_path))  # beside the json
    assert done.returncode == 0 and (tmp_path / REPORT_MD).exists() and (tmp_path / REPORT_PNG).exists()


def test_cli_errors_name_the_file_and_the_field(report, tmp_path):
    done = _cli(str(tmp_path / "nothing.json"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"report: {tmp_path / 'nothing.json'}: no such file"
    file = tmp_path / REPORT_JSON
    file.write_text(json.dumps(_broken(report, ["relations", "pointwise", "totals"], delete=True)))
    done = _cli(str(file))
    assert done.returncode == 2
    assert done.stderr.strip() == f"report: {file}: field 'relations.pointwise.totals' is missing"


def test_an_xdist_run_writes_one_merged_report(tmp_path):
    """Two workers each run both tests (--dist each), so the merged report holds twice one
    worker's examples: both workers' tallies and timings arrived."""
    pytest.importorskip("xdist")
    reports = tmp_path / "reports"
    command = [
        sys.executable, "-m", "pytest", "-n", "2", "--dist", "each", "-p", "no:cacheprovider", "-q",
        str(ROOT / "properties" / "test_pointwise.py"), str(ROOT / "properties" / "test_init.py"),
        "--devices", "cpu", "--hypothesis-profile", "ci", "--report-dir", str(reports), "--timing", "1",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "linconv run report" in done.stdout
    data = load_report(reports / REPORT_JSON)
    assert data["environment"]["xdist_workers"] == 2
    pointwise, init = data["relations"]["pointwise"], data["relations"]["init"]
    # ci profile: 100 drawn per worker, plus pointwise's explicit examples (largest K in half precision)
    explicit = len(get("pointwise").examples)
    assert init["totals"]["examples"] == 200 and pointwise["totals"]["examples"] == 200 + 2 * explicit
    assert len([s for s in data["samples"] if s["relation"] == "pointwise"]) == 200 + 2 * explicit
    assert (reports / REPORT_MD).exists() and (reports / REPORT_PNG).exists()


# --- per precision mode, and devices that are absent --------------------------------------------


def _cuda_rows(session: Session) -> list[dict]:
    """Synthetic examples of pointwise on cuda in the four CUDA modes (a CPU result relabelled):
    the tallies key on the mode the session is in, not on the case."""
    result = run_relation("pointwise", Case(ConvGeometry(2, 4, 6, (5, 5)), seed=0))
    for mode, count in (("as-shipped", 3), ("strict", 2), ("strict-no-cudnn", 1), ("strict-cudnn-benchmark", 4)):
        session.mode = mode
        for _ in range(count):
            session.record(get("pointwise"), replace(result, case=replace(result.case, device="cuda")))
    return tally_rows(session.tallies)


def test_tallies_keep_the_four_cuda_modes_apart_through_report_merge_and_markdown():
    rows = _cuda_rows(Session())
    assert [(r["mode"], r["examples"]) for r in rows] == [
        ("as-shipped", 3),
        ("strict", 2),
        ("strict-cudnn-benchmark", 4),
        ("strict-no-cudnn", 1),
    ]
    assert {(r["device"], r["dtype"]) for r in rows} == {("cuda", "float32")}
    report = validate(
        build_report(
            tallies=merge_tallies(rows + rows),  # two workers' rows: summed per mode, not across modes
            samples=[],
            environment=environment(devices=["cpu"], profile="ci"),
            machine=machine_identity(),
        )
    )
    by_mode = {r["mode"]: r["examples"] for r in report["relations"]["pointwise"]["by_device_dtype"]}
    assert by_mode == {"as-shipped": 6, "strict": 4, "strict-cudnn-benchmark": 8, "strict-no-cudnn": 2}
    assert report["relations"]["pointwise"]["totals"]["examples"] == 20
    text = render_markdown(report)
    assert "| relation | device | mode | execution | dtype | examples | violations | worst error/bound |" in text
    assert "| pointwise | cuda | strict-no-cudnn | eager | float32 | 2 | 0 |" in text


def test_a_tally_row_without_a_mode_still_validates_and_reads_as_its_devices_modes(report):
    old = json.loads(json.dumps(report))
    for entry in old["relations"].values():
        for row in entry["by_device_dtype"]:
            row.pop("mode")
    validate(old)
    assert tally_mode({"device": "cpu"}) == "default"  # the CPU has one mode: nothing was pooled
    assert tally_mode({"device": "cuda:1"}) == ALL_MODES  # four modes pooled in one row
    assert tally_mode({"device": "cuda", "mode": "strict"}) == "strict"


def test_absent_devices_are_named_absent_with_the_reason(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    env = environment(devices=["cpu", "cuda", "mps"], profile="ci")
    assert list(env["devices"]) == ["cpu"]
    assert env["devices_absent"] == {
        "cuda": "CUDA is not available here (torch.cuda.is_available() is False)",
        "mps": "MPS is not available here (torch.backends.mps.is_available() is False)",
    }
    report = build_report(tallies=[], samples=[], environment=env, machine=machine_identity())
    text = render_markdown(validate(report))
    assert "; cuda absent: CUDA is not available here" in text
    assert "mps absent: MPS is not available here" in text
    assert "Apple MPS" not in text and "GPUs: none" in text


def test_a_present_device_is_named_by_torch(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    present, absent = device_truth(["cpu", "cuda:0"])
    assert present["cuda:0"] == "NVIDIA H200" and absent == {}
    assert device_truth(["cuda:1"]) == ({}, {"cuda:1": "cuda:1 does not exist: torch sees 1 CUDA device(s)"})


# Two precision modes on the CPU (the strict lane works without a GPU), so that a plain pytest run
# shows the mode travelling from the test parameter to the session's tallies and the report.
TWO_CPU_MODES = """
from hypothesis import settings
from linconv.lanes.modes import DEVICE_MODES

DEVICE_MODES["cpu"] = ("default", "strict")
settings.register_profile("two_modes", max_examples=5, database=None, deadline=None, derandomize=True)
"""


def test_a_property_run_keeps_a_tally_per_precision_mode(tmp_path):
    (tmp_path / "two_modes.py").write_text(TWO_CPU_MODES)
    reports = tmp_path / "reports"
    command = [
        sys.executable, "-m", "pytest", "-p", "two_modes", "-p", "no:cacheprovider", "-q",
        str(ROOT / "properties" / "test_pointwise.py"), "--devices", "cpu", "--hypothesis-profile", "two_modes",
        "--report-dir", str(reports), "--timing", "off",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = load_report(reports / REPORT_JSON)["relations"]["pointwise"]["by_device_dtype"]
    examples = {mode: sum(r["examples"] for r in rows if r["mode"] == mode) for mode in ("default", "strict")}
    assert examples["default"] == examples["strict"] > 0  # derandomised: the same draws in each mode
    assert {r["mode"] for r in rows} == {"default", "strict"}
