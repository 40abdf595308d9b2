"""Composition: Linear . Conv2d (1x1, full-kernel or general) with no activation equals one
fused Linear, forward and backward; with a ReLU between them it does not (negative control)."""

import torch
from hypothesis import assume, given

from linconv.formulations import Params, conv_relu_linear, conv_then_linear
from properties.support import verify, verify_violated
from strategies import composition_cases, dtypes, value_kinds

# How far (relative to the largest output) the ReLU must move the map for the negative control
# to be meaningful: 1e-3 is >100x the float32 error bound at the largest K drawn.
RELU_EFFECT = 1e-3


@given(case=composition_cases())
def test_linear_after_conv_equals_fused_linear(case, device):
    verify("composition", case, device)


def _relu_effect(case) -> float:
    t = case.build()
    x = t.x.detach().double().cpu()
    p = Params(
        *(None if v is None else v.detach().double().cpu() for v in (t.weight, t.bias, t.head_weight, t.head_bias))
    )
    plain = conv_then_linear(x, p, case.geometry)
    gap = (conv_relu_linear(x, p, case.geometry) - plain).abs().max()
    return float(gap / plain.abs().max().clamp_min(torch.finfo(torch.float64).tiny))


# Normal values in float32/float64: about half the conv outputs are negative; the assume drops
# the rare example where the ReLU is (nearly) the identity, which is not a counterexample. The
# half-precision bounds (~1e-2 relative) are too wide for a control at this scale.
@given(
    case=composition_cases(values=value_kinds(allowed=("normal",)), dtype_names=dtypes(allowed=("float32", "float64")))
)
def test_fused_linear_differs_with_activation_between(case, device):
    assume(_relu_effect(case) > RELU_EFFECT)
    verify_violated("composition_with_activation", case, device)
