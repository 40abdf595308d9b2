"""The numbers of docs/answers.md that come from linconv.testing and the model check (the rest come
from the properties' run report and `python -m linconv model`; docs/answers.md says which).

    python benchmarks/answers.py

from the repository root, with linconv importable (installed, as tox does, or PYTHONPATH=.).
Each line names the question, what was run, and the numbers.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.benchmark import Timer

from linconv.converters import conv1x1_to_linear, full_kernel_conv_to_linear, fuse_linear_after_conv
from linconv.testing import assert_same_map, assert_within_bound, magnitude, reduction_length


def same_map(a: nn.Module, b: nn.Module, x: torch.Tensor) -> str:
    try:
        verdicts = assert_same_map(a, b, x)
    except AssertionError as exc:
        return "FAILS: " + str(exc).splitlines()[1].strip()
    return "holds: " + "; ".join(f"{v.what}: error/bound {v.ratio:.3g}" for v in verdicts)


class Squeezed(nn.Sequential):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).squeeze()


def main() -> int:
    torch.manual_seed(0)
    # The view/permute check (pytorch/pytorch#156154): a 1x1 conv and the same weights as a
    # Linear over the channel axis.
    conv = nn.Conv2d(64, 32, 1)
    linear = conv1x1_to_linear(conv)
    x = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        y_conv, y_linear = conv(x), linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    diff = float((y_conv - y_linear).abs().max())
    m, k = magnitude(conv, x), reduction_length(conv, x)
    v = assert_within_bound(y_linear, y_conv, magnitude=m, reduction_length=k)
    exact = conv.double()(x.double()).detach()
    conv.float()
    v_conv = assert_within_bound(y_conv, exact, magnitude=m, reduction_length=k)
    v_linear = assert_within_bound(y_linear, exact, magnitude=m, reduction_length=k)
    print(
        f"view/permute: Conv2d(64, 32, 1) vs Linear over channels on [2, 64, 8, 8]: max |difference| {diff:.3g}; "
        f"allowance (two float32 results) {v.bound:.3g} at the worst element, error/bound {v.ratio:.3g}; "
        f"against float64: conv error/bound {v_conv.ratio:.3g}, linear {v_linear.ratio:.3g} (K = {k})"
    )

    # squeeze() at batch 1 and 2: a kernel-covering head and its Linear.
    head = nn.Conv2d(512, 10, 7)
    as_linear = nn.Sequential(nn.Flatten(), full_kernel_conv_to_linear(head))
    for n in (1, 2):
        x = torch.randn(n, 512, 7, 7)
        print(f"squeeze at batch {n}: conv head .squeeze() vs its Linear: {same_map(Squeezed(head), as_linear, x)}")
        print(
            f"flatten at batch {n}: conv head .flatten(1) vs its Linear: "
            f"{same_map(nn.Sequential(head, nn.Flatten()), as_linear, x)}"
        )

    # conv + Linear: one Linear without an activation, not with one.
    conv, fc = nn.Conv2d(512, 256, 7), nn.Linear(256, 1000)
    fused = nn.Sequential(nn.Flatten(), fuse_linear_after_conv(conv, fc, (7, 7)))
    x = torch.randn(1, 512, 7, 7)
    pair, with_relu = nn.Sequential(conv, nn.Flatten(), fc), nn.Sequential(conv, nn.ReLU(), nn.Flatten(), fc)
    print(f"conv + Linear, nothing between, vs one fused Linear: {same_map(pair, fused, x)}")
    print(f"conv + ReLU + Linear vs the fused Linear: {same_map(with_relu, fused, x)}")

    # Is a kernel-covering conv head faster as a Linear? torch.utils.benchmark, one thread, batch 1.
    torch.set_num_threads(1)
    for c, o, k in ((512, 1000, 7), (2048, 10, 7)):
        head = nn.Conv2d(c, o, k)
        w, b = head.weight.detach().reshape(o, -1), head.bias.detach()
        x = torch.randn(1, c, k, k)
        with torch.no_grad():
            as_conv = Timer("head(x)", globals={"head": head, "x": x}).blocked_autorange(min_run_time=1).median
            as_linear = Timer("F.linear(x.flatten(1), w, b)", globals={"F": F, "x": x, "w": w, "b": b})
            as_linear = as_linear.blocked_autorange(min_run_time=1).median
        print(
            f"Conv2d({c}, {o}, {k}) on [1, {c}, {k}, {k}]: conv {as_conv * 1e3:.3g} ms, as a Linear "
            f"{as_linear * 1e3:.3g} ms ({as_conv / as_linear:.3g}x; torch {torch.__version__}, 1 thread)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
