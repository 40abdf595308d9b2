"""Cross-device: the same case on the CPU and on an accelerator agrees, formulation by
formulation, within the sum of both devices' error bounds (same seed, same numbers)."""

from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linconv.measure.cross_device import cross_device_disagreements
from linconv.plugins.session import SESSION
from linconv.relations import relations
from linconv.search.placement import on_device


@pytest.mark.parametrize("relation", [r.name for r in relations() if r.cross_device])
@given(data=st.data())
def test_cpu_and_accelerator_agree(relation, device, data):
    if device.startswith("cpu"):
        pytest.skip("cross-device relation: the CPU is the baseline, it needs a second device")
    record = SESSION.relation(relation)
    case = on_device(data.draw(record.strategy(), label="case"), device, relation)
    problems = cross_device_disagreements(partial(record.run, keep_outputs=True), case)
    assert not problems, "\n".join(problems)
