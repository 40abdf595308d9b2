"""The model check (linconv.models, ``python -m linconv model``): measuring supplied tensors is the
suite's own path; each recorded call becomes the case it is; the registry decides which relations
apply (a new relation lights up with no change); a violation exits 1 and keeps the layer; bad
input exits 2 with a message; and the error model holds at real reduction lengths (K up to
401,408) while still seeing one dropped input channel there."""

from __future__ import annotations

import dataclasses
import json
import textwrap

import pytest
import torch
from torch import nn

from linconv.__main__ import main
from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.faults import get_fault
from linconv.models.builtin import HEADS
from linconv.models.capture import capture_calls
from linconv.models.check import applicable, check_model
from linconv.models.layers import _DESCRIBES_TRANSPOSED, targets
from linconv.models.load import ModelError, build_model, make_input
from linconv.models.report import build_model_report, render_markdown
from linconv.models.zoo import conv_linear_head, conv_relu_linear_head
from linconv.relations import FormulationSpec, registered, relations
from linconv.relations.pointwise import POINTWISE

TINY = """
import torch
from torch import nn

def good():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)
    )

def raises():
    raise RuntimeError("no weights here")

def not_a_module():
    return 42

def no_layers():
    return nn.Sequential(nn.ReLU(), nn.Flatten())

NOT_CALLABLE = 3
"""


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    (tmp_path / "tiny_models.py").write_text(textwrap.dedent(TINY))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _report(summary: dict) -> dict:
    return build_model_report(
        summary,
        model="m:f",
        input_shape=(1,),
        dtype="float32",
        device="cpu",
        seed=0,
        max_numel=1,
        threads=1,
        elapsed_s=0.0,
    )


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


# --- measuring supplied tensors is the suite's own path -----------------------------------


def test_supplied_tensors_give_the_same_comparisons_as_the_seed_built_ones():
    case = Case(ConvGeometry(2, 6, 4, (5, 5)), seed=3)
    for relation in relations():
        if not relation.measures_supplied_tensors or relation.negative_control or relation.applies_to(case):
            continue
        seeded = relation.run(case)
        supplied = relation.run_on(case, case.build())
        assert supplied.comparisons == seeded.comparisons, relation.name


def test_forward_only_compares_the_output_alone():
    case = Case(ConvGeometry(1, 4, 3, (4, 4), kernel=1), seed=1)
    result = POINTWISE.run_on(case, case.build(), backward=False)
    assert {c.tensor for c in result.comparisons} == {"output"}


def test_supplied_tensors_of_another_shape_or_dtype_are_refused():
    case = Case(ConvGeometry(1, 4, 3, (4, 4), kernel=1))
    t = case.build()
    with pytest.raises(ValueError, match=r"supplied tensor x must have shape \(1, 4, 4, 4\) .* got \(1, 4, 4, 5\)"):
        POINTWISE.run_on(case, dataclasses.replace(t, x=torch.zeros(1, 4, 4, 5)))
    with pytest.raises(ValueError, match=r"supplied tensor weight must be float32 on cpu, got torch\.float64"):
        POINTWISE.run_on(case, dataclasses.replace(t, weight=t.weight.double()))
    with pytest.raises(ValueError, match=r"supplied tensor bias must have shape None .* got \(3,\)"):
        nobias = dataclasses.replace(case, geometry=dataclasses.replace(case.geometry, bias=False))
        POINTWISE.run_on(nobias, t)


def test_a_relation_that_is_not_a_linear_map_cannot_measure_supplied_tensors():
    other = next(r for r in relations() if not r.measures_supplied_tensors)
    case = Case(ConvGeometry(1, 4, 3, (4, 4)))
    with pytest.raises(ValueError, match="cannot measure supplied tensors"):
        other.run_on(case, case.build())


# --- each call is the case it is -----------------------------------------------------------


def test_a_conv_call_is_its_own_geometry_and_layout():
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False)
    x = torch.randn(2, 4, 9, 7).to(memory_format=torch.channels_last)
    (target,), unsupported = targets(capture_calls(conv, x)[0])
    assert not unsupported
    g = target.case.geometry
    assert (g.batch, g.in_channels, g.out_channels, g.size, g.kernel, g.stride, g.padding, g.groups, g.bias) == (
        2,
        4,
        6,
        (9, 7),
        (3, 3),
        (2, 2),
        (1, 1),
        2,
        False,
    )
    assert target.case.memory_format == "channels_last"
    assert target.tensors.weight is conv.weight.data or torch.equal(target.tensors.weight, conv.weight)
    assert torch.equal(target.tensors.x, x)


def test_a_linear_over_tokens_is_the_pointwise_conv_it_equals_without_a_copy():
    linear = nn.Linear(8, 5)
    x = torch.randn(2, 7, 8)
    (target,), _ = targets(capture_calls(linear, x)[0])
    g = target.case.geometry
    assert (g.batch, g.in_channels, g.out_channels, g.size, g.kernel) == (2, 8, 5, (7, 1), (1, 1))
    assert target.case.memory_format == "channels_last"  # the NHWC activation seen as NCHW
    assert torch.equal(target.tensors.x.permute(0, 2, 3, 1).reshape(2, 7, 8), x)
    names = {r.name for r in applicable(target)[0]}
    assert POINTWISE.name in names


def test_a_linear_reading_the_conv_output_flattened_is_a_pair_and_one_with_a_relu_between_is_not():
    x = torch.randn(1, 512, 7, 7)
    plain = [t.kind for t in targets(capture_calls(conv_linear_head(), x)[0])[0]]
    assert plain == ["conv", "linear", "conv + linear"]
    with_relu = [t.kind for t in targets(capture_calls(conv_relu_linear_head(), x)[0])[0]]
    assert with_relu == ["conv", "linear"]
    inplace = nn.Sequential(nn.Conv2d(512, 256, 7), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(256, 10))
    assert [t.kind for t in targets(capture_calls(inplace, x)[0])[0]] == ["conv", "linear"]


def test_a_pair_is_checked_by_the_relations_of_a_conv_with_a_linear_after_it():
    model = nn.Sequential(nn.Conv2d(16, 8, 3), nn.Flatten(), nn.Linear(8 * 16, 10))
    summary, failures = check_model(model, torch.randn(2, 16, 6, 6), timed=False)
    pair = next(layer for layer in summary["layers"] if layer["kind"] == "conv + linear")
    assert pair["relations"] and all(row["holds"] for row in pair["relations"])
    assert not failures


def test_a_transposed_conv_is_a_case_once_a_geometry_can_describe_it():
    model = nn.Sequential(nn.ConvTranspose2d(4, 3, 2, stride=2), nn.Conv2d(3, 2, 1))
    found, unsupported = targets(capture_calls(model, torch.randn(1, 4, 3, 3))[0])
    if _DESCRIBES_TRANSPOSED:
        assert [t.case.geometry.transposed for t in found] == [True, False] and not unsupported
    else:
        assert [t.name for t in found] == ["1"]
        assert [(u.name, u.why) for u in unsupported] == [
            ("0", "ConvTranspose2d: a case cannot describe a transposed convolution yet")
        ]


# --- the registry decides --------------------------------------------------------------------


def test_a_relation_added_to_the_registry_is_checked_on_every_layer_it_applies_to():
    toy = dataclasses.replace(POINTWISE, name="toy_model_pointwise", statement="a toy", property_module="")
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 2, 3))
    with registered(toy):
        summary, _ = check_model(model, torch.randn(1, 3, 5, 5), timed=False)
    checked = {layer["name"]: {r["relation"] for r in layer["relations"]} for layer in summary["layers"]}
    assert "toy_model_pointwise" in checked["0"]
    assert "toy_model_pointwise" not in checked["1"]  # a 3x3 conv: applies_to says no


def test_a_layer_no_relation_applies_to_says_why(monkeypatch):
    monkeypatch.setattr("linconv.models.check.relations", lambda: (POINTWISE,))  # a registry of one
    summary, _ = check_model(nn.Conv2d(3, 4, 3), torch.randn(2, 3, 10, 10), timed=False)
    (layer,) = summary["layers"]
    assert layer["relations"] == []
    assert layer["not_applicable"] == [f"{POINTWISE.name}: it needs a 1x1 kernel without padding"]
    assert summary["totals"]["without_relation"] == 1
    assert "## Layers no relation applies to" in render_markdown(_report(summary))


def test_a_formulation_over_the_size_budget_is_skipped_and_said_so():
    summary, _ = check_model(nn.Conv2d(8, 8, 3, padding=1), torch.randn(1, 8, 16, 16), max_numel=10_000, timed=False)
    rows = summary["layers"][0]["relations"]
    skipped = {name: why for row in rows for name, why in row["skipped"].items()}
    assert any("over the size budget 10,000" in why for why in skipped.values())
    assert all(row["holds"] for row in rows if "holds" in row)


# --- violations: exit 1, the layer kept --------------------------------------------------------


def _crash(x, p, g):
    raise RuntimeError("boom: a kernel that fails at this size")


def test_a_formulation_that_crashes_on_a_layer_is_an_error_not_a_pass():
    crashing = dataclasses.replace(
        POINTWISE,
        name="toy_crash",
        statement="a toy that crashes",
        property_module="",
        formulations={**POINTWISE.formulations, "crash": FormulationSpec(_crash, ("conv",))},
    )
    with registered(crashing):
        summary, _ = check_model(nn.Conv2d(3, 4, 1), torch.randn(1, 3, 4, 4), timed=False)
    (row,) = [r for r in summary["layers"][0]["relations"] if r["relation"] == "toy_crash"]
    assert row["holds"] is False and row["error"] == "RuntimeError: boom: a kernel that fails at this size"
    assert summary["totals"]["violations"] == 1


def _wrong(x, p, g):
    return POINTWISE.formulations["conv2d"].fn(x, p, g) * 1.01


def test_a_violation_exits_1_and_keeps_the_layer(tiny, capsys):
    broken = dataclasses.replace(
        POINTWISE,
        name="toy_broken",
        statement="a toy that is 1% off",
        property_module="",
        formulations={**POINTWISE.formulations, "off": FormulationSpec(_wrong, ("conv",))},
    )
    with registered(broken):
        code, _, err = run_cli(
            capsys,
            "model",
            "tiny_models:good",
            "--input-shape",
            "1,3,6,6",
            "--out",
            "r",
            "--capture-dir",
            "pending",
            "--no-timing",
        )
    assert code == 1, err
    report = json.loads((tiny / "r" / "report.json").read_text())
    # the 1x1 conv and the Linear (a 1x1 conv over its features) are where the toy applies
    assert report["verdict"] == "fail" and report["totals"]["violations"] == 2
    kept, _ = report["kept"]
    assert [k["layer"] for k in report["kept"]] == ["2", "4"] and kept["relation"] == "toy_broken"
    assert kept["pending"] and (tiny / kept["pending"]).exists()  # seed-built values reproduce a 1% error
    saved = torch.load(tiny / kept["tensors"])
    assert torch.equal(saved["weight"], build_model("tiny_models:good")[2].weight)  # the real weights (seed 0)
    assert saved["case"]["geometry"]["in_channels"] == 8
    assert "VIOLATED" in (tiny / "r" / "report.md").read_text()


def _head(name: str, overrides=None) -> dict:
    head = HEADS[name]
    x = make_input(head.input_shape, dtype="float32", device="cpu", seed=0)
    summary, _ = check_model(build_model(head.spec, seed=0), x, timed=False, overrides=overrides)
    (layer,) = summary["layers"]
    return {f"{r['relation']}/{f}": float(e["ratio"]) for r in layer["relations"] for f, e in r["formulations"].items()}


def _faulted(name: str) -> float:
    fault = get_fault("drop_channel_full_kernel")
    return _head(name, {fault.relation: fault.faulted_relation()})[f"{fault.relation}/{fault.formulation}"]


@pytest.mark.parametrize("name", ["resnet18_conv_head", "resnet50_conv_head_448"])
def test_the_error_model_holds_at_real_reduction_lengths(name):
    """K = 25,088 and 401,408: no formulation near its bound (measured over ten seeds: at most
    0.0054 and 0.0011 of it; benchmarks/large_k.py, docs/models.md)."""
    ratios = _head(name)
    assert ratios and max(ratios.values()) < 0.05, ratios


def test_one_dropped_input_channel_is_seen_at_k_25088():
    """49 of 25,088 terms dropped: error/bound 31 to 44 over ten seeds (benchmarks/large_k.py)."""
    assert _faulted("resnet18_conv_head") > 10


@pytest.mark.xfail(
    strict=True,
    reason="the sqrt(K) bound is ~1000x the real error at K = 401,408: one dropped channel (196 terms) stays "
    "inside it on 10 of 10 seeds (error/bound 0.31-0.6; docs/models.md, 'The error model at real sizes')",
)
def test_one_dropped_input_channel_is_seen_at_k_401408():
    assert _faulted("resnet50_conv_head_448") > 1


# --- bad input: exit 2 with a message ------------------------------------------------------------

BAD = [
    (["model", "nosuchmodule_17:f", "--input-shape", "1,3,6,6"], "no module named 'nosuchmodule_17'"),
    (["model", "tiny_models:nope", "--input-shape", "1,3,6,6"], "module 'tiny_models' has no attribute 'nope'"),
    (["model", "tiny_models:NOT_CALLABLE", "--input-shape", "1,3,6,6"], "'NOT_CALLABLE' must be callable"),
    (["model", "tiny_models", "--input-shape", "1,3,6,6"], "MODEL must be MODULE:FACTORY"),
    (
        ["model", "tiny_models:raises", "--input-shape", "1,3,6,6"],
        "calling the factory raised RuntimeError: no weights",
    ),
    (["model", "tiny_models:not_a_module", "--input-shape", "1,3,6,6"], "must return a torch.nn.Module, got int"),
    (["model", "tiny_models:no_layers", "--input-shape", "1,3,6,6"], "MODEL has no Conv or Linear layer to check"),
    (["model", "tiny_models:good", "--input-shape", "1,3,7,7"], "the model rejects an input of this shape"),
    (["model", "tiny_models:good", "--input-shape", "1,x,6"], "--input-shape must be comma-separated positive ints"),
    (["model", "tiny_models:good"], "--input-shape is required"),
    (["model", "--input-shape", "1,3,6,6"], "MODEL (MODULE:FACTORY) or --builtin is required"),
    (["model", "tiny_models:good", "--input-shape", "1,3,6,6", "--device", "tpu"], "--device: device must be one of"),
    (["model", "tiny_models:good", "--input-shape", "1,3,6,6", "--dtype", "int8"], "--dtype: dtype must be one of"),
    (["model", "tiny_models:good", "--input-shape", "1,3,6,6", "--inject-fault", "nope"], "--inject-fault:"),
    (["model", "tiny_models:good", "--builtin", "heads"], "give MODEL or --builtin, not both"),
    (["model", "tiny_models:good", "--input-shape", "1,3,6,6", "--seed", "-1"], "--seed must be an int in [0, 2**63)"),
    (["model", "tiny_models:good", "--input-shape", "1,3,6,6", "--max-numel", "0"], "--max-numel must be a positive"),
    (["model", "--builtin", "resnet1000"], "--builtin must be all, torchvision, heads or comma-separated names"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(a[1:3]) for a, _ in BAD])
def test_bad_input_exits_2_with_a_message(tiny, capsys, argv, message):
    code, out, err = run_cli(capsys, *argv, "--no-timing")
    assert code == 2, out + err
    assert err.startswith("model: ") and message in err, err
    assert "Traceback" not in err


def test_a_model_error_names_the_input_shape_and_the_models_own_message(tiny):
    model = build_model("tiny_models:good")
    with pytest.raises(ModelError, match=r"--input-shape 1,3,7,7: the model rejects .*mat1 and mat2"):
        capture_calls(model, make_input((1, 3, 7, 7), dtype="float32", device="cpu"))


def test_the_command_writes_both_files_and_prints_the_table(tiny, capsys):
    code, out, err = run_cli(capsys, "model", "tiny_models:good", "--input-shape", "2,3,6,6", "--out", "r")
    assert code == 0, err
    report = json.loads((tiny / "r" / "report.json").read_text())
    assert report["kind"] == "linconv-model-report" and report["verdict"] == "pass"
    assert [layer["name"] for layer in report["layers"]] == [
        "0",
        "2",
        "4",
        "2 -> 4",
    ]  # 1x1 conv, Flatten, Linear: a pair
    assert all(layer["as_run_s"] > 0 for layer in report["layers"])
    assert "| layer | kind | relation | K |" in out and "PASS" in out
    assert (tiny / "r" / "report.md").read_text().startswith("# linconv model check: `tiny_models:good`")
