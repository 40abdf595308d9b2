"""The fault-injection benchmark stays honest: every harmful fault is caught by its relation's
property search, no benign perturbation is flagged, and the faults break what they claim to and
nothing else.

The whole benchmark (shrinking included) is ``python -m linconv faults``; here every harmful
fault runs at the full ci budget without shrinking, and the benign ones at BENIGN_EXAMPLES each
(the full 100 are the CLI's; docs/faults.md has both run times).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings

from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.faults import Fault, all_faults, get_fault
from linconv.faults.catalogue.backward import _conv_with, _ConvWithBackward
from linconv.faults.catalogue.init import _seeded_parameters, conv_init_with_fans
from linconv.faults.search import markdown_table, search
from linconv.relations import get, relations, run_relation
from linconv.relations.general_conv import GENERAL_CONV
from linconv.relations.init import conv_defaults, linear_defaults
from strategies import general_cases

# the eager lane's faults; a compiled lane's faults compile for seconds per graph and are searched in
# tests/test_compiled.py (tox -e compile)
FAULTS = tuple(f for f in all_faults() if f.lane == "eager")
HARMFUL = [f for f in FAULTS if f.harmful]
BENIGN = [f for f in FAULTS if not f.harmful]
BENIGN_EXAMPLES = 20

# Issue 7's classes of real PyTorch bugs, each with at least one fault.
REQUIRED_CLASSES = {
    "layout / memory-format mix-up",
    "grouped conv with few channels per group",
    "stride / padding edge rows",
    "lost or doubled bias",
    "accumulation in too low a precision",
    "non-contiguous tensor read with the wrong strides",
    "wrong fan-in in init",
    "wrong gradient for one argument",
    "stale tiles for large batches",
    "silent truncation instead of a shape error",
    "wrong on an empty dimension",
}


# --- the catalogue -------------------------------------------------------------------------------


def test_catalogue_covers_the_bug_classes():
    modelled = [f for f in HARMFUL if f.bug_class in REQUIRED_CLASSES]
    assert len(modelled) >= 15
    assert {f.bug_class for f in modelled} == REQUIRED_CLASSES
    assert {f.bug_class for f in BENIGN} >= {"benign: reordered reduction", "benign: different rounding"}
    assert len({f.name for f in FAULTS}) == len(FAULTS)
    # every relation that is not a negative control or a converter round trip has its faults
    covered = {r.name for r in relations() if r.negative_control is None and not r.name.startswith("converted_")}
    assert {f.relation for f in FAULTS} == covered
    for f in FAULTS:
        assert f.description and f.bug_class, f.name
        assert not f.issue or f.issue.startswith("https://github.com/pytorch/pytorch/"), f.name
    # the backward faults go through torch.autograd.Function with a wrong backward
    assert {f.name for f in HARMFUL if f.bug_class == "wrong gradient for one argument"} >= {
        "linear_grad_weight_first_sample",
        "conv_grad_bias_first_position",
        "conv_grad_input_unflipped",
    }


def test_a_fault_names_an_existing_formulation():
    with pytest.raises(ValueError) as info:
        Fault("x", "lost or doubled bias", "d", "pointwise", "linear", lambda fn: fn)
    assert str(info.value) == (
        "fault 'x': formulation must be one of ('conv2d', 'linear_over_channels') for relation 'pointwise', "
        "got 'linear'"
    )
    with pytest.raises(ValueError, match=r"^relation must be one of \("):
        Fault("x", "lost or doubled bias", "d", "no_such_relation", "conv2d", lambda fn: fn)


def test_unknown_fault_name():
    with pytest.raises(ValueError) as info:
        get_fault("no_such_fault")
    assert str(info.value) == (
        f"fault must be one of the {len(all_faults())} names that `python -m linconv faults --list` prints, "
        "got 'no_such_fault'"
    )


@pytest.mark.parametrize("name", ["strided_sample_offset_by_one", "init_linear_fan_out", "head_bias_lost_at_batch_one"])
def test_a_fault_yields_its_relation_and_leaves_the_registry_alone(name):
    fault = get_fault(name)
    registered = get(fault.relation)
    case = Case(ConvGeometry(1, 3, 4, (5, 5), kernel=5 if fault.relation != "pointwise" else 1, stride=2), seed=2)
    assert not run_relation(fault.relation, case).violations
    faulted = fault.faulted_relation()
    assert faulted.run(case).violations
    assert faulted.formulations[fault.formulation].fn is not registered.formulations[fault.formulation].fn
    assert get(fault.relation) is registered and not run_relation(fault.relation, case).violations


# --- the wrappers break only what they claim to ----------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("groups", [1, 2])
def test_init_reimplementation_is_torchs_own(dtype, groups):
    # with the right fans the fault's init is nn.Conv2d's / nn.Linear's bit for bit, so the init
    # faults differ from torch by the fan alone
    g = ConvGeometry(1, 4, 6, (5, 5), kernel=(3, 2), groups=groups)
    for seed in (0, 7):
        case = Case(g, dtype=dtype, seed=seed)
        right = conv_init_with_fans(lambda g: g.reduction_length())(case)
        for got, want in zip(right, conv_defaults(case), strict=True):
            assert torch.equal(got, want)
        linear = _seeded_parameters(
            case, (g.out_channels, g.reduction_length()), g.reduction_length(), g.reduction_length()
        )
        for got, want in zip(linear, linear_defaults(case), strict=True):
            assert torch.equal(got, want)


@given(case=general_cases())
@settings(max_examples=10, derandomize=True, database=None, deadline=None)
def test_explicit_conv_backward_is_right_when_unbroken(case):
    # the backward faults subclass this autograd.Function; unbroken, it passes the relation
    relation = GENERAL_CONV.with_formulation("conv2d", _conv_with(_ConvWithBackward)(None))
    result = run_relation(relation, case)
    assert not result.violations, result.message()


# A case off each fault's trigger: the fault must stay silent there (it fires only in its corner).
DORMANT = {
    "channels_last_input_read_as_nchw": Case(ConvGeometry(2, 3, 4, (6, 6), kernel=3)),
    "channels_last_weight_read_as_oihw": Case(ConvGeometry(2, 3, 4, (6, 6), kernel=3)),
    "strided_input_read_as_contiguous": Case(ConvGeometry(2, 3, 4, (6, 6)), memory_format="channels_last"),
    "flatten_in_memory_order": Case(ConvGeometry(2, 3, 4, (4, 4), kernel=4)),
    "grouped_conv_wrong_group_filters": Case(ConvGeometry(2, 8, 4, (6, 6), kernel=3, groups=2)),
    "strided_last_row_from_previous": Case(ConvGeometry(2, 3, 4, (6, 6), kernel=3, stride=(1, 2))),
    "zero_padding_replicates_edge": Case(ConvGeometry(2, 3, 4, (6, 6), kernel=3, padding=1, padding_mode="reflect")),
    "strided_sample_offset_by_one": Case(ConvGeometry(2, 3, 4, (6, 6))),
    "weight_hw_transposed": Case(ConvGeometry(2, 3, 4, (6, 6), kernel=(3, 2))),
    "bias_lost_at_batch_one": Case(ConvGeometry(2, 3, 4, (4, 4), kernel=4)),
    "head_bias_lost_at_batch_one": Case(ConvGeometry(2, 3, 4, (4, 4), kernel=4)),
    "bias_added_twice_channels_last": Case(ConvGeometry(2, 3, 4, (6, 6), kernel=3)),
    "float64_computed_in_float32": Case(ConvGeometry(2, 3, 4, (6, 6), kernel=3)),
    "half_accumulated_in_half": Case(ConvGeometry(2, 3, 4, (4, 4), kernel=4)),
    # one block of 64 terms (K = 4 channels of 4x4) in float16: the block's sum is the result
    "half_blocks_added_in_half": Case(ConvGeometry(2, 4, 4, (4, 4), kernel=4), dtype="float16"),
    "linear_grad_weight_first_sample": Case(ConvGeometry(1, 3, 4, (4, 4), kernel=4)),
    "conv_grad_bias_first_position": Case(ConvGeometry(2, 3, 4, (1, 1))),
    "conv_grad_input_unflipped": Case(ConvGeometry(2, 3, 4, (6, 6))),
    "cross_entropy_grad_not_averaged": Case(ConvGeometry(1, 3, 4, (4, 4), kernel=4)),
    "stale_last_batch_tile": Case(ConvGeometry(2, 3, 4, (6, 6), kernel=3), head_features=5),
    "output_size_floor_truncates": Case(ConvGeometry(2, 3, 4, (6, 6), stride=2)),
    "squeeze_instead_of_flatten": Case(ConvGeometry(2, 3, 4, (4, 4), kernel=4)),
    "init_fan_in_ignores_groups": Case(ConvGeometry(1, 4, 6, (5, 5), kernel=3)),
    "init_linear_fan_out": Case(ConvGeometry(1, 4, 36, (5, 5), kernel=3)),
    # Conv1d / Conv3d, transposed convs and patch embeddings (issue 15)
    "flatten_in_memory_order_1d": Case(ConvGeometry(2, 3, 4, (4,), kernel=4)),
    "flatten_in_memory_order_3d": Case(ConvGeometry(2, 3, 4, (2, 2, 2), kernel=2)),
    "sequence_read_as_channels_first": Case(ConvGeometry(2, 3, 4, (6,))),
    "channels_last_3d_input_read_as_ncdhw": Case(ConvGeometry(2, 3, 4, (3, 3, 3))),
    "weight_depth_width_swapped": Case(ConvGeometry(2, 3, 4, (5, 5, 5), kernel=(3, 2, 2))),
    "strided_last_position_from_previous_1d": Case(ConvGeometry(2, 3, 4, (6,), kernel=3)),
    "strided_last_plane_from_previous_3d": Case(ConvGeometry(2, 3, 4, (4, 4, 4), kernel=3, stride=(1, 2, 2))),
    "stale_last_batch_tile_1d": Case(ConvGeometry(2, 3, 4, (6,), kernel=3), head_features=5),
    "stale_last_batch_tile_3d": Case(ConvGeometry(2, 3, 4, (3, 3, 3), kernel=2), head_features=5),
    "init_fan_in_ignores_groups_1d": Case(ConvGeometry(1, 4, 6, (5,), kernel=3)),
    "init_fan_in_ignores_groups_3d": Case(ConvGeometry(1, 4, 6, (3, 3, 3), kernel=2)),
    "output_padding_left_zero": Case(ConvGeometry(2, 3, 4, (3, 3), kernel=3, stride=2, transposed=True)),
    "grouped_conv_transpose_wrong_group_filters": Case(
        ConvGeometry(2, 8, 4, (4, 4), kernel=3, stride=2, groups=2, transposed=True)
    ),
    "unpatchify_blocks_patch_major": Case(ConvGeometry(2, 3, 4, (3, 2), kernel=2, stride=2, transposed=True)),
    "patch_remainder_cropped_at_the_start": Case(ConvGeometry(2, 3, 4, (8, 8), kernel=4, stride=4)),
    # weight/bias/upstream views, Linear on any rank, empty dimensions (issue 14)
    "weight_view_read_as_contiguous": Case(ConvGeometry(2, 3, 4, (6, 6)), memory_format="channels_last"),
    "linear_weight_view_read_as_contiguous": Case(ConvGeometry(2, 3, 4, (5,))),
    "bias_view_offset_ignored": Case(ConvGeometry(2, 3, 4, (4, 4), kernel=4), param_layout="transposed"),
    "upstream_view_read_as_contiguous": Case(ConvGeometry(2, 3, 4, (6, 6), kernel=3), param_layout="size1_strides"),
    "linear_folds_strided_input_in_memory_order": Case(ConvGeometry(2, 3, 4, (5,)), memory_format="channels_last"),
    "empty_batch_output_of_input_size": Case(ConvGeometry(2, 3, 4, (6, 6), kernel=3)),
    "flatten_infers_size_of_empty_batch": Case(ConvGeometry(2, 3, 4, (4, 4), kernel=4)),
    "no_features_returns_zeros": Case(ConvGeometry(2, 3, 0, (5,))),
    "linear_truncates_extra_features": Case(ConvGeometry(2, 3, 4, (5,)), invalid="fewer_channels"),
    "conv_groups_taken_from_the_weight": Case(ConvGeometry(2, 3, 4, (6, 6), kernel=3), invalid="more_channels"),
}


@pytest.mark.parametrize("name", sorted(DORMANT))
def test_fault_is_silent_off_its_trigger(name):
    fault = get_fault(name)
    result = fault.runner()(DORMANT[name])
    assert not result.violations, result.message()


def test_every_modelled_fault_has_a_dormant_case():
    assert {f.name for f in HARMFUL if f.bug_class in REQUIRED_CLASSES} == set(DORMANT)


# --- the benchmark ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", HARMFUL, ids=[f.name for f in HARMFUL])
def test_harmful_fault_is_caught_by_the_property_search(fault):
    outcome = search(fault, shrink=False)
    assert outcome.caught, (
        f"{fault.short()} escaped {outcome.examples} examples of the {fault.relation} property "
        f"(worst error/bound {outcome.worst_ratio:.3g})"
    )


@pytest.mark.parametrize("fault", BENIGN, ids=[f.name for f in BENIGN])
def test_benign_perturbation_is_not_flagged(fault):
    outcome = search(fault, shrink=False, max_examples=BENIGN_EXAMPLES)
    assert not outcome.caught, f"{fault.short()} flagged: {outcome.detail} on {outcome.case.to_json()}"


def test_table_and_short_case():
    outcome = search(get_fault("bias_lost_at_batch_one"))
    assert outcome.case is not None and outcome.case.geometry.batch == 1 and outcome.case.geometry.bias
    case = Case(ConvGeometry(1, 2, 3, (4, 4), kernel=3, stride=2, padding=1, groups=1), dtype="float16")
    assert case.describe() == "N1 C2 4x4 -> O3 k3x3 s2x2 p1x1 bias float16"
    table = markdown_table([outcome]).splitlines()
    assert table[0].startswith("| fault | bug class | harmful | caught? | by |")
    assert table[2].startswith(
        "| bias_lost_at_batch_one | lost or doubled bias | yes | yes | full_kernel: flatten_linear"
    )


def test_cli_runs_one_fault_and_prints_the_table():
    proc = subprocess.run(
        [sys.executable, "-m", "linconv", "faults", "--only", "squeeze_instead_of_flatten", "--no-shrink"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    # the full_kernel property's explicit examples run first: batch 1 (the fault's trigger) among them
    assert re.search(r"\[ok \] squeeze_instead_of_flatten: caught after [1-3] example\(s\)", proc.stdout), proc.stdout
    assert "1/1 harmful faults caught, 0/0 benign perturbations flagged" in proc.stdout


def test_a_known_compile_error_is_not_counted_as_the_fault_caught(monkeypatch):
    # a compiled lane's fault search on a torch whose inductor raises a known error (recognised by its
    # error, linconv.known_bugs) rejects that case as the properties do; any other error is a catch
    from linconv.faults import search as fault_search
    from linconv.known_bugs import get_bug
    from linconv.search import placement

    fault = get_fault("bias_lost_at_batch_one")
    known = RuntimeError("the error of a known compile bug")
    bug = get_bug("inductor-dynamic-sizes-value-range-error")
    monkeypatch.setattr(placement, "known_error", lambda e, execution, relation: bug if e is known else None)
    unfaulted = get(fault.relation).run

    def raises_once(error):  # on the first case drawn (and on its replay: a failure must reproduce)
        first = []

        def run(case):
            first[:] = first or [case.to_json()]
            if case.to_json() == first[0]:
                raise error
            return unfaulted(case)

        return run

    outcome = fault_search._search(fault, raises_once(known), 5, False, "cpu", False)
    assert not outcome.caught, outcome.detail
    other = RuntimeError("a compile error nobody knows")
    outcome = fault_search._search(fault, raises_once(other), 5, False, "cpu", False)
    assert outcome.caught and outcome.caught_by == f"{fault.relation}: raised RuntimeError"
