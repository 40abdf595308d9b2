"""cuBLAS reduced-precision reductions in the error model: a float16/bfloat16 GEMM on CUDA may add
the partial sums of a split-K product in its output dtype (torch's default), and the model charges
``C * sqrt(T) * u`` for T = min(K, SPLIT_K_MAX) such sums while the flag allows it.

No GPU is needed to check the term: a CPU formulation that splits K into T slices, sums each in
float32 and adds the slice sums in the storage dtype (cuBLASLt's INPLACE reduction scheme) is
measured against the bound the CUDA model gives, with the flags of each lane (``as-shipped``: the
reductions allowed, the term on; ``strict``: off). The cases are the ones the property search
found (docs/calibration.md, "Split-K"): without the term the simulation is a false alarm, with it
it holds, and the harmful fault (the whole sum in the storage dtype) is still caught.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace

import pytest
import torch

import linconv.errormodel.rounding as rounding
from linconv.converters import block_diagonal
from linconv.core.cases import Case, Params
from linconv.core.geometry import ConvGeometry
from linconv.errormodel.constants import SPLIT_K_MAX
from linconv.errormodel.rounding import formulation_precision, half_accumulation, reduced_precision_partial_sums
from linconv.faults import get_fault
from linconv.lanes.flags import PrecisionFlags, precision_lane
from linconv.relations import get

SHIPPED = PrecisionFlags(
    api="fp32_precision",
    cuda_matmul="ieee",
    cudnn_conv="tf32",
    mkldnn_matmul="ieee",
    mkldnn_conv="ieee",
    cudnn_enabled=True,
    cudnn_benchmark=False,
    cudnn_deterministic=False,
    mkldnn_enabled=True,
    cuda_fp16_reduced_precision_reduction=True,
    cuda_bf16_reduced_precision_reduction=True,
    cuda_fp16_accumulation=False,
)
STRICT = replace(SHIPPED, cuda_fp16_reduced_precision_reduction=False, cuda_bf16_reduced_precision_reduction=False)
ABSENT = replace(SHIPPED, cuda_fp16_reduced_precision_reduction=None, cuda_bf16_reduced_precision_reduction=None)
HALF = (torch.float16, torch.bfloat16)


# --- where the term applies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device_type", "op", "dtype", "k", "flags", "expected"),
    [
        ("cuda", "matmul", torch.float16, 4096, SHIPPED, SPLIT_K_MAX),
        ("cuda", "matmul", torch.bfloat16, 4096, SHIPPED, SPLIT_K_MAX),
        ("cuda", "matmul", torch.float16, 7, SHIPPED, 7),  # at most one slice per term
        ("cuda", "conv", torch.bfloat16, 4096, SHIPPED, SPLIT_K_MAX),  # a conv may run as im2col + GEMM
        ("cuda", "matmul", torch.float16, 4096, STRICT, 0),
        ("cuda", "matmul", torch.bfloat16, 4096, replace(SHIPPED, cuda_bf16_reduced_precision_reduction=False), 0),
        ("cuda", "matmul", torch.float16, 4096, ABSENT, SPLIT_K_MAX),  # no flag: cuBLAS's default (allowed)
        ("cuda", "matmul", torch.float32, 4096, SHIPPED, 0),  # float32 output: sums stay float32
        ("cuda", "matmul", torch.float64, 4096, SHIPPED, 0),
        ("cpu", "matmul", torch.float16, 4096, SHIPPED, 0),  # the flags are cuBLAS's
        ("mps", "matmul", torch.float16, 4096, SHIPPED, 0),
    ],
)
def test_partial_sums_in_the_storage_dtype_per_device_op_dtype_and_flag(device_type, op, dtype, k, flags, expected):
    assert reduced_precision_partial_sums(device_type, op, dtype, k, flags) == expected


def test_full_float16_accumulation_only_for_float16_on_cuda_with_the_flag_on():
    on = replace(SHIPPED, cuda_fp16_accumulation=True)
    assert half_accumulation("cuda", "matmul", torch.float16, on)
    assert not half_accumulation("cuda", "matmul", torch.bfloat16, on)
    assert not half_accumulation("cpu", "matmul", torch.float16, on)
    assert not half_accumulation("cuda", "matmul", torch.float16, SHIPPED)
    assert not half_accumulation("cuda", "matmul", torch.float16, replace(SHIPPED, cuda_fp16_accumulation=None))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("xpu", "matmul", torch.float16, 8), "device_type must be one of ('cpu', 'cuda', 'mps'), got 'xpu'"),
        (("cuda", "linear", torch.float16, 8), "op must be one of ('conv', 'matmul'), got 'linear'"),
        (("cuda", "matmul", torch.float16, -1), "reduction_length must be >= 0, got -1"),
    ],
)
def test_bad_arguments_are_named(args, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        reduced_precision_partial_sums(*args, SHIPPED)


@pytest.fixture
def cuda_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA error model on CPU tensors: every op counts as one that may reach cuBLAS, so the
    flags in force (set by the test's lane) decide the term as they do on a GPU."""
    monkeypatch.setattr(rounding, "_cublas_may_run", lambda device_type, op: True)


def _case(text: str) -> Case:
    return Case.from_dict(json.loads(text))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_the_term_is_sqrt_t_storage_roundoffs_and_follows_the_lane(cuda_model, dtype):
    case = Case(ConvGeometry(2, 64, 4, (8, 8), kernel=8), dtype=dtype)
    u = 2.0 ** -{"float16": 11, "bfloat16": 8}[dtype]
    with precision_lane("as-shipped"):
        shipped = formulation_precision(case, ("matmul",), reduction_length=4096)
        no_length = formulation_precision(case, ("matmul",))
    with precision_lane("strict"):
        strict = formulation_precision(case, ("matmul",), reduction_length=4096)
    assert shipped.u_part == pytest.approx(math.sqrt(SPLIT_K_MAX) * u)
    assert strict.u_part == no_length.u_part == 0.0


# --- the simulation -------------------------------------------------------------------------------


def split_k_in_storage_dtype(linear):
    """flatten + Linear computed as cuBLAS may with reduced-precision reductions: K in
    T = min(K, SPLIT_K_MAX) slices, each summed in float32 and rounded to the storage dtype, the
    slice sums then added one by one in the storage dtype."""

    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if x.dtype not in HALF:
            return linear(x, p, g)
        xf, w = x.flatten(1), block_diagonal(p.weight, g.groups)
        k = xf.shape[1]
        slices = min(k, SPLIT_K_MAX)
        edges = [round(i * k / slices) for i in range(slices + 1)]
        total = None
        for lo, hi in itertools.pairwise(edges):
            part = (xf[:, lo:hi].float() @ w[:, lo:hi].float().t()).to(x.dtype)
            total = part if total is None else total + part
        return total if p.bias is None else total + p.bias

    return fn


FULL_KERNEL = get("full_kernel")
SPLIT_K = FULL_KERNEL.with_formulation(
    "flatten_linear", split_k_in_storage_dtype(FULL_KERNEL.formulations["flatten_linear"].fn)
)
# Found by the property search (ci profile, the full_kernel strategy) over the simulation with
# the term off: example 69, K = 23*8*2 = 368, error/bound 1.07 (docs/calibration.md, "Split-K").
FOUND_WITHOUT_TERM = _case(
    '{"device": "cpu", "dtype": "bfloat16", "geometry": {"batch": 4, "bias": true, "dilation": [1, 1], '
    '"groups": 1, "in_channels": 23, "kernel": [8, 2], "out_channels": 22, "padding": [0, 0], '
    '"padding_mode": "zeros", "size": [8, 2], "stride": [2, 1]}, "head_features": 0, "input_view": "strided", '
    '"memory_format": "contiguous", "seed": 338, "values": "positive"}'
)
# The harmful fault (the whole running sum in the storage dtype), found and shrunk by the fault
# search with the term on: K = 23*3*8 = 552, error/bound 1.19.
WHOLE_SUM_CAUGHT = _case(
    '{"device": "cpu", "dtype": "bfloat16", "geometry": {"batch": 1, "bias": false, "dilation": [1, 1], '
    '"groups": 1, "in_channels": 23, "kernel": [3, 8], "out_channels": 1, "padding": [0, 0], '
    '"padding_mode": "zeros", "size": [3, 8], "stride": [1, 1]}, "head_features": 0, "input_view": "dense", '
    '"memory_format": "contiguous", "seed": 0, "values": "positive"}'
)


def _output_ratio(relation, case: Case) -> float:
    result = relation.run(case)
    (comparison,) = [c for c in result.comparisons if c.formulation == "flatten_linear" and c.tensor == "output"]
    return comparison.ratio


def test_split_k_simulation_is_a_false_alarm_without_the_term_and_holds_with_it(cuda_model):
    with precision_lane("strict"):  # reductions off: no term, the model of a float32 reduction
        without = _output_ratio(SPLIT_K, FOUND_WITHOUT_TERM)
    with precision_lane("as-shipped"):
        with_term = _output_ratio(SPLIT_K, FOUND_WITHOUT_TERM)
        assert not SPLIT_K.run(FOUND_WITHOUT_TERM).violations
    assert without > 1.0  # measured 1.07
    assert with_term < 0.5  # measured 0.19


def test_split_k_simulation_holds_with_the_term_on_many_drawn_shapes(cuda_model):
    """Positive values (no cancellation: the worst for added roundings) and wide values, K from
    64 to 16384, both half dtypes: the simulated output stays well inside the bound with the term."""
    worst = 0.0
    with precision_lane("as-shipped"):
        for dtype in ("float16", "bfloat16"):
            for values in ("positive", "wide"):
                for channels, size in ((16, 2), (64, 8), (64, 16)):
                    for seed in range(2):
                        g = ConvGeometry(4, channels, 8, (size, size), kernel=size, bias=True)
                        worst = max(worst, _output_ratio(SPLIT_K, Case(g, dtype=dtype, values=values, seed=seed)))
    assert worst < 0.5  # measured 0.15 (0.83 without the term)


def test_the_term_does_not_hide_a_sum_kept_in_the_storage_dtype(cuda_model):
    whole = get_fault("half_accumulated_in_half").faulted_relation()
    with precision_lane("as-shipped"):
        assert _output_ratio(whole, WHOLE_SUM_CAUGHT) > 1.0  # measured 1.19
        assert _output_ratio(SPLIT_K, WHOLE_SUM_CAUGHT) < 0.5
