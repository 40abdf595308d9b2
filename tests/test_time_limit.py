"""The time limit of one compiled example (linconv.lanes.time_limit): an example past it fails at
once with its case, through dynamo's and inductor's wrapping of compile errors and without
Hypothesis replaying it; the timer of whoever set one before is given back."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.lanes.execution import execution_lane
from linconv.lanes.time_limit import (
    ExampleTimeLimitExceeded,
    current_limit,
    example_time_limit,
    set_example_time_limit,
)
from linconv.relations import execution as execution_module
from linconv.relations import get
from linconv.relations.execution import CompiledKind


def test_a_block_past_the_limit_raises_its_description_and_an_outer_timer_is_given_back():
    fired = []

    def outer_handler(*_):
        fired.append(True)

    previous = signal.signal(signal.SIGALRM, outer_handler)
    signal.setitimer(signal.ITIMER_REAL, 30, 7)
    try:
        started = time.monotonic()
        with pytest.raises(ExampleTimeLimitExceeded, match=r"^ran 0\.[23]\d* s$"):
            with example_time_limit(lambda elapsed: f"ran {elapsed:.2f} s", seconds=0.2):
                time.sleep(10)  # interrupted: the handler raises
        assert time.monotonic() - started < 2
        left, interval = signal.getitimer(signal.ITIMER_REAL)
        assert 28 < left <= 30 and interval == 7  # the outer timer runs on, less the time spent, interval kept
        assert signal.getsignal(signal.SIGALRM) is outer_handler and not fired
        with example_time_limit(lambda elapsed: "never", seconds=5):
            pass  # a block within its limit raises nothing
        assert signal.getsignal(signal.SIGALRM) is outer_handler
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _OuterTimeout(Exception):
    pass


def test_an_outer_timer_due_first_fires_itself():
    def outer_handler(*_):
        raise _OuterTimeout

    previous = signal.signal(signal.SIGALRM, outer_handler)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(_OuterTimeout):  # pytest-timeout's own failure, not this limit's
            with example_time_limit(lambda elapsed: "too long", seconds=5):
                time.sleep(10)
        assert signal.getsignal(signal.SIGALRM) is outer_handler
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_the_limit_comes_from_the_environment_unless_set(monkeypatch):
    from linconv.lanes import time_limit

    monkeypatch.setattr(time_limit, "_limit", [])
    monkeypatch.setenv(time_limit.ENV, "12.5")
    assert current_limit() == 12.5  # the CLIs (faults, calibrate) read it too
    monkeypatch.setattr(time_limit, "_limit", [])
    monkeypatch.setenv(time_limit.ENV, "soon")
    with pytest.raises(ValueError, match=r"LINCONV_COMPILE_TIME_LIMIT must be seconds >= 0 .* got 'soon'"):
        current_limit()
    monkeypatch.setattr(time_limit, "_limit", [])
    monkeypatch.delenv(time_limit.ENV)
    assert current_limit() == time_limit.EXAMPLE_TIME_LIMIT


def test_no_limit_is_none_and_a_bad_limit_is_refused():
    before = current_limit()
    try:
        set_example_time_limit(0)
        with example_time_limit(lambda elapsed: "never"):
            time.sleep(0.05)
        for bad in (-1, float("nan"), float("inf")):
            with pytest.raises(ValueError, match="seconds >= 0"):
                set_example_time_limit(bad)
    finally:
        set_example_time_limit(before)


def test_the_limit_passes_through_a_compile_unwrapped():
    # dynamo wraps a backend's Exception in BackendCompilerFailed (inductor's own in InductorError);
    # a compile that does not end must surface as the limit, not as a compile error
    def backend_that_does_not_end(graph, example_inputs):
        time.sleep(60)
        return graph

    compiled = torch.compile(lambda x: x * 2 + 1, backend=backend_that_does_not_end, fullgraph=True)
    try:
        with pytest.raises(ExampleTimeLimitExceeded):
            with example_time_limit(lambda elapsed: "too long", seconds=0.5):
                compiled(torch.ones(3))
    finally:
        torch._dynamo.reset()
    assert torch.compile(lambda x: x * 2 + 1, backend="eager")(torch.ones(3)).tolist() == [3.0] * 3  # usable after


@dataclass(frozen=True)
class _NeverEnds:
    """A kind whose run does not end (as inductor's sympy simplification on torch 2.13.0's case)."""

    name: str = "never ends"
    timed: bool = False
    compile_unavailable: str = ""
    graph_breaks: bool = False
    forward_only: bool = True
    calls: list = None  # type: ignore[assignment]

    def run(self, relation, case, *, observer, keep_outputs):
        self.calls.append(case)
        time.sleep(60)


def test_a_compiled_example_past_the_limit_fails_the_test_at_once_with_its_case(monkeypatch):
    relation = get("pointwise")
    calls: list[Case] = []
    kind = CompiledKind(_NeverEnds(calls=calls), "compiled", relation, "compiled (the configuration)")
    slow = replace(relation, kind=kind)
    case = Case(ConvGeometry(2, 3, 4, (5, 5)), dtype="float16")
    before = current_limit()

    @settings(max_examples=5, database=None, deadline=None)
    @given(st.just(case))
    def test(case: Case) -> None:
        slow.run(case)

    resets = []
    monkeypatch.setattr(execution_module, "reset_compiler", lambda **kw: resets.append(kw))
    set_example_time_limit(0.3)
    try:
        with execution_lane("compiled"), pytest.raises(ExampleTimeLimitExceeded) as raised:
            test()
    finally:
        set_example_time_limit(before)
    assert len(calls) == 1  # not replayed, not shrunk: a compile that does not end would not end again
    assert resets == [{"count": False}]  # stopped mid-compile: dynamo's state (symbolic sizes) is dropped
    message = str(raised.value)
    assert message.startswith("relation 'pointwise' in execution lane 'compiled': one example ran 0 s, past the "
                              "limit of 0.3 s per compiled example (--compile-time-limit")  # fmt: skip
    assert case.describe() in message and "Configuration: compiled (the configuration)" in message
    assert f"reproduce: {case.reproduction('pointwise', 'compiled')}" in message
