"""The partial-sum term of the error model: where it applies, how big it is, and that the
float16/bfloat16 col2im sums it models are real (and still caught when wrong)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from linconv.core.cases import Case, Params
from linconv.core.geometry import ConvGeometry
from linconv.errormodel import precision as tolerance
from linconv.errormodel.partial_sums import conv_backend, storage_partial_sums
from linconv.relations import Relation, get, run_relation
from linconv.relations.general_conv import GENERAL_CONV, unfold_matmul

# docs/calibration.md "partial sums": grouped 4x5 kernel, 'same' padding, wide values
GEOMETRY = ConvGeometry(4, 4, 2, (7, 6), (4, 5), (1, 1), "same", (1, 1), 2, "zeros", False)


def _tensors(dtype: torch.dtype):
    t = Case(geometry=GEOMETRY, dtype=str(dtype).removeprefix("torch."), values="wide", seed=14).build()
    return t.x, t.weight


def test_the_term_is_sqrt_t_storage_roundoffs_only_where_storage_is_coarser() -> None:
    half = tolerance.precision_of(torch.float16, storage_partial_sums=20)
    assert half.u_part == pytest.approx(math.sqrt(20) * 2.0**-11)
    assert tolerance.precision_of(torch.bfloat16, storage_partial_sums=20).u_part == pytest.approx(
        math.sqrt(20) * 2.0**-8
    )
    # float32 / float64 sums already run in the storage format: the sqrt(K) term covers them
    assert tolerance.precision_of(torch.float32, storage_partial_sums=20).u_part == 0.0
    assert tolerance.precision_of(torch.float64, storage_partial_sums=20).u_part == 0.0
    assert tolerance.precision_of(torch.float16, storage_partial_sums=1).u_part == 0.0
    with pytest.raises(ValueError, match="storage_partial_sums must be >= 0, got -1"):
        tolerance.precision_of(torch.float16, storage_partial_sums=-1)


def test_fold_adds_the_overlapping_taps_in_half_dtypes_only() -> None:
    x, w = _tensors(torch.float16)
    assert storage_partial_sums("fold", GEOMETRY, x, w) == {"x": 20}  # 4x5 taps, 42 output positions
    x32, w32 = _tensors(torch.float32)
    assert storage_partial_sums("fold", GEOMETRY, x32, w32) == {}
    with pytest.raises(ValueError, match="partial-sum rule must be one of"):
        storage_partial_sums("im2col", GEOMETRY, x, w)


def test_slow_conv_rule_follows_the_backend_torch_selects() -> None:
    x, w = _tensors(torch.float16)
    with torch.backends.mkldnn.flags(enabled=False):
        assert conv_backend(x, w, GEOMETRY) in ("Slow2d", "")
        assert storage_partial_sums("slow_conv", GEOMETRY, x, w) == {"x": 20, "weight": 4}
    if conv_backend(x, w, GEOMETRY) == "Mkldnn":  # oneDNN runs this float16 conv: float32 sums
        assert storage_partial_sums("slow_conv", GEOMETRY, x, w) == {}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_slow_conv_half_gradients_fit_the_model(dtype: str) -> None:
    """The measurement behind the term: ATen's slow conv (oneDNN off) adds kernel taps in the
    storage dtype; under the float32-accumulation model alone its input gradient needed
    C up to 4.6 on these seeds (ratio 1.14 at C = 4)."""
    worst = 0.0
    with torch.backends.mkldnn.flags(enabled=False):
        for seed in range(20):
            case = Case(geometry=GEOMETRY, dtype=dtype, values="wide", seed=seed)
            result = run_relation("general_conv", case)
            assert not result.violations, result.message()
            worst = max(worst, result.worst_ratio)
    assert worst < 0.5  # measured 0.24 (float16) / 0.21 (bfloat16): room, not slack


def test_the_term_does_not_hide_a_lost_tap() -> None:
    """unfold + matmul with one kernel tap lost: its input gradient (the loosened comparison)
    is still far outside the bound, in float16 as in float32."""
    mask = torch.ones(GEOMETRY.kernel)
    mask[0, 0] = 0

    def lost_tap(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        return unfold_matmul(x, replace(p, weight=p.weight * mask.to(p.weight)), g)

    relation = GENERAL_CONV.with_formulation("unfold_matmul", lost_tap)
    for dtype in ("float16", "float32"):
        result = run_relation(relation, Case(geometry=GEOMETRY, dtype=dtype, values="wide", seed=14))
        grad_x = next(c for c in result.comparisons if c.formulation == "unfold_matmul" and c.tensor == "grad x")
        assert grad_x.ratio > 3, (dtype, grad_x.describe())


# --- the same sums in the other ranks and in transposed convs --------------------------------------

# measured bare (no partial-sum term) on seeds 0-19, values 'wide', oneDNN off: conv3d grad x needed
# C up to 5.86 (float16), conv_transpose output 4.67 (float16); with the term 0.80 and 0.85
GEOMETRY_3D = ConvGeometry(4, 2, 2, (3, 6, 5), (2, 4, 5), 1, "same", 1, 1, bias=False)
TRANSPOSED = ConvGeometry(4, 4, 2, (6, 5), (4, 5), 1, 1, 1, 2, transposed=True)


def _bare(relation: str) -> Relation:
    record = get(relation)
    formulations = {k: replace(v, partial_sums="") for k, v in record.formulations.items()}
    return replace(record, formulations=formulations)


def test_transposed_rules_charge_the_forward_and_the_weight() -> None:
    for dtype in (torch.float16, torch.float32):
        t = Case(TRANSPOSED, dtype=str(dtype).removeprefix("torch.")).build()
        with torch.backends.mkldnn.flags(enabled=False):
            for rule in ("slow_conv_transpose", "slow_conv_input_grad"):
                want = {"output": 20, "weight": 4} if dtype == torch.float16 else {}  # 4x5 taps reach each output
                assert storage_partial_sums(rule, TRANSPOSED, t.x, t.weight) == want


@pytest.mark.parametrize(
    ("relation", "geometry", "tensor", "formulations"),
    [
        ("general_conv_3d", GEOMETRY_3D, "grad x", ("conv3d",)),
        ("conv_transpose", TRANSPOSED, "output", ("conv_transpose", "conv_input_grad")),
    ],
    ids=["conv3d", "conv_transpose"],
)
def test_slow_kernels_need_the_term_in_every_rank(relation, geometry, tensor, formulations) -> None:
    """The term is needed (without it float16 is out of bound on these seeds) and sufficient."""
    bare_worst = model_worst = 0.0
    with torch.backends.mkldnn.flags(enabled=False):
        for seed in range(20):
            case = Case(geometry=geometry, dtype="float16", values="wide", seed=seed)
            model = run_relation(relation, case)
            assert not model.violations, model.message()
            bare = run_relation(_bare(relation), case)
            for result, worst in ((bare, "bare"), (model, "model")):
                ratio = max(c.ratio for c in result.comparisons if c.tensor == tensor and c.formulation in formulations)
                if worst == "bare":
                    bare_worst = max(bare_worst, ratio)
                else:
                    model_worst = max(model_worst, ratio)
    assert bare_worst > 1.0 and model_worst < 0.5, (bare_worst, model_worst)


def test_a_padding_mode_adds_its_copies_to_the_input_gradient() -> None:
    # thorough seed 8 (2026-12-06): replicate padding of a 1x1x1 input to 5x2x5 copies it 50 times,
    # and F.pad's backward adds the 50 gradients in float16
    replicate = ConvGeometry(1, 16, 20, (1, 1, 1), (5, 2, 5), padding="same", groups=4, padding_mode="replicate")
    x = torch.empty(replicate.input_shape, dtype=torch.float16)
    w = torch.empty(replicate.weight_shape, dtype=torch.float16)
    zeros = replace(replicate, padding_mode="zeros")
    fold = storage_partial_sums("fold", replicate, x, w)["x"]
    assert fold == math.ceil((math.sqrt(storage_partial_sums("fold", zeros, x, w)["x"]) + math.sqrt(50)) ** 2)
    assert storage_partial_sums("slow_conv", replicate, x, w)["x"] >= 50  # whatever the backend
    assert storage_partial_sums("fold", replicate, x.float(), w.float()) == {}
    case = Case(replicate, dtype="float16", values="positive", seed=21102533)  # seed 8's shrunk case
    assert run_relation("general_conv_3d", case).violations == ()
