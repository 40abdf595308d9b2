"""The performance-fault injector behind the gate's power table: an op made f times slower, forward
and backward, with its results unchanged; and the option that installs it for a run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from linconv.faults import slowdown

ROOT = Path(__file__).resolve().parent.parent


class _Clock:
    """A clock that advances one second per reading: every op 'takes' exactly one second."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def spins(monkeypatch):
    waited: list[float] = []
    monkeypatch.setattr(slowdown.time, "perf_counter", _Clock())
    monkeypatch.setattr(slowdown, "_spin", waited.append)
    return waited


def test_parse_reads_op_factor_pairs_and_names_what_is_wrong():
    assert slowdown.parse("conv=2, linear=1.1") == {"conv": 2.0, "linear": 1.1}
    for text, message in (
        ("matmul=2", "slowdown op must be one of ('conv', 'linear'), got 'matmul'"),
        ("conv=0.5", "slowdown factor of conv must be a finite number >= 1, got '0.5'"),
        ("conv=nan", "slowdown factor of conv must be a finite number >= 1, got 'nan'"),
        ("conv", "slowdown factor of conv must be a finite number >= 1, got ''"),
        (" , ", "slowdown must name OP=FACTOR pairs like 'conv=1.1', got ' , '"),
    ):
        with pytest.raises(ValueError) as info:
            slowdown.parse(text)
        assert str(info.value).startswith(message)


def test_the_wrapped_op_waits_f_minus_one_times_its_own_duration_forward_and_backward(spins):
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    with slowdown.installed({"conv": 3.0}):
        y = F.conv2d(x, w)
        assert spins == [2.0]  # forward: the op took one second, the wrapper waits two more
        y.sum().backward()
    assert spins[1:] == [2.0]  # backward: the conv's one autograd node, also three times as long
    assert F.conv2d is not None and not hasattr(F.conv2d, "linconv_slowdown")  # restored


def test_results_are_the_ops_own():
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    head = torch.randn(2, 75)
    want, want_linear = F.conv2d(x, w), F.linear(x.flatten(1), head)
    (gx_want,) = torch.autograd.grad(want.sum(), x)
    with slowdown.installed({"conv": 1.5, "linear": 1.5}):
        got, got_linear = F.conv2d(x, w), F.linear(x.flatten(1), head)
        (gx,) = torch.autograd.grad(got.sum(), x)
    assert torch.equal(got, want) and torch.equal(gx, gx_want) and torch.equal(got_linear, want_linear)


def test_only_the_named_op_is_slowed(spins):
    with slowdown.installed({"linear": 2.0}):
        F.conv2d(torch.randn(1, 1, 3, 3), torch.randn(1, 1, 1, 1))
        assert spins == []
        F.linear(torch.randn(2, 3), torch.randn(4, 3))
        assert spins == [1.0]


def test_the_pytest_option_installs_it_and_the_header_says_so():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--inject-slowdown", "conv=1.1", "properties/test_init.py"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--inject-slowdown", "tpu=2", "properties/test_init.py"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 4
    assert (
        "--inject-slowdown / LINCONV_SLOWDOWN: slowdown op must be one of ('conv', 'linear'), got 'tpu'" in bad.stderr
    )
