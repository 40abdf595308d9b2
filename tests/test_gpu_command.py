"""The prepared GPU run (``python -m linconv gpu``) without a GPU: it refuses cleanly, its plan
covers every CUDA precision mode and every stage within the budget, the whole run rehearses on
the CPU end to end, and its page lists what went wrong from what the stages wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from linconv.gpurun.document import GpuRun, page_name, render, violations
from linconv.gpurun.plan import BENCHMARKS_S, CHECKS_S, DEFAULT_BUDGET_S, RESERVE_S, Stage, StageResult, plan
from linconv.gpurun.probe import ErrorRow
from linconv.lanes.modes import DEVICE_MODES
from linconv.relations import get

ROOT = Path(__file__).resolve().parents[1]


def _gpu(*args: str, cwd: Path, timeout: int = 60) -> subprocess.CompletedProcess:
    """The command as the GPU machine runs it: from the source tree, PYTHONPATH only, no install."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "linconv", "gpu", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="the dry run is of a machine without CUDA")
def test_without_cuda_it_refuses_cleanly_and_runs_nothing(tmp_path):
    done = _gpu("--doc-dir", str(tmp_path / "doc"), "--work", str(tmp_path / "work"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "gpu: --device cuda: CUDA is not available here (torch.cuda.is_available() is False). This run checks "
        "that device and needs it: nothing was run, no page written (`--device cpu` rehearses the run without a "
        "GPU; `--plan` shows it).\n"
    )
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "doc").exists() and not (tmp_path / "work").exists()


def test_the_plan_covers_every_cuda_mode_the_corpus_faults_and_benchmarks_within_the_budget(tmp_path):
    done = _gpu("--plan", "--work", str(tmp_path / "work"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for mode in DEVICE_MODES["cuda"]:
        assert f"-m pytest properties --devices cuda --modes {mode} --hypothesis-profile ci" in done.stdout
    assert "-m linconv faults --device cuda" in done.stdout
    assert "-m pytest benchmarks/bench_formulations.py --benchmark-only --devices cuda" in done.stdout
    assert not (tmp_path / "work").exists()
    # the stages' limits and the reserve fit the 8 minutes
    assert CHECKS_S + BENCHMARKS_S + RESERVE_S <= DEFAULT_BUDGET_S == 480
    groups = plan("cuda", tmp_path)
    assert [len(g) for g in groups] == [len(DEVICE_MODES["cuda"]) + 1, 1]
    # properties/ holds the cross-device property and the corpus replay: one pytest per mode runs them
    assert {"test_cross_device.py", "test_regressions.py"} <= {p.name for p in (ROOT / "properties").iterdir()}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--device", "xpu"],
            "gpu: --device: device must be one of ('cpu', 'cuda', 'mps') (optionally cuda:N), got 'xpu'",
        ),
        (["--budget-s", "20"], "gpu: --budget-s must be at least 90 seconds, got 20"),
        (["--profile", "fast"], "gpu: --profile: Hypothesis profile must be one of"),
        (["--fault-examples", "0"], "gpu: --fault-examples must be >= 1, got 0"),
        (["--bench-max-time", "0"], "gpu: --bench-max-time must be a number of seconds > 0, got 0"),
    ],
)
def test_bad_arguments_are_refused_with_the_argument_named(tmp_path, args, message):
    done = _gpu(*args, "--work", str(tmp_path / "work"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(message)
    assert "Traceback" not in done.stderr


def test_a_cpu_rehearsal_runs_every_stage_and_writes_the_page(tmp_path):
    """The whole run on the CPU, shrunk (10 examples per property, 2 per fault, 0.01 s per
    benchmark): every stage runs from the source tree and the page holds every section. Two
    examples per fault are too few to catch them all: the page lists those as violations."""
    doc, work = tmp_path / "doc", tmp_path / "work"
    done = _gpu(
        *("--device", "cpu", "--profile", "debug", "--fault-examples", "2", "--bench-max-time", "0.01"),
        *("--budget-s", "400", "--doc-dir", str(doc), "--work", str(work)),
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    text = (doc / "cpu-rehearsal.md").read_text(encoding="utf-8")
    for heading in ("## Machine", "## What ran", "## Every violation", "## Properties per precision mode",
                    "## Measured TF32 vs IEEE error", "## Conv vs Linear timings", "## Fault benchmark"):  # fmt: skip
        assert heading in text
    assert f"| torch | {torch.__version__} |" in text
    assert "| properties-default | every property" in text and "| exit 0 after" in text
    # the debug profile's 10 drawn examples split over the four dtype tests (3 each), and the explicit
    # ones (largest K in half precision)
    assert f"| pointwise | cpu (default) | {4 * 3 + len(get('pointwise').examples)} | 0 |" in text
    assert "harmful fault not caught" in text  # 2 examples per fault: some escape, and the page says so
    assert "| head 512->1000 \\| batch 1 \\| forward | conv2d |" in text
    assert (work / "properties-default" / "report.json").is_file()
    assert (work / "logs" / "benchmarks.log").is_file()


# --- the page from what the stages wrote ------------------------------------------------------------


def _result(tmp_path: Path, name: str, code: int | None, outputs: dict[str, str]) -> StageResult:
    paths = []
    for file_name, content in outputs.items():
        path = tmp_path / name / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content:
            path.write_text(content, encoding="utf-8")
        paths.append(path)
    stage = Stage(name, ("python", "-m", name), tuple(paths), what=f"the {name} stage")
    return StageResult(stage, code, 12.0, tmp_path / f"{name}.log", [p for p in paths if not p.is_file()])


JUNIT = """<?xml version="1.0"?><testsuites><testsuite name="pytest">
<testcase classname="properties.test_cross_device" name="test_cpu_and_accelerator_agree[cuda-strict-pointwise]">
<failure message="AssertionError: pointwise/conv2d: cpu 1.0 vs cuda 1.5 at flat index 3 differ by more than both"/>
</testcase><testcase classname="properties.test_pointwise" name="test_ok[cuda-strict]"/></testsuite></testsuites>"""


def test_the_page_names_every_violation_and_every_missing_output(tmp_path):
    faults = [
        {"fault": "half_accumulated_in_half", "harmful": True, "caught": False, "as_expected": False,
         "detail": "", "worst_detail": "flatten_linear output ratio 0.4"},
        {"fault": "reduction_split_in_halves", "harmful": False, "caught": False, "as_expected": True},
    ]  # fmt: skip
    stages = [
        _result(tmp_path, "properties-strict", 1, {"report.json": "", "junit.xml": JUNIT}),
        _result(tmp_path, "properties-as-shipped", None, {"report.json": "", "junit.xml": ""}),
        _result(tmp_path, "faults", 1, {"faults.json": json.dumps(faults)}),
    ]
    errors = [ErrorRow("[8,512,4,4] -> 5", "full_kernel", "conv2d", ("conv",), {"as-shipped": 3e-4, "strict": 6e-8})]
    run = GpuRun("cuda", "python -m linconv gpu", 480.0, 300.0, {"device": "NVIDIA H200"}, errors, stages)
    run.problems = ["the TF32 vs IEEE measurement raised RuntimeError: CUDA error"]
    found = violations(run)
    assert [(v.source, v.what) for v in found] == [
        ("probe", "the TF32 vs IEEE measurement raised RuntimeError: CUDA error"),
        ("properties-strict", "stage did not complete cleanly"),  # no report.json
        ("properties-strict", "properties.test_cross_device::test_cpu_and_accelerator_agree[cuda-strict-pointwise]"),
        ("properties-as-shipped", "stage did not complete cleanly"),
        ("fault benchmark", "half_accumulated_in_half: harmful fault not caught"),
    ]
    assert "stopped at its deadline after 12 s; did not write report.json, junit.xml" in found[3].detail
    text = render(run)
    assert text.startswith("# linconv on NVIDIA H200")
    assert "| [8,512,4,4] -> 5 | full_kernel | conv2d | conv | 3.00e-04 | 6.00e-08 | 5e+03 |" in text
    assert "No run report was written: no tallies to show." in text
    assert "0/1 harmful faults caught, 0/1 benign changes flagged" in text
    assert "No benchmark results were written." in text
    assert page_name("NVIDIA H200 NVL") == "nvidia-h200-nvl.md"


def test_the_ci_script_is_the_same_command(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    script = ["bash", str(ROOT / ".ci" / "gpu")]
    planned = subprocess.run([*script, "--plan"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert planned.returncode == 0 and "--modes strict-cudnn-benchmark" in planned.stdout
    if not torch.cuda.is_available():
        refused = subprocess.run(script, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and refused.stderr.startswith("gpu: --device cuda: CUDA is not available")
