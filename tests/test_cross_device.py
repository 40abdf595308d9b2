"""The cross-device comparison itself, exercised on the CPU (no accelerator needed)."""

from linconv import relations
from linconv.cases import Case
from linconv.cross_device import cross_device_disagreements
from linconv.formulations import conv2d
from linconv.geometry import ConvGeometry

CASE = Case(ConvGeometry(2, 6, 4, 7, 5, kernel=(3, 3), padding=(1, 1)), seed=3)


def test_same_device_agrees_with_itself():
    assert cross_device_disagreements("general_conv", CASE) == []


def test_a_disagreement_is_described(monkeypatch):
    real = relations.RELATIONS["general_conv"]

    def off_by_a_lot(x, p, g):
        return conv2d(x, p, g) + 0.5

    calls = {"n": 0}

    def run_relation_twice(relation, case, keep_outputs):  # the second run plays the other device
        calls["n"] += 1
        rel = real if calls["n"] == 1 else real.with_formulation("unfold_matmul", off_by_a_lot)
        from linconv.check import run_relation

        return run_relation(rel, case, keep_outputs=keep_outputs)

    monkeypatch.setattr("linconv.cross_device.run_relation", run_relation_twice)
    problems = cross_device_disagreements("general_conv", CASE)
    assert len(problems) == 1
    assert problems[0].startswith("general_conv/unfold_matmul: cpu ")
    assert "differ by more than both bounds" in problems[0]
