"""Every relation goes through the same property glue: a violation of init and a negative control
that does not fire (the classifier head's) are counted in the run report and captured as pending
corpus cases, like any other relation's counterexample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A small profile, and a negative control that cannot fire: its "softmax" formulation is the plain head.
PLUGIN = """
import dataclasses
from hypothesis import Phase, settings
from linconv.relations import register
from linconv.relations.classifier_head import CLASSIFIER_HEAD, CLASSIFIER_HEAD_WITH_SOFTMAX

silent = {"softmax_then_ce": CLASSIFIER_HEAD.formulations["linear_head"]}
register(dataclasses.replace(CLASSIFIER_HEAD_WITH_SOFTMAX, name="silent_softmax_control", property_module="",
                             formulations=silent))
settings.register_profile("glue", max_examples=30, database=None, deadline=None, derandomize=True,
                          phases=[Phase.explicit, Phase.generate, Phase.shrink])
"""


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "glue_plugin.py").write_text(PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), "LINCONV_TIMING": "off"}
    command = [sys.executable, "-m", "pytest", "-p", "glue_plugin", "-p", "no:cacheprovider", "--devices", "cpu",
               "--hypothesis-profile", "glue", "--report-dir", str(tmp_path / "report"),
               "--capture-dir", str(tmp_path / "pending"), "-q", *args]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _pending(tmp_path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "pending").glob("*.json"))]


def _totals(tmp_path: Path, relation: str) -> dict:
    return json.loads((tmp_path / "report" / "report.json").read_text())["relations"][relation]["totals"]


def test_an_init_violation_reaches_the_report_and_the_corpus(tmp_path):
    proc = _run(tmp_path, "properties/test_init.py", "--inject-fault", "init_linear_fan_out")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert _totals(tmp_path, "init")["violations"] >= 1
    known = json.loads((tmp_path / "report" / "report.json").read_text())["known_bugs"]
    assert {row["name"] for row in known} >= {"grouped-conv-bwd-weight-size1-strides-channels-last"}
    assert all(isinstance(row["reproduced"], bool) for row in known)
    cases = _pending(tmp_path)  # one per dtype test that found it
    assert cases and all(c["relation"] == "init" and c["found"][0]["violations"][0]["lane"] == "exact" for c in cases)


def test_a_silent_negative_control_reaches_the_report_and_the_corpus(tmp_path):
    proc = _run(tmp_path, "properties/test_registered.py")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "negative control 'silent_softmax_control' did not fire" in proc.stdout
    assert _totals(tmp_path, "silent_softmax_control")["violations"] >= 1
    cases = _pending(tmp_path)  # one per dtype test (float32, float64)
    assert {c["relation"] for c in cases} == {"silent_softmax_control"} and {c["case"]["dtype"] for c in cases} == {
        "float32",
        "float64",
    }
    error = "AssertionError: negative control 'silent_softmax_control'"
    assert all(c["found"][0]["error"].startswith(error) for c in cases)


def test_every_dtype_gets_its_share_of_the_examples(tmp_path):
    # one test per dtype, each drawing only its dtype, with the property's budget split evenly
    # (glue: 30 examples -> 8 a dtype); a control of float32/float64 splits its own budget in two
    proc = _run(tmp_path, "--hypothesis-show-statistics",
                "properties/test_pointwise.py::test_conv1x1_equals_linear_over_channels",
                "properties/test_composition.py::test_fused_linear_differs_with_activation_between")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "6 passed" in proc.stdout
    report = json.loads((tmp_path / "report" / "report.json").read_text())["relations"]
    drawn = {row["dtype"]: row["examples"] for row in report["pointwise"]["by_device_dtype"]}
    assert set(drawn) == {"float32", "float64", "bfloat16", "float16"}
    assert all(n >= 8 - 3 for n in drawn.values()), drawn  # 8 each, less the examples a known bug avoids
    assert proc.stdout.count("Stopped because settings.max_examples=8") == 4
    assert proc.stdout.count("Stopped because settings.max_examples=15") == 2  # the control: 30 / 2
    control = {row["dtype"] for row in report["composition_with_activation"]["by_device_dtype"]}
    assert control == {"float32", "float64"}


RECORDER = """
import json, os
from linconv.plugins.session import SESSION

_record = SESSION.record

def record(relation, result):
    with open(os.environ["DRAWN_LOG"], "a") as log:
        log.write(json.dumps([result.case.dtype, repr(result.case.geometry), result.case.seed]) + "\\n")
    return _record(relation, result)

SESSION.record = record
"""


@pytest.mark.parametrize("search", [["--hypothesis-profile", "ci"], ["--hypothesis-seed", "3"]], ids=["ci", "seed"])
def test_the_dtype_tests_of_a_property_search_apart(tmp_path, search):
    # the tests of one property share a function: without their own digest / seed, derandomized (ci)
    # or seeded runs would draw the same geometries and seeds in every dtype test
    (tmp_path / "recorder.py").write_text(RECORDER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), "LINCONV_TIMING": "off",
           "DRAWN_LOG": str(tmp_path / "drawn.jsonl")}  # fmt: skip
    command = [sys.executable, "-m", "pytest", "-p", "recorder", "-p", "no:cacheprovider", "--devices", "cpu",
               "--dtypes", "float32,float64", "--report-dir", str(tmp_path / "report"), "-q", *search,
               "properties/test_pointwise.py::test_conv1x1_equals_linear_over_channels"]  # fmt: skip
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    drawn: dict[str, list] = {"float32": [], "float64": []}
    for line in (tmp_path / "drawn.jsonl").read_text().splitlines():
        dtype, geometry, seed = json.loads(line)
        drawn[dtype].append((geometry, seed))
    assert min(len(v) for v in drawn.values()) >= 10
    first = min(len(v) for v in drawn.values())
    same = sum(a == b for a, b in zip(drawn["float32"][:first], drawn["float64"][:first], strict=True))
    assert same <= first // 10, f"{same} of {first} examples drawn alike in both dtype tests"
