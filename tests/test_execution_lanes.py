"""Execution lanes without compiling anything: the registry, the one context manager that reads,
sets and restores inductor and dynamo settings, where a lane applies, and the report, merge and
gate keeping compiled results apart from eager ones (the compiling tests: tests/test_compiled.py)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch._dynamo.config as dynamo_config
import torch._inductor.config as inductor_config

from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.faults import all_faults
from linconv.known_bugs import avoided_bug, get_bug, known_error, matching_bug
from linconv.lanes.execution import (
    EAGER,
    RECOMPILE_LIMIT,
    ExecutionLane,
    active_lane,
    execution_lane,
    get_lane,
    lane_names,
    lanes,
    parse_executions,
    read_config,
)
from linconv.relations import get, in_lane, lane_unavailable, relations
from linconv.relations.execution import CompiledKind
from linconv.runreport import build_report, merge_tallies
from linconv.runreport.completeness import stamp
from linconv.runreport.schema import tally_execution, validate

ROOT = Path(__file__).resolve().parent.parent
COMPILED = [lane.name for lane in lanes() if lane.compiled]


def test_the_registry_holds_eager_and_the_lanes_users_ship():
    assert lane_names()[0] == EAGER and not get_lane(EAGER).compiled
    assert set(COMPILED) == {"compiled", "compiled-dynamic", "compiled-freezing", "compiled-autotune",
                             "compiled-conv1x1-mm"}  # fmt: skip
    assert get_lane("compiled-dynamic").compile_options == {"dynamic": True}
    assert get_lane("compiled-autotune").compile_options == {"mode": "max-autotune-no-cudagraphs"}
    assert get_lane("compiled-freezing").forward_only and get_lane("compiled-freezing").inductor == {"freezing": True}
    assert get_lane("compiled-conv1x1-mm").inductor == {"conv_1x1_as_mm": True}
    assert all(lane.changes for lane in lanes())


def test_parse_executions():
    assert parse_executions("eager") == (EAGER,)
    assert parse_executions("all") == lane_names()
    assert parse_executions("all-compiled") == tuple(COMPILED)
    assert parse_executions(" compiled , eager,compiled") == ("compiled", EAGER)
    with pytest.raises(ValueError, match=r"^execution lane must be one of \('eager', 'compiled'.*got 'jit'$"):
        parse_executions("eager,jit")
    with pytest.raises(ValueError, match="must name at least one execution lane"):
        parse_executions(" , ")


def test_a_lane_name_and_where_it_applies():
    with pytest.raises(ValueError, match="lane name must be words joined by '-'"):
        ExecutionLane("bad name", "x")
    freezing = get_lane("compiled-freezing")
    assert freezing.unavailable_reason("cpu") is None
    assert freezing.unavailable_reason("cuda:0") == "execution lane 'compiled-freezing' applies to cpu only, not cuda"
    future = ExecutionLane("compiled-future", "x", inductor={"no_such_setting": True})
    assert "inductor has no config no_such_setting" in future.unavailable_reason("cpu")


def test_the_context_manager_sets_reads_and_restores_the_configuration():
    before = (inductor_config.freezing, dynamo_config.recompile_limit, dynamo_config.fail_on_recompile_limit_hit)
    assert active_lane() == EAGER
    with execution_lane("compiled-freezing") as config:
        assert active_lane() == "compiled-freezing"
        assert inductor_config.freezing is True and dynamo_config.recompile_limit == RECOMPILE_LIMIT
        assert dynamo_config.fail_on_recompile_limit_hit is True
        assert config["inductor"]["freezing"] is True and config["dynamo"]["recompile_limit"] == RECOMPILE_LIMIT
        assert config == read_config("compiled-freezing")
    assert (
        inductor_config.freezing,
        dynamo_config.recompile_limit,
        dynamo_config.fail_on_recompile_limit_hit,
    ) == before
    with pytest.raises(RuntimeError, match="boom"), execution_lane("compiled-conv1x1-mm"):
        assert inductor_config.conv_1x1_as_mm is True
        raise RuntimeError("boom")
    assert inductor_config.conv_1x1_as_mm is False and active_lane() == EAGER
    with execution_lane(EAGER) as config:
        assert config == {} and active_lane() == EAGER
    with pytest.raises(ValueError, match="execution lane must be one of"), execution_lane("jit"):
        pass


def test_a_relation_in_a_lane_keeps_its_reference_and_compiles_its_formulations():
    pointwise = get("pointwise")
    assert in_lane(pointwise, EAGER) is pointwise
    with pytest.raises(RuntimeError, match=r"outside execution_lane\('compiled'\)"):
        in_lane(pointwise, "compiled")
    with execution_lane("compiled"):
        compiled = in_lane(pointwise, "compiled")
    assert compiled.reference is pointwise.reference and compiled.grads == pointwise.grads
    assert isinstance(compiled.kind, CompiledKind) and compiled.kind.eager is pointwise
    assert all(compiled.formulations[n].fn is not spec.fn for n, spec in pointwise.formulations.items())
    assert "compiled: torch.compile()" in compiled.kind.config
    with pytest.raises(RuntimeError, match="ran outside it"):  # compiled for a lane, run in another
        compiled.run(Case(ConvGeometry(1, 2, 2, (2, 2))))
    with execution_lane("compiled-freezing"):
        frozen = in_lane(pointwise, "compiled-freezing")
    assert frozen.grads == () and frozen.kind.eager.grads == ()  # inference only: forward alone


def test_where_a_lane_cannot_run_a_relation_it_says_why():
    assert "is not compiled: initialisation is not compiled" in lane_unavailable(get("init"), "compiled", "cpu")
    assert lane_unavailable(get("init"), EAGER, "cpu") is None
    why = lane_unavailable(get("classifier_head"), "compiled-freezing", "cpu")
    assert why == ("execution lane 'compiled-freezing' runs inference only, and relation 'classifier_head' "
                   "(loss head) cannot be measured without its gradients")  # fmt: skip
    assert lane_unavailable(get("classifier_head"), "compiled", "cpu") is None
    assert "applies to cpu only" in lane_unavailable(get("pointwise"), "compiled-freezing", "cuda")
    # every relation of the registry runs in the default compiled lane, but the parameter inits
    not_compiled = {r.name for r in relations() if lane_unavailable(r, "compiled", "cpu")}
    assert not_compiled == {r.name for r in relations() if r.kind is get("init").kind} and "init" in not_compiled


def test_a_new_relation_of_a_known_kind_runs_in_every_lane_without_edits():
    toy = dataclasses.replace(get("pointwise"), name="toy_lane_pointwise")
    assert all(lane_unavailable(toy, lane, "cpu") is None for lane in lane_names())


def test_a_compiler_bug_is_avoided_only_in_its_lane():
    bug = get_bug("inductor-freezing-float64-conv-prepack")
    case = Case(ConvGeometry(1, 2, 3, (3, 3)), dtype="float64")
    assert bug.matches(case) and bug.lanes == ("compiled-freezing",)
    assert matching_bug(case, "compiled-freezing") is bug and matching_bug(case) is None
    assert avoided_bug(case, lambda b: True, execution="compiled-freezing") is bug
    assert avoided_bug(case, lambda b: True) is None  # eager float64 convs are judged as ever
    assert avoided_bug(case, lambda b: False, execution="compiled-freezing") is None  # fixed: judged again


def test_a_compiler_bug_of_one_formulations_code_is_avoided_only_in_its_relations():
    bug = get_bug("inductor-dynamic-view-symbolic-geometry")
    case = Case(ConvGeometry(2, 4, 4, (3, 3), kernel=2))  # a 2x2 output of 4 channels
    assert bug.matches(case) and not bug.matches(Case(ConvGeometry(2, 4, 4, (3, 3), kernel=3)))  # 1x1 output
    assert avoided_bug(case, lambda b: True, "compiled-dynamic", "converted_dense") is bug
    assert avoided_bug(case, lambda b: True, "compiled-dynamic", "general_conv") is None  # its views compile
    assert avoided_bug(case, lambda b: True, "compiled-dynamic") is None  # no relation named: none of its
    assert avoided_bug(case, lambda b: True, "compiled", "converted_dense") is None  # static shapes compile
    assert matching_bug(case, "compiled-dynamic", "converted_conv_transpose") is bug


def test_a_compile_that_does_not_end_is_avoided_for_3d_transposed_convs_with_a_bias_in_the_converter():
    bug = get_bug("inductor-symbolic-output-positions-compile-hang")
    hanging = Case(ConvGeometry(0, 4, 4, (4, 1, 4), kernel=(4, 1, 4), stride=(2, 3, 3), padding=(1, 0, 3), groups=2,
                                transposed=True, output_padding=(0, 1, 1)), dtype="float16")  # fmt: skip
    assert bug.kind == "compile hang" and set(bug.lanes) == set(COMPILED)
    for lane in COMPILED:  # the converter's ints are symbolic from a test's second example in every lane
        assert avoided_bug(hanging, lambda b: True, lane, "converted_conv_transpose") is bug
    assert avoided_bug(hanging, lambda b: True, "eager", "converted_conv_transpose") is None
    assert avoided_bug(hanging, lambda b: True, "compiled", "conv_transpose") is None  # no converter: compiles
    assert avoided_bug(hanging, lambda b: False, "compiled", "converted_conv_transpose") is None  # fixed torch
    geometry = hanging.geometry
    replace = dataclasses.replace
    for other in (replace(geometry, bias=False), replace(geometry, transposed=False, output_padding=(0, 0, 0)),
                  ConvGeometry(1, 4, 4, (4, 4), kernel=(4, 4), stride=2, transposed=True)):  # fmt: skip
        assert not bug.matches(replace(hanging, geometry=other)), other


def test_a_compile_error_no_signature_describes_is_recognised_by_its_error_only_where_present():
    # inductor 2.13.0's value-range errors under dynamic sizes depend on the examples compiled before
    # (which sizes are symbolic), not on the case: the bug matches no case and is recognised by what
    # it raised, in the compiled lanes, where its reproducer fails; any other error is reported
    from torch._inductor.exc import InductorError

    bug = get_bug("inductor-dynamic-sizes-value-range-error")
    assert set(bug.lanes) == set(COMPILED) and not bug.matches(Case(ConvGeometry(2, 1, 1, (2, 3, 2), stride=(1, 2, 3))))
    from torch._inductor.exc import LoweringException
    from torch.utils._sympy.value_ranges import ValueRangeError

    # as inductor raises them (the lowering's exception inside InductorError, which names its type)
    raised = [
        InductorError(LoweringException(ValueRangeError("Invalid ranges [0:-1]"), None, [], {}), ""),
        InductorError(ValueError("Exponent must be non-negative."), ""),
    ]
    for error in raised:
        text = f"{type(error).__name__}: {error}"
        assert known_error(error, lambda b: True, "compiled-dynamic", "pointwise_3d") is bug, text
        assert known_error(error, lambda b: True, "compiled-freezing") is bug
        assert known_error(error, lambda b: True, "eager") is None  # eager never raises it: reported
        assert known_error(error, lambda b: False, "compiled") is None  # fixed (2.14.1): reported
    for other in (InductorError(RuntimeError("LoweringException: AssertionError: something else"), ""),
                  RuntimeError("ValueRangeError: Invalid ranges [0:-1]"),  # not raised by inductor
                  AssertionError("InductorError: ValueError: Exponent must be non-negative")):  # fmt: skip
        assert known_error(other, lambda b: True, "compiled") is None, other


def _stride_check_failure(output: torch.Tensor, expected_stride: tuple[int, ...], op: str) -> AssertionError:
    """What the stride check inductor's generated code calls raises when ``op``'s ``output`` does not
    have the strides inductor expected (torch's own message; nothing compiled)."""
    with pytest.raises(AssertionError) as stride_check:
        torch._C._dynamo.guards.assert_size_stride(output, tuple(output.shape), expected_stride, op)
    return stride_check.value


def _backend_compiler_failed(inner: Exception) -> Exception:
    """``inner`` as dynamo wraps an error its backend (inductor) raised (nothing compiled)."""
    from torch._dynamo.exc import BackendCompilerFailed

    def inductor() -> None: ...

    try:  # the frame argument is new in recent torch
        return BackendCompilerFailed(inductor, inner, None)
    except TypeError:
        return BackendCompilerFailed(inductor, inner)


def test_the_freezing_lanes_conv_output_stride_check_is_recognised_by_its_error_in_that_lane_only():
    # what the generated code of a frozen float32 conv raises once sizes are symbolic (torch 2.13.0 and
    # 2.14.1): the history-dependent failure is recognised by its error, in compiled-freezing only
    bug = get_bug("inductor-freezing-dynamic-conv-output-strides")
    assert bug.lanes == ("compiled-freezing",) and not bug.relations
    # raised by the check the generated code calls, as the frozen conv's output meets it (nothing compiled)
    raised = _stride_check_failure(
        torch.empty(2, 4, 1, 3), (12, 1, 12, 4), "torch.ops.mkldnn._convolution_pointwise.default"
    )
    assert known_error(raised, lambda b: True, "compiled-freezing", "linear_last_dim") is bug
    assert known_error(raised, lambda b: True, "compiled-freezing", "pointwise_2d") is bug  # any conv relation
    for lane in ("eager", *(lane for lane in COMPILED if lane != "compiled-freezing")):
        assert known_error(raised, lambda b: True, lane, "linear_last_dim") is None, lane
    assert known_error(raised, lambda b: False, "compiled-freezing", "linear_last_dim") is None  # fixed torch
    for other in (
        AssertionError("expected size 4==4, stride 12==1 at dim=1\nError in op: torch.ops.aten.convolution.default"),
        AssertionError("expected size 4==4, stride 12==1 at dim=1"),  # no op named: another stride bug
        RuntimeError("expected size 4==4, stride 12==1 at dim=1\nError in op: torch.ops.mkldnn._convolution_pointwise"),
        AssertionError("linear_last_dim violated: Error in op: torch.ops.mkldnn._convolution_pointwise."),
    ):
        assert known_error(other, lambda b: True, "compiled-freezing", "linear_last_dim") is None, other


def test_the_replication_pad_backward_stride_check_is_recognised_by_its_error_in_every_compiled_lane():
    # what the compiled backward of a replicate-padded conv raises where inductor laid the conv out
    # channels_last (torch 2.13.0 and 2.14.1): recognised by its error, in the compiled lanes only
    bug = get_bug("inductor-replication-pad-backward-strides")
    assert set(bug.lanes) == set(COMPILED) and not bug.relations
    raised = _stride_check_failure(
        torch.empty(1, 6, 4, 2).contiguous(memory_format=torch.channels_last),
        (48, 8, 2, 1),
        "torch.ops.aten.replication_pad2d_backward.default",
    )
    for lane in COMPILED:
        assert known_error(raised, lambda b: True, lane, "composition") is bug, lane
    assert known_error(raised, lambda b: True, "eager", "composition") is None
    assert known_error(raised, lambda b: False, "compiled", "composition") is None  # fixed torch
    other_op = AssertionError(
        "expected size 6==6, stride 1==8 at dim=1\nError in op: torch.ops.aten.reflection_pad2d_backward.default"
    )
    assert known_error(other_op, lambda b: True, "compiled", "composition") is None


def test_a_frozen_linear_with_an_empty_weight_is_avoided_in_bfloat16_and_recognised_in_float32():
    # oneDNN cannot build an inner product with an empty weight (2.13.0, 2.14.1): bfloat16 fails with no
    # input or no output features whatever the sizes (avoided beforehand); float32 with no input features
    # only once sizes are symbolic (recognised by the error)
    bug = get_bug("inductor-freezing-linear-empty-weight")
    empty = Case(ConvGeometry(1, 0, 1, (2,)), dtype="bfloat16")
    assert bug.lanes == ("compiled-freezing",)
    assert avoided_bug(empty, lambda b: True, "compiled-freezing", "linear_empty_features") is bug
    replace = dataclasses.replace
    no_outputs = replace(empty, geometry=ConvGeometry(1, 2, 0, (2,)))
    assert avoided_bug(no_outputs, lambda b: True, "compiled-freezing", "linear_empty_features") is bug
    assert avoided_bug(empty, lambda b: True, "compiled", "linear_empty_features") is None
    assert avoided_bug(empty, lambda b: False, "compiled-freezing", "linear_empty_features") is None
    assert avoided_bug(empty, lambda b: True, "compiled-freezing", "converted_dense") is None  # its one relation
    for other in (replace(empty, dtype="float32"), replace(empty, dtype="float16"),
                  replace(empty, geometry=ConvGeometry(1, 2, 3, (2,)))):  # fmt: skip
        assert not bug.matches(other), other
    primitive = RuntimeError(
        "could not create a primitive descriptor for the inner product forward propagation primitive. Run "
        "workload with environment variable ONEDNN_VERBOSE=all to get additional diagnostic information."
    )

    raised = _backend_compiler_failed(primitive)
    assert str(raised).startswith("backend='inductor' raised:")  # as dynamo words it
    assert known_error(raised, lambda b: True, "compiled-freezing", "linear_empty_features") is bug
    assert known_error(raised, lambda b: True, "compiled", "linear_empty_features") is None
    assert known_error(raised, lambda b: True, "compiled-freezing", "converted_dense") is None  # a real Linear
    assert (
        known_error(
            _backend_compiler_failed(RuntimeError("another")),
            lambda b: True,
            "compiled-freezing",
            "linear_empty_features",
        )
        is None
    )
    assert known_error(primitive, lambda b: True, "compiled-freezing", "linear_empty_features") is None  # eager


def test_the_frozen_empty_batch_output_layout_failure_is_recognised_by_its_error_in_the_freezing_lane_only():
    # freezing's output-layout pass evaluates sym_max(1, None) for a strided conv's flattened output with an
    # empty batch once sizes are symbolic (2.13.0, 2.14.1); the message is torch.sym_max's own
    bug = get_bug("inductor-freezing-empty-batch-output-layout")
    assert bug.lanes == ("compiled-freezing",) and not bug.relations
    assert not bug.matches(Case(ConvGeometry(0, 4, 2, (2, 2), kernel=2, stride=2)))  # never avoided beforehand
    with pytest.raises(AssertionError) as sym_max:
        torch.sym_max(1, None)

    raised = _backend_compiler_failed(sym_max.value)
    for relation in ("full_kernel_3d", "full_kernel", "classifier_head"):
        assert known_error(raised, lambda b: True, "compiled-freezing", relation) is bug, relation
    for lane in set(COMPILED) - {"compiled-freezing"}:
        assert known_error(raised, lambda b: True, lane, "full_kernel_3d") is None, lane
    assert known_error(raised, lambda b: False, "compiled-freezing", "full_kernel_3d") is None  # fixed torch
    assert known_error(sym_max.value, lambda b: True, "compiled-freezing", "full_kernel_3d") is None  # not compiling
    with pytest.raises(AssertionError) as other_type:
        torch.sym_max(1, "a")
    assert (
        known_error(_backend_compiler_failed(other_type.value), lambda b: True, "compiled-freezing", "full_kernel_3d")
        is None
    )


def test_a_case_whose_run_raised_a_known_error_is_rejected_and_counted(monkeypatch):
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.errors import UnsatisfiedAssumption

    from linconv.search import placement

    error = RuntimeError("the error of a known bug")
    bug = get_bug("inductor-dynamic-sizes-value-range-error")
    monkeypatch.setattr(placement, "known_error", lambda e, execution, relation: bug if e is error else None)
    seen = []

    @settings(max_examples=1, database=None)
    @given(st.just(0))
    def run_once(_: int) -> None:  # inside a Hypothesis test, as the properties call it
        placement.placements.reset()
        placement.placements.place()
        with pytest.raises(UnsatisfiedAssumption):
            placement.reject_known_error(error, "pointwise_3d")
        seen.append((placement.placements.placed, dict(placement.placements.rejected)))
        placement.reject_known_error(RuntimeError("another"), "pointwise_3d")  # returns: the caller re-raises

    try:
        run_once()
    finally:
        placement.placements.reset()
    # withdrawn: a test of such cases only is skipped with the reason, not passed
    assert seen == [(0, {f"known compile error {bug.name}": 1})]


def test_every_compiled_fault_names_a_compiled_lane():
    compiled = [f for f in all_faults() if f.lane != EAGER]
    assert {f.lane for f in compiled} <= set(COMPILED)
    assert any(f.harmful for f in compiled) and any(not f.harmful for f in compiled)
    assert all(f.bug_class == "a compiler's wrong lowering or folding of one pattern" for f in compiled if f.harmful)


# --- the report, merge and gate keep compiled lanes apart -----------------------------------------


def _row(execution: str | None, violations: int = 0, **extra) -> dict:
    row = {"relation": "pointwise", "device": "cpu", "mode": "default", "dtype": "float32", "examples": 5,
           "violations": violations, "exact": 0, "worst_ratio": 0.5, **extra}  # fmt: skip
    if execution is not None:
        row["execution"] = execution
    return row


def test_merge_never_pools_a_compiled_lane_with_eager():
    cost = {"seconds": 2.0, "graphs": 3, "graph_breaks": 0, "resets": 0}
    rows = merge_tallies([_row(None), _row(EAGER), _row("compiled", compile=cost), _row("compiled", compile=cost)])
    assert [(r["execution"], r["examples"]) for r in rows] == [("compiled", 10), (EAGER, 10)]
    assert rows[0]["compile"] == {"seconds": 4.0, "graphs": 6, "graph_breaks": 0, "resets": 0}
    assert tally_execution({"device": "cpu"}) == EAGER  # a row written before lanes


def _report(rows: list[dict]) -> dict:
    env = {"torch": "2.13.0", "python": "3.11", "hypothesis_profile": "ci", "threads": 2}
    report = build_report(tallies=rows, samples=[], environment=env, machine={"fingerprint": "f"})
    report["completeness"] = stamp(exit_status=0, collected=2, ran=2, checked=2)  # a finished run
    return report


def test_the_gate_judges_each_lane_apart(tmp_path):
    from linconv.gate import compare, load_run

    for side, rows in (("base", [_row(EAGER), _row("compiled")]), ("cand", [_row(EAGER), _row("compiled", 1)])):
        (tmp_path / side).mkdir()
        (tmp_path / side / "report.json").write_text(json.dumps(validate(_report(rows))))
    gate = compare(load_run(tmp_path / "base"), load_run(tmp_path / "cand"))
    assert not gate.passed
    assert gate.reasons == ["pointwise on cpu compiled: new violation(s) in float32 (1) (baseline: none)"]
    eager = [r for r in gate.rows if r.formulation == "(correctness)" and r.device == "cpu"]
    assert eager and eager[0].verdict == "ok"


def test_pytest_parametrizes_relation_properties_by_lane():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", "--devices", "cpu",
         "--execution", "eager,compiled-freezing", "properties/test_pointwise.py", "properties/test_init.py",
         "properties/test_classifier_head.py", "properties/test_regressions.py"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for dtype in ("float32", "float64", "bfloat16", "float16"):  # one test per dtype (eager: no lane in the id)
        assert f"test_pointwise.py::test_conv1x1_equals_linear_over_channels[cpu-default-{dtype}]" in out
        assert (
            f"test_pointwise.py::test_conv1x1_equals_linear_over_channels[cpu-default-compiled-freezing-{dtype}]" in out
        )
    regression_ids = [line for line in out.splitlines() if "test_regression_case[" in line]
    assert regression_ids and not any("compiled" in line for line in regression_ids)  # replayed eagerly only


def test_a_lane_that_cannot_run_a_relation_skips_it_with_the_reason():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "--devices", "cpu",
         "--execution", "compiled", "properties/test_init.py", "properties/test_regressions.py"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "relation 'init' (parameter init) is not compiled: initialisation is not compiled" in proc.stdout
    assert "1 skipped" in proc.stdout and "deselected" in proc.stdout  # the corpus replay runs only eagerly


def test_a_bad_lane_is_a_usage_error():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", "--execution", "jit",
         "properties/test_pointwise.py"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 4
    assert "--execution / LINCONV_EXECUTION: execution lane must be one of" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", "--compile-examples", "0",
         "properties/test_pointwise.py"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 4 and "--compile-examples / LINCONV_COMPILE_EXAMPLES must be an int >= 1" in proc.stderr


def test_a_timing_during_which_a_graph_compiled_is_dropped(monkeypatch):
    # in a compiled lane the recorder makes one untimed call, then times only if no graph compiled
    # meanwhile: a compile inside a timing would make the compiled formulation look seconds slow
    import torch

    from linconv.lanes.execution import CompileStats
    from linconv.measure import Workload
    from linconv.timing import Recorder, recorder

    graphs = iter(range(100))
    monkeypatch.setattr(recorder, "compile_stats", lambda: CompileStats(graphs=next(graphs)))
    calls = []

    def forward() -> torch.Tensor:
        calls.append(1)
        return torch.zeros(1)

    timer = Recorder(budget_s=0.001)
    timer.execution = "compiled"
    case = Case(ConvGeometry(1, 1, 1, (1, 1)))
    assert timer("pointwise", "conv2d", case, Workload(run=lambda: "checked", forward=forward)) == "checked"
    assert timer.errors == ["pointwise/conv2d: RuntimeError: a graph compiled while it was timed: timing dropped"]
    monkeypatch.setattr(recorder, "compile_stats", lambda: CompileStats(graphs=7))  # nothing compiles
    calls.clear()
    timer("pointwise", "conv2d", Case(ConvGeometry(1, 1, 1, (1, 1)), seed=1), Workload(run=lambda: 0, forward=forward))
    assert len(timer.errors) == 1 and timer.samples[-1].times["conv2d"]["forward"] > 0
    assert len(calls) >= 2  # the untimed call, then the timed ones


def test_a_dtype_test_whose_every_case_a_known_bug_covers_is_skipped_with_the_reasons(tmp_path):
    # inductor freezing cannot compile a float64 Conv2d (a known compile error avoided in that lane):
    # every float64 pointwise case is rejected, so the test checked nothing and says so (nothing compiles);
    # the run report counts the same rejections, in that lane and dtype, by reason
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "--devices", "cpu", "--dtypes",
         "float64", "--execution", "compiled-freezing", "--hypothesis-profile", "ci", "--report-dir", str(tmp_path),
         "properties/test_pointwise.py::test_conv1x1_equals_linear_over_channels"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 skipped" in proc.stdout and "passed" not in proc.stdout
    said = re.search(
        r"relation 'pointwise': every case drawn in this test was rejected, nothing checked: (.*)", proc.stdout
    )
    assert said and said.group(1).startswith("known compile error inductor-freezing-float64-conv-prepack (")
    skip_counts = {why: int(n) for why, n in re.findall(r"(known [a-z ]+ [a-z0-9-]+) \((\d+)\)", said.group(1))}
    rows = json.loads((tmp_path / "report.json").read_text())["rejected"]
    assert {(r["relation"], r["device"], r["mode"], r["execution"], r["dtype"]) for r in rows} == {
        ("pointwise", "cpu", "default", "compiled-freezing", "float64")
    }
    assert {r["reason"]: r["cases"] for r in rows} == skip_counts
    assert "## Cases rejected before checking" in (tmp_path / "report.md").read_text()


def test_an_explicit_example_checked_while_every_drawn_case_was_rejected_skips_and_says_so():
    # Hypothesis counts only drawn cases as satisfying assume(): a test whose explicit example was
    # placed and checked but whose every drawn case a known bug covers is unsatisfiable too; it is
    # skipped (no drawn case checked) and the skip says the explicit example passed. A test that
    # placed a drawn case is not skipped: its Unsatisfiable (if any) is Hypothesis's to report.
    from types import SimpleNamespace

    from hypothesis import HealthCheck, assume, example, given, settings
    from hypothesis import strategies as st
    from hypothesis.errors import Unsatisfiable

    from linconv.plugins.options import pytest_runtest_call
    from linconv.plugins.session import SESSION
    from linconv.search.placement import placements

    @settings(max_examples=5, database=None, suppress_health_check=[HealthCheck.filter_too_much])
    @given(st.integers(0, 9))
    @example(-1)
    def probe(n: int) -> None:
        if n < 0:
            placements.place()  # the explicit example is placed
        else:
            placements.reject("known compile error some-bug", "cpu", "float32")
            assume(False)

    def hook_on(exc: BaseException):
        hook = pytest_runtest_call(SimpleNamespace(obj=SimpleNamespace(linconv_relation="pointwise")))
        next(hook)
        return hook.throw(exc)

    placements.reset()
    saved = SESSION.rejected.copy()
    try:
        with pytest.raises(Unsatisfiable) as raised:
            probe()
        assert (placements.explicit, placements.placed) == (1, 0)
        said = r"no drawn case checked \(its 1 explicit example\(s\) passed\): known compile error some-bug \(\d+\)"
        with pytest.raises(pytest.skip.Exception, match=said):
            hook_on(raised.value)
        placements.place()  # outside a Hypothesis test: a drawn case (as the fault search places them)
        assert placements.placed == 1
        placements.reject("known compile error some-bug", "cpu", "float32")  # the hook took the earlier ones
        with pytest.raises(Unsatisfiable):
            try:  # raised again because a drawn case was placed, not for want of rejections
                hook_on(raised.value)
            except pytest.skip.Exception:  # a skip would end this test as skipped, not failed
                pytest.fail("skipped although a drawn case was placed")
    finally:
        SESSION.rejected.clear()  # what the hook recorded for this probe
        SESSION.rejected.update(saved)
        placements.reset()


def test_rejected_cases_count_where_they_were_placed_and_the_test_hook_records_them_once_in_its_lane():
    from collections import Counter
    from types import SimpleNamespace

    from linconv.plugins.options import pytest_runtest_call
    from linconv.plugins.session import SESSION
    from linconv.search.placement import placements

    placements.reset()
    saved = SESSION.rejected.copy()
    try:
        placements.placing("cpu", "float16")
        placements.reject("known compile error recognised-by-its-error")  # the case placed last
        placements.reject("mps has no float64", "mps", "float64")
        assert placements.where == Counter(
            {
                ("cpu", "float16", "known compile error recognised-by-its-error"): 1,
                ("mps", "float64", "mps has no float64"): 1,
            }
        )
        SESSION.rejected.clear()
        SESSION.execution = "compiled-dynamic"
        hook = pytest_runtest_call(SimpleNamespace(obj=SimpleNamespace(linconv_relation="pointwise")))
        next(hook)
        with pytest.raises(StopIteration):
            hook.send(None)  # the test passed
        assert SESSION.rejected == Counter(
            {
                (
                    "pointwise",
                    "cpu",
                    "default",
                    "compiled-dynamic",
                    "float16",
                    "known compile error recognised-by-its-error",
                ): 1,
                ("pointwise", "mps", "default", "compiled-dynamic", "float64", "mps has no float64"): 1,
            }
        )
        assert not placements.where  # a second hook call adds nothing
        hook = pytest_runtest_call(SimpleNamespace(obj=SimpleNamespace(linconv_relation="pointwise")))
        next(hook)
        with pytest.raises(StopIteration):
            hook.send(None)
        assert sum(SESSION.rejected.values()) == 2
    finally:
        SESSION.execution = "eager"
        SESSION.rejected.clear()
        SESSION.rejected.update(saved)
        placements.reset()
