"""The cross-device comparison itself, exercised on the CPU (no accelerator needed)."""

from functools import partial

from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.measure.cross_device import cross_device_disagreements
from linconv.relations.common import conv
from linconv.relations.general_conv import GENERAL_CONV

CASE = Case(ConvGeometry(2, 6, 4, (7, 5), kernel=(3, 3), padding=(1, 1)), seed=3)


def test_same_device_agrees_with_itself():
    assert cross_device_disagreements(partial(GENERAL_CONV.run, keep_outputs=True), CASE) == []


def test_a_disagreement_is_described():
    def off_by_a_lot(x, p, g):
        return conv(x, p, g) + 0.5

    other = GENERAL_CONV.with_formulation("unfold_matmul", off_by_a_lot)
    runs = iter([GENERAL_CONV, other])  # the second run plays the other device

    def run(case):
        return next(runs).run(case, keep_outputs=True)

    problems = cross_device_disagreements(run, CASE)
    assert len(problems) == 1
    assert problems[0].startswith("general_conv/unfold_matmul: cpu ")
    assert "differ by more than both bounds" in problems[0]
