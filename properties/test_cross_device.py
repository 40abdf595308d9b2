"""Cross-device: the same case on the CPU and on an accelerator agrees, formulation by
formulation, within the sum of both devices' error bounds (same seed, same numbers)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linconv.cross_device import cross_device_disagreements
from properties.support import on_device
from strategies import composition_cases, full_kernel_cases, general_cases, pointwise_cases

STRATEGIES = {
    "pointwise": pointwise_cases(),
    "full_kernel": full_kernel_cases(),
    "general_conv": general_cases(),
    "composition": composition_cases(),
}


@pytest.mark.parametrize("relation", list(STRATEGIES))
@given(data=st.data())
def test_cpu_and_accelerator_agree(relation, device, data):
    if device.startswith("cpu"):
        pytest.skip("cross-device relation: the CPU is the baseline, it needs a second device")
    case = on_device(data.draw(STRATEGIES[relation], label="case"), device)
    problems = cross_device_disagreements(relation, case)
    assert not problems, "\n".join(problems)
