"""Performance faults: an op made f times slower, its numbers unchanged.

``install({"conv": 2.0})`` wraps ``torch.nn.functional.conv1d/2d/3d`` (``"linear"``:
``F.linear``) so that every call takes ``f`` times as long as the op itself did: after the op
returns, the wrapper busy-waits ``(f - 1)`` times the op's own duration, and each node of the
autograd graph the op built does the same in backward. The values are the op's own, so every
check passes; only timings move. This is the instrument behind the gate's power table
(docs/gating.md): ``LINCONV_SLOWDOWN=conv=1.1`` (or ``pytest --inject-slowdown conv=1.1``) makes a
candidate whose convolutions are 10% slower.

Formulations look these functions up on ``torch.nn.functional`` at call time (linconv.relations
.common.conv, ``F.linear``), so the wrappers reach them; ops called from C++ are not slowed.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

__all__ = ["OPS", "install", "installed", "parse", "slowed"]

# The ops a slowdown can name, and the torch.nn.functional functions each wraps.
OPS: dict[str, tuple[str, ...]] = {"conv": ("conv1d", "conv2d", "conv3d"), "linear": ("linear",)}


def parse(text: str) -> dict[str, float]:
    """``"conv=2,linear=1.1"`` -> {"conv": 2.0, "linear": 1.1}; ValueError naming what is wrong."""
    spec: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        op, _, value = part.partition("=")
        if op not in OPS:
            raise ValueError(f"slowdown op must be one of {tuple(OPS)}, got {op!r} (in {text!r})")
        try:
            factor = float(value)
        except ValueError:
            factor = float("nan")
        if not factor >= 1.0 or factor == float("inf"):
            raise ValueError(f"slowdown factor of {op} must be a finite number >= 1, got {value!r} (in {text!r})")
        spec[op] = factor
    if not spec:
        raise ValueError(f"slowdown must name OP=FACTOR pairs like 'conv=1.1', got {text!r}")
    return spec


def _spin(seconds: float) -> None:
    """Busy-wait: the thread keeps its core, as the op's own work would."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _sync(tensors: object) -> None:
    items = tensors if isinstance(tensors, (tuple, list)) else (tensors,)
    if any(isinstance(t, torch.Tensor) and t.is_cuda for t in items):
        torch.cuda.synchronize()


def _slow_backward(output: torch.Tensor, inputs: tuple, factor: float) -> None:
    """Make every autograd node the op created ``factor`` times slower in backward."""
    stop = {t.grad_fn for t in inputs if isinstance(t, torch.Tensor) and t.grad_fn is not None}
    nodes, todo = [], [output.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in stop or node in nodes or type(node).__name__ == "AccumulateGrad":
            continue
        nodes.append(node)
        todo += [next_node for next_node, _ in node.next_functions]
    for node in nodes:
        started: list[float] = []
        node.register_prehook(lambda grad_outputs, started=started: started.append(time.perf_counter()))
        node.register_hook(lambda grad_inputs, grad_outputs, started=started: _spin(
            (factor - 1) * (time.perf_counter() - started.pop())))  # fmt: skip


def slowed(fn: Callable, factor: float) -> Callable:
    """``fn``, ``factor`` times slower forward and backward, with the same results."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _sync(args)
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        _sync(out)
        _spin((factor - 1) * (time.perf_counter() - start))
        if isinstance(out, torch.Tensor) and out.grad_fn is not None:
            _slow_backward(out, args, factor)
        return out

    wrapper.linconv_slowdown = factor  # type: ignore[attr-defined]
    return wrapper


def install(spec: dict[str, float]) -> Callable[[], None]:
    """Wrap the ops of ``spec`` process-wide; returns the function that restores them."""
    originals = {}
    for op, factor in spec.items():
        for name in OPS[op]:
            originals[name] = getattr(F, name)
            setattr(F, name, slowed(originals[name], factor))

    def restore() -> None:
        for name, fn in originals.items():
            setattr(F, name, fn)

    return restore


@contextmanager
def installed(spec: dict[str, float]) -> Iterator[None]:
    restore = install(spec)
    try:
        yield
    finally:
        restore()
