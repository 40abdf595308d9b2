"""General conv: any Conv2d (stride, padding incl. 'same'/'valid' and every padding mode, dilation,
groups) equals unfold + matmul and equals a dense Linear on the flattened input — forward and backward."""

from hypothesis import given

from properties.support import verify
from strategies import general_cases


@given(case=general_cases())
def test_conv_equals_unfold_matmul_and_dense_linear(case, device):
    verify("general_conv", case, device)
