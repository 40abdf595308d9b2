"""Merging the reports of several jobs (``python -m linconv report A B --out DIR``): counts add,
the worst ratio is the maximum, samples are pooled, regression outcomes keep the worst, and
reports of different torch versions are refused with the file and field named."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from linconv.__main__ import main
from linconv.runreport import (
    REPORT_JSON,
    REPORT_MD,
    ReportError,
    load_report,
    merge_report_files,
    merge_reports,
    validate,
)
from tests.test_report import _report


@pytest.fixture(scope="module")
def shard() -> dict:
    report = _report()
    report["regressions"] = [
        {"id": "abc", "relation": "pointwise", "device": "cpu", "mode": "default", "outcome": "passed"}
    ]
    return report


def _second(shard: dict) -> dict:
    """Another job: twice the pointwise examples, a worse ratio, a failed regression case."""
    other = copy.deepcopy(shard)
    row = other["relations"]["pointwise"]["by_device_dtype"][0]
    row["examples"], row["worst_ratio"], row["violations"] = 6, 0.9, 1
    other["run"]["wall_s"] = 7.0
    other["environment"]["linconv_env"] = {"LINCONV_SHARD": "2"}
    other["regressions"][0]["outcome"] = "failed"
    return other


def test_counts_add_worst_is_max_samples_pool(shard):
    merged = validate(merge_reports([("a", shard), ("b", _second(shard))]))
    pointwise = merged["relations"]["pointwise"]
    assert pointwise["totals"]["examples"] == 3 + 6
    assert pointwise["totals"]["violations"] == 1
    assert pointwise["totals"]["worst_ratio"] == 0.9
    assert len(merged["samples"]) == 2 * len(shard["samples"])
    assert sum(r["count"] for r in merged["timings"]) == 2 * sum(r["count"] for r in shard["timings"])
    assert pointwise["run"]["seconds"] == pytest.approx(2 * shard["relations"]["pointwise"]["run"]["seconds"])
    assert merged["run"]["wall_s"] == 7.0  # the jobs ran side by side: the slowest one
    assert [s["source"] for s in merged["shards"]] == ["a", "b"]
    assert merged["regressions"][0]["outcome"] == "failed"


def test_merging_one_report_changes_no_count(shard):
    merged = merge_reports([("a", shard)])
    for name, entry in shard["relations"].items():
        assert merged["relations"][name]["totals"] == entry["totals"]
    assert merged["timings"] == shard["timings"] and merged["ratios"] == shard["ratios"]


def test_reports_of_two_torches_are_refused(shard):
    other = copy.deepcopy(shard)
    other["environment"]["torch"] = "9.9.9"
    with pytest.raises(ReportError) as info:
        merge_reports([("a.json", shard), ("b.json", other)])
    torch_version = shard["environment"]["torch"]
    assert str(info.value) == (
        f"b.json: field 'environment.torch' is 9.9.9, but a.json ran torch {torch_version}: merge only jobs "
        "of one torch build (compare torches with `python -m linconv gate`)"
    )
    with pytest.raises(ValueError, match="reports must name at least one report to merge, got none"):
        merge_reports([])


def _write(directory: Path, report: dict) -> Path:
    directory.mkdir()
    (directory / REPORT_JSON).write_text(json.dumps(report), encoding="utf-8")
    return directory


def test_cli_merges_into_out(shard, tmp_path, capsys):
    a, b = _write(tmp_path / "seed-1", shard), _write(tmp_path / "seed-2", _second(shard))
    assert main(["report", str(a), str(b), "--out", str(tmp_path / "merged")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("merged 2 reports: ")
    merged = load_report(tmp_path / "merged")
    assert merged == merge_report_files([a, b]) | {"created": merged["created"]}
    assert f"`{a}`" in (tmp_path / "merged" / REPORT_MD).read_text(encoding="utf-8")


def test_cli_merge_needs_out_and_readable_reports(shard, tmp_path, capsys):
    a = _write(tmp_path / "seed-1", shard)
    assert main(["report", str(a), str(a)]) == 2
    assert capsys.readouterr().err == "report: --out is required to merge 2 reports (a directory to write into)\n"
    missing = tmp_path / "seed-9"
    assert main(["report", str(a), str(missing), "--out", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err == f"report: {missing}: no such file\n"
    assert not (tmp_path / "m").exists()


def test_a_merged_report_keeps_device_truth(shard):
    """A device is present when any job ran it and absent only where none did; each job's own
    devices stay in its shard entry."""
    gpu_job = copy.deepcopy(shard)
    gpu_job["environment"]["devices"] = {"cpu": "Xeon", "cuda": "NVIDIA H200"}
    gpu_job["environment"]["devices_absent"] = {"mps": "MPS is not available here"}
    cpu_job = copy.deepcopy(shard)
    cpu_job["environment"]["devices"] = {"cpu": "Xeon"}
    cpu_job["environment"]["devices_absent"] = {"cuda": "CUDA is not available here", "mps": "MPS is not available"}
    merged = validate(merge_reports([("gpu", gpu_job), ("cpu", cpu_job)]))
    assert merged["environment"]["devices"] == {"cpu": "Xeon", "cuda": "NVIDIA H200"}
    assert merged["environment"]["devices_absent"] == {"mps": "MPS is not available"}
    assert [s["devices_absent"] for s in merged["shards"]] == [
        {"mps": "MPS is not available here"},
        {"cuda": "CUDA is not available here", "mps": "MPS is not available"},
    ]


def test_merging_keeps_precision_modes_apart(shard):
    row = shard["relations"]["pointwise"]["by_device_dtype"][0]
    strict, shipped = copy.deepcopy(shard), copy.deepcopy(shard)
    for report, mode in ((strict, "strict"), (shipped, "as-shipped")):
        report["relations"]["pointwise"]["by_device_dtype"] = [{**row, "device": "cuda", "mode": mode}]
    again = copy.deepcopy(strict)  # another job of the strict mode (a copy of one run would be refused)
    again["environment"]["linconv_env"] = {"LINCONV_SHARD": "3"}
    merged = merge_reports([("a", strict), ("b", shipped), ("c", again)])
    rows = merged["relations"]["pointwise"]["by_device_dtype"]
    assert [(r["mode"], r["examples"]) for r in rows] == [
        ("as-shipped", row["examples"]),
        ("strict", 2 * row["examples"]),
    ]
