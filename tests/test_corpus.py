"""The regression corpus: ids, file format, validation errors, merging, atomic writes, replay outcomes, capture."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from linconv import corpus
from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.corpus import CorpusError, Regression, capture, replay
from linconv.measure import Comparison, RelationResult, RelationViolation
from linconv.relations import registered, run_relation
from linconv.relations.pointwise import POINTWISE, linear_over_channels

try:
    from builtins import ExceptionGroup
except ImportError:  # Python 3.10: the backport Hypothesis depends on
    from exceptiongroup import ExceptionGroup

ROOT = Path(__file__).resolve().parent.parent
TINY = Case(ConvGeometry(1, 2, 3, (2, 2)), seed=7)
BATCH_ONE_HEAD = Case(ConvGeometry(1, 512, 5, (4, 4), kernel=(4, 4)), seed=1)


def drop_bias_at_batch_one(x, p, g):
    """The fault of the e2e test: a Linear that forgets its bias when the batch has one sample."""
    y = linear_over_channels(x, p, g)
    return y - p.bias.view(1, -1, 1, 1) if g.batch == 1 and p.bias is not None else y


# A relation registered for a test: the pointwise relation under another name, broken or not.
TOY = "pointwise_under_test"


def toy(formulation: str | None = None, fn=None):
    relation = POINTWISE if formulation is None else POINTWISE.with_formulation(formulation, fn)
    return registered(dataclasses.replace(relation, name=TOY))


@pytest.fixture
def faulty_pointwise():
    with toy("linear_over_channels", drop_bias_at_batch_one):
        yield


def stored(tmp_path, regression: Regression) -> dict:
    path, _ = corpus.add(regression, tmp_path)
    return json.loads(path.read_text())


def write_json(tmp_path, data, name=None):
    path = tmp_path / (name or f"{data.get('id', 'x')}.json")
    path.write_text(json.dumps(data))
    return path


# --- ids ------------------------------------------------------------------------------------


def test_the_id_hashes_the_canonical_json_of_relation_and_case():
    # Sorted keys, no spaces, only fields that differ from their defaults: adding a defaulted field
    # to Case or ConvGeometry later does not rename the stored files.
    canonical = (
        '{"case":{"geometry":{"batch":1,"in_channels":512,"kernel":[4,4],"out_channels":5,"size":[4,4]},'
        '"seed":1},"relation":"full_kernel"}'
    )
    assert corpus.case_id("full_kernel", BATCH_ONE_HEAD) == hashlib.sha256(canonical.encode()).hexdigest()[:12]
    assert (ROOT / "regressions" / f"{corpus.case_id('full_kernel', BATCH_ONE_HEAD)}.json").exists()  # the seed


def test_id_ignores_the_device_and_depends_on_relation_and_case():
    base = corpus.case_id("pointwise", TINY)
    assert corpus.case_id("pointwise", TINY.on("cuda")) == base
    assert corpus.case_id("general_conv", TINY) != base
    assert corpus.case_id("pointwise", replace(TINY, seed=8)) != base
    assert re.fullmatch(r"[0-9a-f]{12}", base)


def test_a_case_round_trips_through_its_file(tmp_path):
    regression = Regression("pointwise", TINY.on("cuda"), "xfail", ">=2.1,<2.4", "why", "https://x", ({"a": 1},))
    path, merged = corpus.add(regression, tmp_path)
    assert not merged and path.name == f"{regression.id}.json"
    loaded = corpus.load_file(path)
    assert loaded == regression and loaded.found == ({"a": 1},) and loaded.case.device == "cpu"
    text = path.read_text()
    assert '"kernel": [1, 1]' in text and text.endswith("}\n")  # short lists stay on one line


def test_a_duplicate_merges_its_sightings_and_keeps_the_note(tmp_path):
    first = Regression("pointwise", TINY, note="kept", found=({"date": "1"},))
    second = Regression("pointwise", TINY, note="ignored", link="https://l", found=({"date": "1"}, {"date": "2"}))
    corpus.add(first, tmp_path)
    path, merged = corpus.add(second, tmp_path)
    assert merged and list(tmp_path.glob("*.json")) == [path]
    data = json.loads(path.read_text())
    assert data["note"] == "kept" and data["link"] == "https://l"
    assert data["found"] == [{"date": "1"}, {"date": "2"}]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path, _ = corpus.add(Regression("pointwise", TINY, note="old"), tmp_path)
    before = path.read_text()

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        corpus.write(Regression("pointwise", TINY, note="new"), tmp_path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


# --- version ranges -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "version", "inside"),
    [
        (">=2.1,<2.4", "2.3.1", True),
        (">=2.1,<2.4", "2.4.0", False),
        (">=2.1,<2.4", "2.0.1", False),
        (">=2.13", "2.13.0+cpu", True),  # local label ignored
        ("==2.13.0", "2.13.0+cu121", True),
        (">=2.13", "2.15.0.dev20260101+cpu", True),  # a nightly counts
    ],
)
def test_torch_ranges(text, version, inside):
    assert corpus.torch_in_range(text, version) is inside


@pytest.mark.parametrize("text", ["", "  ", "2.1", "2.1-2.4", ">=two", None, 3])
def test_bad_torch_ranges_are_refused(text):
    with pytest.raises(ValueError, match=re.escape('must be a version range like ">=2.1,<2.4", got ')):
        corpus.validate_torch_range(text)


# --- malformed files: the exact message names the file and the field -----------------------


def valid(**changes) -> dict:
    data = Regression("pointwise", TINY).to_dict()
    data.update(changes)
    return data


MALFORMED = [
    ("not JSON", None, "is not valid JSON (line 1, column 9: Expecting ',' delimiter)"),
    ("not an object", [1, 2], "must be a JSON object, got list"),
    ("missing field", {k: v for k, v in valid().items() if k != "relation"}, "relation: missing"),
    (
        "unknown field",
        valid(xfail_toch="<2"),
        "xfail_toch: unknown field (known: schema_version, id, relation, expect, xfail_torch, known_bug, note, link, "
        "case, found)",
    ),
    ("schema from the future", valid(schema_version=3), "schema_version: is 3, this linconv reads versions (1, 2)"),
    ("schema not an int", valid(schema_version="1"), "schema_version: must be an int, got '1'"),
    (
        "unknown relation",
        valid(relation="pointwize"),
        f"relation: must be one of {corpus.known_relations()}, got 'pointwize'",
    ),
    ("bad expectation", valid(expect="fail"), "expect: must be one of ('pass', 'xfail'), got 'fail'"),
    (
        "bad version range",
        valid(expect="xfail", xfail_torch="2.1 to 2.4"),
        "xfail_torch: must be a version range like \">=2.1,<2.4\", got '2.1 to 2.4' "
        "(expect is 'xfail' without a known_bug)",
    ),
    (
        "xfail without range",
        valid(expect="xfail"),
        "xfail_torch: must be a version range like \">=2.1,<2.4\", got None (expect is 'xfail' without a known_bug)",
    ),
    ("range on a pass", valid(xfail_torch="<2.4"), "xfail_torch: must be null when expect is 'pass', got '<2.4'"),
    ("note of wrong type", valid(note=["a"]), "note: must be a string or null, got ['a']"),
    ("found of wrong type", valid(found={"a": 1}), "found: must be a list of objects, got {'a': 1}"),
    ("case not an object", valid(case="x"), "case: must be an object, got 'x'"),
    (
        "case with a device",
        valid(case={**valid()["case"], "device": "cuda"}),
        "case.device: not stored: a regression case is replayed on every selected device; remove it",
    ),
    (
        "unknown case field",
        valid(case={**valid()["case"], "colour": 1}),
        "case.colour: unknown field (known: geometry, dtype, values, memory_format, input_view, head_features, seed, "
        "param_layout, invalid)",
    ),
    (
        "missing geometry field",
        valid(case={**valid()["case"], "geometry": {"batch": 1}}),
        "case.geometry.in_channels: missing",
    ),
    (
        "wrong geometry type",
        valid(case={**valid()["case"], "geometry": {**valid()["case"]["geometry"], "size": "2"}}),
        "case.geometry: size must be 1 to 3 positive ints (the spatial input size), got '2'",
    ),
    (
        "wrong case value",
        valid(case={**valid()["case"], "dtype": "float8"}),
        "case: dtype must be one of ('float32', 'float64', 'bfloat16', 'float16'), got 'float8'",
    ),
    ("id not hex", valid(id="XYZ"), "id: must be 12 lowercase hex digits, got 'XYZ'"),
]


@pytest.mark.parametrize(("data", "message"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_a_malformed_file_names_the_file_and_the_field(tmp_path, data, message):
    path = tmp_path / "case.json"
    path.write_text('{"a": 1 "b": 2}' if data is None else json.dumps(data))
    with pytest.raises(CorpusError) as info:
        corpus.load_file(path, check_name=False)
    assert str(info.value) == f"{path}: {message}"


def test_an_edited_case_no_longer_matches_its_id(tmp_path):
    data = valid()
    data["case"]["seed"] = 8
    path = write_json(tmp_path, data)
    real = corpus.case_id("pointwise", replace(TINY, seed=8))
    with pytest.raises(CorpusError) as info:
        corpus.load_file(path)
    assert str(info.value) == (
        f"{path}: id: '{data['id']}' does not match the content: sha256 of relation + case gives '{real}' "
        "(was the case edited? then the id, and the file name, must change with it)"
    )


def test_a_corpus_file_is_named_after_its_id(tmp_path):
    path = write_json(tmp_path, valid(), name="renamed.json")
    with pytest.raises(CorpusError) as info:
        corpus.load_file(path)
    assert str(info.value) == f"{path}: id: the file must be named after its id: {valid()['id']}.json"


def test_one_malformed_file_does_not_hide_the_others(tmp_path):
    corpus.add(Regression("pointwise", TINY), tmp_path)
    corpus.add(Regression("general_conv", TINY), tmp_path)
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "notes.txt").write_text("not a case")
    regressions, errors = corpus.load_corpus(tmp_path)
    assert sorted(r.relation for r in regressions) == ["general_conv", "pointwise"]
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'broken.json'}: is not valid JSON (line 1, column 2: Expecting property name "
        "enclosed in double quotes)"
    ]
    assert corpus.load_corpus(tmp_path / "missing") == ([], [])


def test_find_takes_a_unique_prefix(tmp_path):
    path, _ = corpus.add(Regression("pointwise", TINY), tmp_path)
    assert corpus.find(tmp_path, path.stem[:4]) == path
    with pytest.raises(LookupError, match=r"no case in .* with an id starting 'zz'"):
        corpus.find(tmp_path, "zz")


# --- replay outcomes ------------------------------------------------------------------------


def test_replay_passes_a_case_that_holds():
    outcome = replay.replay(Regression("pointwise", TINY), "cpu")
    assert outcome.status == "pass" and outcome.result is not None


def test_replay_fails_a_case_the_fault_breaks(faulty_pointwise):
    outcome = replay.replay(Regression(TOY, TINY, note="batch one"), "cpu")
    assert outcome.status == "fail"
    assert outcome.message.startswith(f"regression {corpus.case_id(TOY, TINY)} ({TOY}) on cpu failed. ")
    assert "Note: batch one" in outcome.message and "linear_over_channels output" in outcome.message


def test_a_crash_is_a_failure_with_the_case():
    def crash(x, p, g):
        raise RuntimeError("kernel exploded")

    with toy("conv2d", crash):
        outcome = replay.replay(Regression(TOY, TINY), "cpu")
    assert outcome.status == "fail" and "RuntimeError: kernel exploded" in outcome.message
    assert f"check_relation({TOY!r}" in outcome.message


def test_a_known_bug_inside_its_range_is_xfail_and_xpass_when_fixed():
    known = Regression(TOY, TINY, "xfail", f"=={torch.__version__.split('+')[0]}", note="upstream bug")
    with toy("linear_over_channels", drop_bias_at_batch_one):
        assert replay.replay(known, "cpu").status == "xfail"
    with toy():
        outcome = replay.replay(known, "cpu")
    assert outcome.status == "xpass"
    assert "If it passes, torch fixed it: narrow the range" in outcome.message


def test_outside_its_range_a_known_bug_must_pass(faulty_pointwise):
    old_bug = Regression(TOY, TINY, "xfail", ">=1.0,<2.0")
    outcome = replay.replay(old_bug, "cpu")
    assert outcome.status == "fail"
    assert f"marked xfail for torch >=1.0,<2.0, but it fails on torch {torch.__version__}, outside" in outcome.message


def test_a_negative_control_must_fire():
    case = Case(ConvGeometry(2, 3, 4, (3, 3), kernel=(3, 3)), head_features=2, seed=3)
    assert run_relation("composition_with_activation", case).violations  # the control fires on this case
    assert replay.replay(Regression("composition_with_activation", case), "cpu").status == "pass"


def test_a_dtype_the_device_cannot_run_is_skipped(monkeypatch):
    monkeypatch.setattr(replay, "device_unavailable_reason", lambda device: None)
    outcome = replay.replay(Regression("pointwise", replace(TINY, dtype="float64")), "mps")
    assert outcome.status == "skip" and outcome.message.startswith("mps cannot run float64")


def test_special_relations_replay():
    assert replay.replay(Regression("init", TINY), "cpu").status == "pass"
    head = Case(ConvGeometry(1, 2, 3, (2, 2), kernel=(2, 2)), seed=1)
    assert replay.replay(Regression("classifier_head", head), "cpu").status == "pass"


# --- capture ----------------------------------------------------------------------------------


def violation(faulty_case: Case) -> RelationViolation:
    result = run_relation(TOY, faulty_case)
    assert result.violations
    return RelationViolation(result)


def test_capture_reads_the_case_pinned_to_the_exception(faulty_pointwise, tmp_path):
    exc = violation(TINY)
    capture.remember(exc, TOY, TINY)
    (failure,) = capture.failures_in(exc)
    regression = failure.regression(test="t::x[cpu-default]", precision_mode="default")
    data = stored(tmp_path, regression)
    sighting = data["found"][0]
    assert data["relation"] == TOY and data["expect"] == "pass" and "device" not in data["case"]
    assert {"date", "test", "device", "dtype", "flags", "torch", "hypothesis", "error", "violations"} <= set(sighting)
    assert sighting["torch"] == torch.__version__ and sighting["flags"]["api"] in ("fp32_precision", "allow_tf32")
    assert sighting["error"] == f"RelationViolation: relation '{TOY}' violated: 2 comparison(s) out of bound"
    worst = sighting["violations"][0]
    assert worst["formulation"] == "linear_over_channels" and worst["error"] > worst["bound"]


def test_capture_walks_exception_groups(faulty_pointwise):
    inner = violation(TINY)
    crash = RuntimeError("boom")
    capture.remember(crash, "general_conv", TINY)
    failures = capture.failures_in(ExceptionGroup("two bugs", [inner, crash, ValueError("unrelated")]))
    assert [f.relation for f in failures] == [TOY, "general_conv"]
    assert failures[1].error == "RuntimeError: boom" and failures[1].result is None


def test_capture_writes_non_finite_numbers_as_strings():
    worst = Comparison("conv2d", "output", True, math.inf, (0,), 1.0, 0.0, 1.0, 0.0)
    failure = capture.Failure("pointwise", TINY, {}, RelationResult("pointwise", TINY, (worst,)))
    text = failure.regression().to_json()  # would raise on inf: allow_nan=False
    assert '"ratio": "inf"' in text


# --- older schema versions ---------------------------------------------------------------------

# A version-1 file as linconv wrote it before N-d geometry (height/width, its own id hashing).
V1_FILE = {
    "schema_version": 1,
    "id": "8919a7bee1a0",
    "relation": "full_kernel",
    "expect": "pass",
    "xfail_torch": None,
    "note": "seed: the classic [1, 512, 4, 4] -> 5 classes head",
    "link": None,
    "case": {
        "geometry": {"batch": 1, "in_channels": 512, "out_channels": 5, "height": 4, "width": 4,
                     "kernel": [4, 4], "stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1,
                     "padding_mode": "zeros", "bias": True},
        "dtype": "float32", "values": "normal", "memory_format": "contiguous", "input_view": "dense",
        "head_features": 0, "seed": 1,
    },
    "found": [],
}  # fmt: skip


def test_a_version_1_file_is_read_under_its_old_id_and_migrated(tmp_path, capsys):
    from linconv.__main__ import main

    path = write_json(tmp_path, V1_FILE)
    regression = corpus.load_file(path)  # the v1 id checks against v1 hashing; the name matches it
    assert regression.case == BATCH_ONE_HEAD and regression.id == corpus.case_id("full_kernel", BATCH_ONE_HEAD)
    (tmp_path / "t").mkdir()
    tampered = write_json(tmp_path / "t", {**V1_FILE, "case": {**V1_FILE["case"], "seed": 2}})
    with pytest.raises(CorpusError, match="does not match the content"):
        corpus.load_file(tampered)
    assert main(["regressions", "migrate", "--dir", str(tmp_path)]) == 0
    assert not path.exists() and f"8919a7bee1a0.json -> {regression.id}.json" in capsys.readouterr().out
    stored = json.loads((tmp_path / f"{regression.id}.json").read_text())
    assert stored["schema_version"] == corpus.SCHEMA_VERSION and stored["case"]["geometry"]["size"] == [4, 4]
    assert stored["note"] == V1_FILE["note"]
