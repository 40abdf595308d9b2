"""Pointwise: Conv2d(C, O, 1) on NCHW input equals Linear(C, O) over the channel axis
(with stride s, on x[:, :, ::s, ::s]; with groups, a block-diagonal Linear) — forward and backward."""

from hypothesis import given

from properties.support import verify
from strategies import pointwise_cases


@given(case=pointwise_cases())
def test_conv1x1_equals_linear_over_channels(case, device):
    verify("pointwise", case, device)
