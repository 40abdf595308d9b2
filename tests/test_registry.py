"""One record per relation: a relation registered in one place is found by every consumer —
property collection (its own property and the cross-device one), calibration, the fault search,
the run report, the corpus and the command line — and the built-in records are complete."""

from __future__ import annotations

import dataclasses
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from linconv import corpus
from linconv.__main__ import main
from linconv.calibration import calibrated_relations, collect
from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.faults import Fault
from linconv.faults.catalogue.sharpness import drop_last_input_channel
from linconv.faults.search import search
from linconv.relations import get, names, register, registered, relations
from linconv.relations.pointwise import POINTWISE
from linconv.runreport import build_report, environment, machine_identity

ROOT = Path(__file__).resolve().parent.parent
TOY = dataclasses.replace(
    POINTWISE, name="toy_pointwise", statement="a toy: the pointwise relation under another name", property_module=""
)
CASE = Case(ConvGeometry(2, 3, 4, (3, 3)), seed=5)

# The toy, registered by a plugin in a pytest subprocess.
TOY_PLUGIN = """
import dataclasses
from linconv.relations import register
from linconv.relations.pointwise import POINTWISE

register(dataclasses.replace(POINTWISE, name="toy_pointwise", statement="a toy", property_module=""))
"""


@pytest.fixture
def toy():
    with registered(TOY) as relation:
        yield relation


def test_the_toy_is_collected_as_a_property_and_a_cross_device_case(tmp_path):
    (tmp_path / "toy_plugin.py").write_text(TOY_PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "toy_plugin", "-p", "no:cacheprovider", "--collect-only", "-q",
         "--devices", "cpu", "properties/test_registered.py", "properties/test_cross_device.py"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "properties/test_registered.py::test_toy_pointwise[cpu-default-float32]" in proc.stdout
    assert "properties/test_cross_device.py::test_cpu_and_accelerator_agree[cpu-default-toy_pointwise]" in proc.stdout


def test_the_toy_is_calibrated(toy):
    assert "toy_pointwise" in calibrated_relations()
    samples, _ = collect("toy_pointwise", 3, seed=1)
    assert samples and {s.relation for s in samples} == {"toy_pointwise"}


def test_a_fault_on_the_toy_is_searched_with_its_strategy(toy):
    fault = Fault("toy_drop", "one dropped term (sharpness probe)", "drop a channel", "toy_pointwise",
                  "linear_over_channels", drop_last_input_channel)  # fmt: skip
    outcome = search(fault, shrink=False, max_examples=50)
    assert outcome.caught and outcome.caught_by.startswith("toy_pointwise: linear_over_channels")


def test_the_report_states_the_toy(toy):
    row = {"relation": "toy_pointwise", "device": "cpu", "dtype": "float32", "examples": 1, "violations": 0,
           "exact": 0, "worst_ratio": 0.1}  # fmt: skip
    env = environment(devices=["cpu"], profile="ci")
    report = build_report(tallies=[row], samples=[], environment=env, machine=machine_identity())
    assert report["relations"]["toy_pointwise"]["statement"] == TOY.statement


def test_the_corpus_keeps_and_replays_a_toy_case(toy, tmp_path):
    path, _ = corpus.add(corpus.Regression("toy_pointwise", CASE), tmp_path)
    assert corpus.load_file(path).relation == "toy_pointwise"
    assert main(["regressions", "check", "--dir", str(tmp_path), "--devices", "cpu"]) == 0


def test_the_command_line_offers_the_toy(toy, capsys):
    assert main(["calibrate", "--relations", "toy_pointwise", "--examples", "2"]) == 0
    assert "toy_pointwise: 2 examples" in capsys.readouterr().out
    assert main(["calibrate", "--relations", "nope"]) == 2
    assert "toy_pointwise" in capsys.readouterr().err


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match=r"^register: a relation named 'pointwise' is already registered$"):
        register(dataclasses.replace(POINTWISE))
    with pytest.raises(ValueError, match=r"^relation must be one of \("):
        get("toy_pointwise")


@pytest.mark.parametrize("relation", relations(), ids=lambda r: r.name)
def test_every_relation_is_complete(relation):
    assert relation.statement and relation.formulations
    assert relation.strategy() is not None
    assert relation.name in names()
    if relation.property_module:  # its property is in that module, built from the record
        module = importlib.import_module(relation.property_module.removesuffix(".py").replace("/", "."))
        tests = [v for v in vars(module).values() if getattr(v, "linconv_relation", None) == relation.name]
        assert len(tests) == 1, f"{relation.property_module} must hold exactly one property of {relation.name!r}"


@pytest.mark.parametrize("relation", relations(), ids=lambda r: r.name)
def test_every_relation_draws_each_of_its_dtypes_alone(relation):
    # its property runs one test per dtype of Relation.dtypes: the strategy must draw each alone
    from hypothesis import HealthCheck, given, settings

    from linconv.core import config

    drawn: set[str] = set()

    @settings(max_examples=3, database=None, suppress_health_check=list(HealthCheck))
    @given(relation.strategy())
    def draw(case):
        drawn.add(case.dtype)

    for dtype in relation.dtypes:
        with config.drawing_dtype(dtype):
            draw()
    assert drawn == set(relation.dtypes)


def test_a_relation_draws_its_share_of_the_profile():
    from hypothesis import settings

    from properties.support import relation_property

    with registered(dataclasses.replace(TOY, example_share=0.25)):
        test = relation_property("toy_pointwise")
    budget = test._hypothesis_internal_use_settings.max_examples
    assert budget == max(1, -(-settings.default.max_examples // 4))  # a quarter, rounded up
    with registered(TOY):
        full = relation_property("toy_pointwise")
    assert full._hypothesis_internal_use_settings.max_examples == settings.default.max_examples
    with pytest.raises(ValueError, match=r"^relation 'toy_pointwise': example_share must be in \(0, 1\], got 0$"):
        dataclasses.replace(TOY, example_share=0)
