"""Full kernel: a Conv2d whose kernel covers the whole input equals Linear(C*H*W, O) on
x.flatten(1); output [N, O, 1, 1] vs [N, O], batch 1 included — forward and backward."""

from hypothesis import example, given

from linconv.cases import Case
from linconv.geometry import ConvGeometry
from properties.support import verify
from strategies import full_kernel_cases

# The classic question: [1, 512, 4, 4] -> 5 classes with batch 1, where squeeze() drops the batch axis.
BATCH_ONE_HEAD = Case(ConvGeometry(1, 512, 5, 4, 4, kernel=(4, 4)), seed=1)


@given(case=full_kernel_cases())
@example(case=BATCH_ONE_HEAD)
def test_full_kernel_conv_equals_flatten_linear(case, device):
    verify("full_kernel", case, device)
