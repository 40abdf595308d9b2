"""Which replicate-padded convs hit the known bug inductor-replication-pad-backward-strides? Each
case is compiled (torch.compile, inductor defaults, CPU) after a reset, run forward, then
``.sum().backward()``; printed as ``BUG`` (the stride check of replication_pad{1,2,3}d_backward
failed), ``ok``, or any other error. Then the padding's backward kernel against its meta function
on channels_last inputs, eagerly (no compile).

    python benchmarks/replication_pad_grid.py

from the repository root (takes 3-5 minutes on 2 cores; the first compile is the slow one).
Data and reading: docs/compile.md, "Found by the compiled lanes".
"""

from __future__ import annotations

import time

import torch
import torch._inductor.config as inductor_config
import torch.nn.functional as F
from torch import nn

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_MODULE = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def outcome(fn, x: torch.Tensor, layout_optimization: bool = True) -> str:
    torch._dynamo.reset()
    before = inductor_config.layout_optimization
    inductor_config.layout_optimization = layout_optimization
    try:
        torch.compile(fn)(x).sum().backward()
        return "ok"
    except AssertionError as error:
        if "replication_pad" in str(error):
            return "BUG"
        return "other AssertionError: " + str(error).splitlines()[0][:80]
    except Exception as error:  # printed, not taken for the bug
        return f"{type(error).__name__}: " + str(error).splitlines()[0][:80]
    finally:
        inductor_config.layout_optimization = before


def functional(rank, n, c, o, size, k, stride, dil, pad):
    weight = torch.randn(o, c, *k, requires_grad=True)

    def padded_conv(x):
        return CONV[rank](F.pad(x, pad, mode="replicate"), weight, stride=stride, dilation=dil)

    return padded_conv, torch.randn(n, c, *size, requires_grad=True)


def module(mode="replicate", c=3, o=8, rank=2, n=2, s=8, bias=True, grad_x=True, channels_last=False):
    conv = CONV_MODULE[rank](c, o, 3, padding=1, padding_mode=mode, bias=bias)
    x = torch.randn(n, c, *([s] * rank))
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    return conv, x.requires_grad_(grad_x)


def cases():
    # the case thorough seed 2 found (composition, compiled-conv1x1-mm), then one change at a time
    base = dict(rank=2, n=1, c=6, o=5, size=(4, 2), k=(5, 2), stride=2, dil=(1, 2), pad=(1, 1, 3, 3))
    yield "found case", functional(**base)
    for key, values in (
        ("n", (2, 4)),
        ("c", (1, 3, 16, 64)),
        ("o", (1, 16, 64)),
        ("size", ((8, 8), (16, 16))),
        ("k", ((1, 1),)),
        ("stride", (1,)),
        ("dil", (1,)),
        ("pad", ((1, 1, 1, 1),)),
    ):
        for value in values:
            yield f"found case, {key}={value}", functional(**{**base, key: value})
    yield "Conv1d", functional(1, 1, 6, 5, (4,), (5,), 2, 1, (3, 3))
    yield "Conv3d", functional(3, 1, 6, 5, (4, 2, 2), (5, 2, 2), 2, 1, (1, 1, 1, 1, 3, 3))
    yield "nn.Conv2d(3, 8, 3, replicate)", module()
    yield "  no bias", module(bias=False)
    yield "  weights' gradient only", module(grad_x=False)
    yield "  channels_last input", module(channels_last=True)
    yield "  one input channel", module(c=1)
    yield "  one output channel", module(o=1)
    yield "  64 -> 64 channels, 32x32", module(c=64, o=64, n=1, s=32)
    yield "  reflect", module("reflect")
    yield "  circular", module("circular")
    yield "  zeros", module("zeros")
    yield "nn.Conv1d(3, 8, 3, replicate)", module(rank=1)
    yield "nn.Conv3d(3, 8, 3, replicate)", module(rank=3)
    middle = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, padding_mode="replicate")
    )
    yield "Conv2d-ReLU-Conv2d(replicate), input without gradient", (middle, torch.randn(2, 3, 16, 16))
    cl = torch.randn(2, 3, 8, 8).to(memory_format=torch.channels_last).requires_grad_()
    yield "F.pad replicate alone, channels_last input", (lambda x: F.pad(x, (1, 1, 1, 1), mode="replicate") * 2, cl)
    yield (
        "F.pad replicate alone, contiguous input",
        (
            lambda x: F.pad(x, (1, 1, 1, 1), mode="replicate") * 2,
            torch.randn(2, 3, 8, 8, requires_grad=True),
        ),
    )


def kernel_vs_meta() -> None:
    formats = {1: torch.contiguous_format, 2: torch.channels_last, 3: torch.channels_last_3d}
    for rank in (1, 2, 3):
        grad = torch.randn(2, 3, *([10] * rank)).to(memory_format=formats[rank])
        x = torch.randn(2, 3, *([8] * rank)).to(memory_format=formats[rank])
        op = getattr(torch.ops.aten, f"replication_pad{rank}d_backward")
        real = op(grad, x, [1, 1] * rank).stride()
        meta = op(grad.to("meta"), x.to("meta"), [1, 1] * rank).stride()
        verdict = "agree" if real == meta else "DIFFER"
        print(f"replication_pad{rank}d_backward: kernel strides {real}, meta {meta}, {verdict}")


def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}")
    for name, (fn, x) in cases():
        start = time.perf_counter()
        print(f"{name:55s} {outcome(fn, x):10s} ({time.perf_counter() - start:.1f} s)", flush=True)
    start = time.perf_counter()
    print(
        f"{'  layout_optimization = False':55s} {outcome(*module(), layout_optimization=False):10s} "
        f"({time.perf_counter() - start:.1f} s)"
    )
    kernel_vs_meta()


if __name__ == "__main__":
    main()
