"""``python -m linconv regressions add|list|show|check``: outputs, exit codes and errors."""

from __future__ import annotations

import dataclasses
import json

import pytest

from linconv import corpus
from linconv.__main__ import main
from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.corpus import Regression
from linconv.relations import registered
from linconv.relations.pointwise import POINTWISE, linear_over_channels

CASE = Case(ConvGeometry(1, 2, 3, (2, 2)), seed=11)


def drop_bias_at_batch_one(x, p, g):
    y = linear_over_channels(x, p, g)
    return y - p.bias.view(1, -1, 1, 1) if g.batch == 1 and p.bias is not None else y


@pytest.fixture
def pending(tmp_path):
    """A pending case file, as the capture plugin writes it."""
    regression = Regression("pointwise", CASE, found=({"date": "2026-01-01T00:00:00+00:00", "device": "cpu"},))
    path, _ = corpus.add(regression, tmp_path / "pending")
    return path


@pytest.fixture
def corpus_dir(tmp_path):
    return tmp_path / "corpus"


def run(capsys, *argv):
    status = main(["regressions", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def test_add_stores_the_pending_case_with_note_link_and_range(capsys, pending, corpus_dir):
    status, out, _ = run(
        capsys, "add", pending, "--dir", corpus_dir, "--note", "why", "--link", "https://x", "--xfail-torch", "<2.4"
    )
    target = corpus_dir / pending.name
    assert status == 0
    assert out == f"added {target} (pointwise; expect xfail on torch <2.4)\n"
    data = json.loads(target.read_text())
    assert (data["note"], data["link"], data["expect"], data["xfail_torch"]) == ("why", "https://x", "xfail", "<2.4")
    assert data["found"][0]["device"] == "cpu"


def test_adding_again_merges_and_expect_pass_clears_the_range(capsys, pending, corpus_dir):
    run(capsys, "add", pending, "--dir", corpus_dir, "--note", "why", "--xfail-torch", "<2.4")
    status, out, _ = run(capsys, "add", corpus_dir / pending.name, "--dir", corpus_dir, "--expect-pass")
    assert status == 0 and out.startswith("merged into ") and out.endswith("(pointwise; expect pass)\n")
    data = json.loads((corpus_dir / pending.name).read_text())
    assert (data["note"], data["expect"], data["xfail_torch"], len(data["found"])) == ("why", "pass", None, 1)


def test_add_refuses_a_bad_range_and_a_malformed_file(capsys, pending, corpus_dir, tmp_path):
    status, _, err = run(capsys, "add", pending, "--dir", corpus_dir, "--xfail-torch", "2.4")
    assert status == 2 and err == "error: --xfail-torch must be a version range like \">=2.1,<2.4\", got '2.4'\n"
    broken = tmp_path / "broken.json"
    broken.write_text("[]")
    status, out, err = run(capsys, "add", broken, pending, "--dir", corpus_dir)
    assert status == 1 and err == f"error: {broken}: must be a JSON object, got list\n"
    assert out.startswith("added ")  # the good file is still added
    with pytest.raises(SystemExit):  # argparse: --xfail-torch and --expect-pass exclude each other
        main(["regressions", "add", str(pending), "--xfail-torch", "<2", "--expect-pass"])


def test_list_prints_a_table_and_names_malformed_files(capsys, pending, corpus_dir):
    run(capsys, "add", pending, "--dir", corpus_dir, "--note", "first line\nsecond line")
    status, out, err = run(capsys, "list", "--dir", corpus_dir)
    lines = out.splitlines()
    assert status == 0 and err == ""
    assert lines[0].split() == ["ID", "RELATION", "EXPECT", "CASE", "NOTE"]
    assert lines[1].split() == [
        pending.stem,
        "pointwise",
        "pass",
        *"N1 C2 2x2 -> O3 k1x1 bias float32".split(),
        "first",
        "line",
    ]
    assert lines[2] == f"1 case(s) in {corpus_dir}"
    (corpus_dir / "bad.json").write_text("nope")
    status, _, err = run(capsys, "list", "--dir", corpus_dir)
    assert status == 1 and err.startswith(f"error: {corpus_dir / 'bad.json'}: is not valid JSON")


def test_show_prints_the_file_and_a_reproduction(capsys, pending, corpus_dir):
    run(capsys, "add", pending, "--dir", corpus_dir)
    status, out, _ = run(capsys, "show", pending.stem[:5], "--dir", corpus_dir)
    assert status == 0
    assert out.startswith(f"# {corpus_dir / pending.name}\n{{\n")
    assert "from linconv.relations import check_relation\ncheck_relation('pointwise', Case.from_dict(" in out
    assert out.endswith(f"python -m linconv regressions check {pending.stem}\n")
    status, _, err = run(capsys, "show", "ffff", "--dir", corpus_dir)
    assert status == 1 and err == f"error: no case in {corpus_dir} with an id starting 'ffff'\n"


def test_check_replays_and_fails_on_a_fault(capsys, tmp_path, corpus_dir):
    toy = "pointwise_under_test"  # a relation registered for the test: pointwise, with and without a fault
    pending = tmp_path / "toy.json"
    pending.write_text(Regression(toy, CASE).to_json())
    with registered(dataclasses.replace(POINTWISE, name=toy)):
        run(capsys, "add", pending, "--dir", corpus_dir)
        stem = corpus.case_id(toy, CASE)
        status, out, _ = run(capsys, "check", "--dir", corpus_dir, "--devices", "cpu")
    assert status == 0
    assert out.splitlines()[0].split() == ["PASS", stem, toy, "cpu"]
    assert out.splitlines()[-1].startswith("1 passed in ")
    faulty = POINTWISE.with_formulation("linear_over_channels", drop_bias_at_batch_one)
    with registered(dataclasses.replace(faulty, name=toy)):
        status, out, _ = run(capsys, "check", stem, "--dir", corpus_dir, "--devices", "cpu")
    assert status == 1
    assert out.splitlines()[0].split() == ["FAIL", stem, toy, "cpu"]
    assert f"relation '{toy}' violated" in out and out.splitlines()[-1].startswith("1 failed in ")


def test_check_counts_malformed_files_and_unknown_ids(capsys, pending, corpus_dir):
    run(capsys, "add", pending, "--dir", corpus_dir)
    (corpus_dir / "bad.json").write_text("{}")
    status, out, err = run(capsys, "check", "--dir", corpus_dir, "--devices", "cpu")
    assert status == 1 and "1 passed" in out  # the good case still ran
    assert err == f"error: {corpus_dir / 'bad.json'}: schema_version: missing\n1 file(s) or id(s) could not be used\n"
    status, _, err = run(capsys, "check", "0000", "--dir", corpus_dir, "--devices", "cpu")
    assert status == 1 and err.startswith(f"error: no case in {corpus_dir} with an id starting '0000'")
    status, _, err = run(capsys, "check", "--dir", corpus_dir, "--devices", "tpu")
    assert status == 2 and err.startswith("error: --devices: device must be one of")


def test_the_default_directory_comes_from_the_environment(capsys, pending, tmp_path, monkeypatch):
    monkeypatch.setenv("LINCONV_REGRESSIONS_DIR", str(tmp_path / "env-corpus"))
    status, out, _ = run(capsys, "add", pending)
    assert status == 0 and out.startswith(f"added {tmp_path / 'env-corpus' / pending.name} ")


@pytest.mark.parametrize(
    ("action", "phrases"),
    [
        ("add", ["--note NOTE", "--link LINK", "--xfail-torch RANGE", "--expect-pass", "--dir DIR"]),
        ("list", ["--dir DIR"]),
        ("show", ["ID", "unique prefix"]),
        ("check", ["--devices DEVICES", "Exit status 1"]),
    ],
)
def test_help_names_the_options_the_docs_use(capsys, action, phrases):
    with pytest.raises(SystemExit):
        main(["regressions", action, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for phrase in phrases:
        assert phrase in out


def test_a_case_can_be_tied_to_a_known_bug(capsys, pending, corpus_dir):
    bug = "grouped-conv-bwd-weight-size1-strides-channels-last"
    status, out, _ = run(capsys, "add", pending, "--dir", corpus_dir, "--known-bug", bug)
    assert status == 0 and f"expect xfail where known bug {bug} reproduces" in out
    stored = json.loads((corpus_dir / pending.name).read_text())
    assert (stored["expect"], stored["xfail_torch"], stored["known_bug"]) == ("xfail", None, bug)
    status, _, err = run(capsys, "add", pending, "--dir", corpus_dir, "--known-bug", "nope")
    assert status == 2 and err.startswith("error: --known-bug: known bug must be one of [")
    status, _, _ = run(capsys, "add", pending, "--dir", corpus_dir, "--expect-pass")
    assert json.loads((corpus_dir / pending.name).read_text())["known_bug"] is None
