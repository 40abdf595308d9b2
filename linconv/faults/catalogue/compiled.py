"""Compiled lanes: a compiler that lowers or folds one pattern wrongly, and one that only reorders a
sum. Each wrapper misbehaves only while dynamo traces it (``torch.compiler.is_compiling()``), so
the eager lane cannot see it: each fault names the execution lane its search runs in, and a run
injects it with ``--inject-fault NAME --execution LANE``.

The classes are inductor's own: its CPU conv lowering once set a wrong layout for channels_last
convs (pytorch/torchdynamo#1394, an assertion there; a silent misread here), and freezing folds a
model's parameter arithmetic into constants at compile time (torch/_inductor/freezing.py), where a
wrong fold is invisible until the frozen model runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from linconv.converters import block_diagonal
from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.faults.catalogue.tensors import is_channels_last_only
from linconv.faults.record import fault
from linconv.relations.common import Formulation


def _compiling() -> bool:
    return torch.compiler.is_compiling()


@fault(
    relation="pointwise",
    formulation="conv2d",
    bug_class="lowering",
    description="compiled: a 1x1 conv on a channels_last input, lowered to a matmul, reads the NHWC memory as if "
    "it were NCHW",
    lane="compiled",
)
def compiled_1x1_conv_reads_nhwc_as_nchw(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if _compiling() and is_channels_last_only(x):
            n, c, h, w = x.shape
            x = x.as_strided((n, c, h, w), (c * h * w, h * w, w, 1))  # NHWC memory read with NCHW strides
        return conv(x, p, g)

    return fn


@fault(
    relation="pointwise",
    formulation="linear_over_channels",
    bug_class="lowering",
    description="compiled with freezing: constant folding of a grouped Linear's block-diagonal weight repeats the "
    "first group's block",
    lane="compiled-freezing",
)
def frozen_block_diagonal_repeats_first_group(linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if not (_compiling() and g.groups > 1):
            return linear(x, p, g)
        first = p.weight[: g.out_per_group].repeat(g.groups, 1, *[1] * (p.weight.dim() - 2))
        sh, sw = g.stride
        nhwc = x[:, :, ::sh, ::sw].permute(0, 2, 3, 1)
        return F.linear(nhwc, block_diagonal(first, g.groups), p.bias).permute(0, 3, 1, 2)

    return fn


@fault(
    relation="full_kernel",
    formulation="flatten_linear",
    bug_class="benign_order",
    description="compiled: the flattened Linear's sum split into 4 chunks (as inductor splits reductions), each "
    "accumulated in float32 (float64 for float64), added, then rounded once",
    harmful=False,
    lane="compiled",
)
def compiled_sum_split_in_chunks(linear: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        if not _compiling():
            return linear(x, p, g)
        wide = torch.float64 if x.dtype == torch.float64 else torch.float32
        xf, w = x.flatten(1).to(wide), block_diagonal(p.weight, g.groups).flatten(1).to(wide)
        # strided chunks (term k, k+4, ...): static slices, so dynamo traces no data-dependent shape
        total = sum(xf[:, k::4] @ w[:, k::4].T for k in range(4))
        if p.bias is not None:
            total = total + p.bias.to(wide)
        return total.to(x.dtype)

    return fn
