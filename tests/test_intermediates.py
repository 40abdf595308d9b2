"""R of the error model (linconv.errormodel.intermediates): each intermediate rounding charged
against what is rounded. R must bound the worst a rounding of every stated intermediate can do
(sound), reduce to the old charge where it is not known (blunt, never looser), and be what the
relations' formulations state."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from linconv.core.cases import Case, Params
from linconv.core.geometry import ConvGeometry
from linconv.errormodel import bound, precision_of, required_c
from linconv.errormodel.constants import C_CALIBRATED
from linconv.errormodel.rounding import per_element_rounding
from linconv.measure import float64_cpu
from linconv.relations import get, relations
from linconv.relations.common import CONV_PRODUCT, conv
from linconv.relations.composition import FUSED_ROUNDED, HIDDEN_ROUNDED, fused_parameters
from linconv.relations.general_conv import dense_rounded

U = 2.0**-11  # float16


def _float64(case: Case) -> tuple[torch.Tensor, Params]:
    t = case.build()
    return float64_cpu(t.x), Params(*(None if v is None else float64_cpu(v) for v in t.params.as_dict().values()))


def test_blunt_bound_is_the_old_one_and_r_only_tightens_it():
    ref = torch.tensor([0.5, -2.0, 1e-3], dtype=torch.float64)
    mag = torch.tensor([3.0, 4.0, 5.0], dtype=torch.float64)
    p = precision_of(torch.float16)
    old = p.u_out * ref.abs() + C_CALIBRATED * (p.u_mid + p.u_in + math.sqrt(9) * p.u_acc + p.u_part) * mag
    old = old + p.tiny * 10
    assert torch.equal(bound(ref, mag, 9, p), old)
    # min(R + |y|, M) <= M: never looser than the blunt charge, sharper where R + |y| < M
    r = torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64)
    sharp = bound(ref, mag, 9, p, rounded=r)
    assert (sharp <= old).all() and (sharp < old).any()
    # where nothing cancels (R + |y| up to 2M: positive values) the charge is capped at the old one
    assert torch.equal(bound(ref, mag, 9, p, rounded=mag), old)
    # a kernel not known to round per element keeps the blunt charge whatever R says
    assert torch.equal(bound(ref, mag, 9, precision_of(torch.float16, per_element=False), rounded=r), old)
    # required_c is the C at which the bound is met exactly
    err = sharp.clone()
    assert required_c(ref, mag, err, 9, p, rounded=r) == pytest.approx(C_CALIBRATED)


@pytest.mark.parametrize(
    ("device_type", "ops", "expected"),
    [
        ("cpu", ("conv",), True),
        ("cpu", ("conv", "matmul"), True),
        ("cuda", ("matmul",), True),
        ("cuda", ("conv",), False),  # cuDNN may pick Winograd / FFT
        ("cuda", ("conv", "matmul"), False),
        ("mps", ("matmul",), False),  # unmeasured
    ],
)
def test_per_element_rounding_where_the_kernels_are_known(device_type, ops, expected):
    assert per_element_rounding(device_type, ops) is expected


def test_per_element_rounding_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"^device_type must be one of \('cpu', 'cuda', 'mps'\), got 'tpu'$"):
        per_element_rounding("tpu", ("conv",))
    with pytest.raises(ValueError, match=r"^ops must be among \('conv', 'matmul'\), got \['gemm'\]$"):
        per_element_rounding("cpu", ("gemm",))


def test_product_before_bias_is_the_product_and_nothing_without_a_bias():
    g = ConvGeometry(2, 3, 4, (5, 5), kernel=3)
    x, p = _float64(Case(g, seed=1))
    assert torch.allclose(CONV_PRODUCT(x, p, g), (conv(x, p, g) - p.bias.view(1, -1, 1, 1)).abs(), rtol=1e-12)
    no_bias = ConvGeometry(2, 3, 4, (5, 5), kernel=3, bias=False)
    x, p = _float64(Case(no_bias, seed=1))
    assert CONV_PRODUCT(x, p, no_bias) == 0.0


def _worst_row_error(weight: torch.Tensor, rounded_part: torch.Tensor) -> torch.Tensor:
    """The error a rounding of ``rounded_part`` (each entry moved by u times itself, signs chosen
    against the row) causes in ``weight @ rounded_part``: ``u |weight| |rounded_part|``."""
    return (weight.abs() * (U * rounded_part.abs()).unsqueeze(0)).sum(-1)


def test_stored_hidden_layer_covers_the_worst_rounding_of_the_hidden_layer():
    g = ConvGeometry(2, 3, 4, (4, 4), kernel=4)
    x, p = _float64(Case(g, seed=2, head_features=5))
    hidden = conv(x, p, g).flatten(1)  # [N, O]
    r = HIDDEN_ROUNDED(x, p, g)
    for n in range(g.batch):
        worst = _worst_row_error(p.head_weight, hidden[n])  # one worst-case rounding of h
        assert (U * r[n] >= worst).all()
    # and it is far below the blunt charge on random signs: the head's |W2| |h| against M
    mag = F.linear(conv(x.abs(), Params(p.weight.abs(), p.bias.abs()), g).flatten(1), p.head_weight.abs())
    mag = mag + p.head_bias.abs()
    assert (r <= 3 * mag).all()


def test_parameters_rounded_once_covers_the_fused_weight_and_bias():
    g = ConvGeometry(2, 3, 4, (4, 4), kernel=3)
    x, p = _float64(Case(g, seed=3, head_features=5))
    weight, bias = fused_parameters(p, g)
    r = FUSED_ROUNDED(x, p, g)
    flat = x.flatten(1)
    for n in range(g.batch):
        # every fused weight and bias entry moved by u times itself, against the output's sign
        worst = (weight.abs() * U * flat[n].abs()).sum(1) + U * bias.abs()
        assert (U * r[n] >= worst).all()


def test_dense_linear_charges_taps_a_padding_mode_adds_up():
    reflect = ConvGeometry(1, 2, 2, (4, 4), kernel=3, padding=2, padding_mode="reflect")
    x, p = _float64(Case(reflect, seed=4))
    extra = dense_rounded(x, p, reflect) - CONV_PRODUCT(x, p, reflect)
    assert (extra >= -1e-12).all() and (extra > 1e-3).any()
    zeros = ConvGeometry(1, 2, 2, (4, 4), kernel=3, padding=2)
    x, p = _float64(Case(zeros, seed=4))
    assert torch.allclose(dense_rounded(x, p, zeros), CONV_PRODUCT(x, p, zeros), rtol=1e-12)


def test_every_linear_map_formulation_of_a_relation_states_its_roundings():
    # a formulation without `rounded` silently gets the blunt charge: every relation of the suite
    # states it (a new relation must too: docs/architecture.md, "Adding a relation")
    missing = [
        f"{r.name}/{name}"
        for r in relations()
        # the error model's relations (parameter inits compare bit for bit, shape contracts raise)
        if r.kind.name in ("linear map", "loss head")
        for name, spec in r.formulations.items()
        if spec.rounded is None
    ]
    assert not missing, missing
    assert get("full_kernel").formulations["flatten_linear"].rounded is not None
