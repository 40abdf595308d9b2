"""End to end: a relation registered by a plugin, with a fault in one formulation -> its property
(properties/test_registered.py) fails -> the shrunk case is captured as a pending file -> the CLI
adds it to a corpus -> replay fails with the fault and passes without it; a malformed corpus file
fails on its own while the other cases still run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from linconv import corpus
from linconv.__main__ import main
from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.relations import registered
from linconv.relations.pointwise import POINTWISE, linear_over_channels

ROOT = Path(__file__).resolve().parent.parent
BATCH_ONE_HEAD = Case(ConvGeometry(1, 512, 5, (4, 4), kernel=(4, 4)), seed=1)  # full_kernel seed of the corpus

# Loaded with -p into the pytest subprocesses: the fault, and a small profile (no database, so the
# faulty run leaves nothing behind; no explain phase, which only costs time here).
FAULT_PLUGIN = """
from dataclasses import replace

from hypothesis import Phase, settings

from linconv.relations import register
from linconv.relations.pointwise import POINTWISE, linear_over_channels


def drop_bias_at_batch_one(x, p, g):
    y = linear_over_channels(x, p, g)
    return y - p.bias.view(1, -1, 1, 1) if g.batch == 1 and p.bias is not None else y


TOY = "pointwise_bias_lost"  # the relation the plugin registers (with the fault)
FAULTY = replace(POINTWISE.with_formulation("linear_over_channels", drop_bias_at_batch_one), name=TOY)
CORRECT = replace(POINTWISE, name=TOY)


faulty = POINTWISE.with_formulation("linear_over_channels", drop_bias_at_batch_one)
register(replace(faulty, name="pointwise_bias_lost", property_module=""))
settings.register_profile(
    "e2e", max_examples=40, database=None, deadline=None, derandomize=True,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)
"""


def drop_bias_at_batch_one(x, p, g):
    y = linear_over_channels(x, p, g)
    return y - p.bias.view(1, -1, 1, 1) if g.batch == 1 and p.bias is not None else y


TOY = "pointwise_bias_lost"  # the relation the plugin registers (with the fault)
FAULTY = replace(POINTWISE.with_formulation("linear_over_channels", drop_bias_at_batch_one), name=TOY)
CORRECT = replace(POINTWISE, name=TOY)


def pytest_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env.pop("LINCONV_REGRESSIONS_DIR", None)
    env.pop("LINCONV_CAPTURE_DIR", None)
    # The run report of these faulty runs goes to tmp_path, not over the repository's reports/.
    env.update(LINCONV_REPORT_DIR=str(tmp_path / "reports"), LINCONV_TIMING="off")
    command = [sys.executable, "-m", "pytest", "-p", "fault_plugin", "-p", "no:cacheprovider", "--devices", "cpu"]
    return subprocess.run(
        [*command, "-q", "--hypothesis-profile", "e2e", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_found_counterexample_becomes_a_regression_case(tmp_path, monkeypatch, capsys):
    (tmp_path / "fault_plugin.py").write_text(FAULT_PLUGIN)
    pending_dir, corpus_dir = tmp_path / "pending", tmp_path / "corpus"

    # 1. The property finds the fault; the final (shrunk) example is written as a pending file.
    found = pytest_run(
        tmp_path,
        str(ROOT / "properties" / "test_registered.py"),
        "--capture-dir",
        str(pending_dir),
        "--regressions-dir",
        str(corpus_dir),
        "--dtypes",
        "float32",
        "--max-numel",
        "4096",
    )
    assert found.returncode == 1, found.stdout + found.stderr
    (pending,) = pending_dir.glob("*.json")
    with registered(CORRECT):  # this process reads the toy relation's cases only while it is registered
        captured = corpus.load_file(pending)
    g = captured.case.geometry
    assert captured.relation == TOY and captured.expect == "pass"
    assert (g.batch, g.bias) == (1, True)  # shrunk to the trigger: one sample, with a bias
    (sighting,) = captured.found
    assert sighting["test"] == f"properties/test_registered.py::test_{TOY}[cpu-default-float32]"
    assert sighting["violations"][0]["formulation"] == "linear_over_channels"
    assert sighting["violations"][0]["error"] > sighting["violations"][0]["bound"]
    # ... and the summary prints the one command that adds it.
    command = f"python -m linconv regressions add pending/{pending.name} --dir corpus"
    assert "linconv: counterexamples kept" in found.stdout and command in found.stdout

    # 2. The CLI adds it to the corpus, with a note.
    monkeypatch.chdir(tmp_path)
    with registered(CORRECT):
        assert (
            main(["regressions", "add", str(pending), "--dir", str(corpus_dir), "--note", "bias lost at batch 1"]) == 0
        )
    stored = corpus_dir / pending.name
    assert json.loads(stored.read_text())["note"] == "bias lost at batch 1"
    capsys.readouterr()

    # 3. Replay without pytest: fails with the fault, passes without it.
    check = ["regressions", "check", "--dir", str(corpus_dir), "--devices", "cpu"]
    with registered(FAULTY):
        assert main(check) == 1
    assert f"FAIL   {pending.stem}  {TOY}" in capsys.readouterr().out
    with registered(CORRECT):
        assert main(check) == 0

    # 4. Replay under pytest, with the fault and a malformed file beside another good case: the
    # captured case fails, the malformed file is one failing test naming file and field, the rest run.
    (corpus_dir / "0123456789ab.json").write_text(json.dumps({"schema_version": 1}))
    seed = ROOT / "regressions" / f"{corpus.case_id('full_kernel', BATCH_ONE_HEAD)}.json"  # a seed the fault spares
    (corpus_dir / seed.name).write_text(seed.read_text())
    replayed = pytest_run(
        tmp_path, str(ROOT / "properties" / "test_regressions.py"), "--regressions-dir", str(corpus_dir), "-rfE"
    )
    out = replayed.stdout
    assert replayed.returncode == 1, out + replayed.stderr
    assert f"FAILED {_rel(tmp_path)}::test_regression_case[{pending.stem}-{TOY}-cpu-default]" in out
    assert f"FAILED {_rel(tmp_path)}::test_corpus_file_is_valid[0123456789ab.json]" in out
    assert f"\n{corpus_dir / '0123456789ab.json'}: id: missing\n" in out  # the whole failure report: file and field
    assert "2 failed, 3 passed" in out  # the seed's replay and its file check, and the captured file's check
    assert not (tmp_path / ".hypothesis" / "examples").exists()  # the faulty runs stored no examples


def _rel(tmp_path: Path) -> str:
    """How pytest, run from tmp_path, names the replay module in its summary."""
    return os.path.relpath(ROOT / "properties" / "test_regressions.py", tmp_path)
