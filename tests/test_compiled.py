"""Compiled execution lanes, compiling for real (torch.compile, inductor: seconds per graph, so
these tests are marked ``compile`` and run in ``tox -e compile``; ``pytest -m "not compile"``
leaves them out): a compiled relation is judged like an eager one, the exact lane stays bit for
bit, compile cost is measured, a full cache is cleared and counted (never bypassed), and the
compiled-lane faults are caught (the harmful) or not flagged (the benign)."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo.config as dynamo_config

from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.faults import all_faults
from linconv.faults.search import search
from linconv.lanes.execution import compile_formulation, compile_stats, execution_lane, get_lane
from linconv.relations import check_relation, get, run_relation

pytestmark = pytest.mark.compile

COMPILED_FAULTS = [f for f in all_faults() if f.lane != "eager"]
HARMFUL = [f for f in COMPILED_FAULTS if f.harmful]
BENIGN = [f for f in COMPILED_FAULTS if not f.harmful]
CASE = Case(ConvGeometry(2, 3, 4, (3, 3)), seed=3)


def test_a_compiled_relation_is_judged_against_the_reference_and_its_eager_self():
    result = run_relation("pointwise", CASE, execution="compiled")
    assert not result.violations, result.message()
    assert result.execution == "compiled" and "inductor" in result.execution_config
    against = {(c.formulation, c.tensor, c.against) for c in result.comparisons}
    for name in get("pointwise").formulations:
        assert (name, "output", "reference") in against and (name, "grad weight", "reference") in against
        assert (name, "output vs eager", "eager") in against
    assert result.compile["graphs"] >= 2 and result.compile["seconds"] > 0  # one graph per formulation at least


def test_the_exact_lane_stays_bit_for_bit_compiled():
    # small integers: every sum is exact whatever order inductor adds them in, so compiled code must
    # give the float64 reference's values exactly, forward and backward
    for relation, case in (("general_conv", Case(ConvGeometry(2, 3, 4, (5, 5), kernel=3, padding=1), values="integer")),
                           ("pointwise", Case(ConvGeometry(2, 4, 4, (3, 3), groups=2), dtype="bfloat16",
                                              values="integer"))):  # fmt: skip
        result = check_relation(relation, case, execution="compiled")
        assert result.exact and all(c.error == 0 for c in result.comparisons)


def test_a_failure_message_names_the_lane_and_its_configuration_and_reproduces_in_it():
    fault = next(f for f in HARMFUL if f.name == "compiled_1x1_conv_reads_nhwc_as_nchw")
    case = Case(ConvGeometry(2, 3, 4, (3, 3)), memory_format="channels_last", seed=1)
    assert not fault.faulted_relation().run(case).violations  # eager: the fault is dormant
    result = fault.runner()(case)
    assert result.violations
    message = result.message()
    assert "execution: compiled: torch.compile(); inductor freezing=False" in message
    assert "check_relation('pointwise', Case.from_dict(" in message and "execution='compiled')" in message
    assert "eager conv2d: worst error/bound" in message and "(within bound: the compiler moved it)" in message


def test_a_full_compile_cache_is_cleared_and_counted_never_bypassed():
    def double(x, p):
        return x * 2

    with execution_lane("compiled"), dynamo_config.patch(recompile_limit=1, automatic_dynamic_shapes=False):
        compiled = compile_formulation(double, get_lane("compiled"))
        before = compile_stats()
        for n in range(1, 5):  # every new static shape needs a new graph; the cache holds one
            x = torch.arange(float(n))
            assert torch.equal(compiled(x, None), x * 2)
        spent = compile_stats() - before
    assert spent.graphs == 4 and spent.resets == 3


@pytest.mark.parametrize("fault", HARMFUL, ids=[f.name for f in HARMFUL])
def test_a_compiled_lane_fault_is_caught(fault):
    outcome = search(fault, shrink=False)
    assert outcome.caught, f"{fault.short()} escaped {outcome.examples} examples (worst {outcome.worst_ratio:.3g})"


# Each example compiles its relation's formulations afresh (forward and backward graphs: tens of
# seconds on 2 busy cores), so the benign search is shorter here than the eager one's 20 examples;
# `python -m linconv faults --only compiled_sum_split_in_chunks` runs the lanes' full budget.
BENIGN_EXAMPLES = 5


@pytest.mark.parametrize("fault", BENIGN, ids=[f.name for f in BENIGN])
def test_a_benign_compiled_change_is_not_flagged(fault):
    outcome = search(fault, shrink=False, max_examples=BENIGN_EXAMPLES)
    assert not outcome.caught, f"{fault.short()} flagged: {outcome.detail}"
    assert outcome.examples >= BENIGN_EXAMPLES


@pytest.mark.parametrize("invalid", ["more_channels", "groups", "kernel"])
def test_a_compiled_refusal_is_read_beneath_dynamos_wrapper(invalid):
    # compiled, torch's shape error reaches the caller as "TorchRuntimeError: RuntimeError when
    # making fake tensor call" (a Python ValueError as "Unsupported: Observed exception"): the
    # contract reads the error beneath, so a refusal still has to name the mismatch
    case = Case(ConvGeometry(2, 4, 4, (5, 5), kernel=3, groups=2), seed=1, invalid=invalid)
    result = check_relation("shape_contract_conv", case, execution="compiled")
    assert not result.violations
    assert {c.formulation for c in result.comparisons} >= set(get("general_conv").formulations)


def test_a_compiled_error_about_something_else_is_still_not_a_refusal():
    from linconv.relations.shape_contract import names_a_mismatch, underlying_error

    @torch.compile(fullgraph=True)
    def broken(x):
        if x.sum() is not None:
            raise RuntimeError("the allocator ran out of memory")
        return x

    with pytest.raises(Exception) as raised:
        broken(torch.ones(3))
    error = underlying_error(raised.value)
    assert "ran out of memory" in str(error) and not names_a_mismatch(str(error).splitlines()[0])
