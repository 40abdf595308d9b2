"""Init: under the same seed, Conv2d(C, O, (kh, kw), groups=g) and Linear(C/g*kh*kw, O) get
bit-identical default parameters (weight and bias)."""

from hypothesis import given

from linconv.initialization import check_init
from linconv.session import SESSION
from properties.support import on_device
from strategies import general_cases


@given(case=general_cases())
def test_default_init_is_bit_identical(case, device):
    SESSION.record_result(check_init(on_device(case, device)))
