"""Bias: lost on a separate path, or added twice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.faults.catalogue.tensors import is_channels_last_only, issue
from linconv.faults.record import fault
from linconv.relations.common import Formulation


@fault(
    name="head_bias_lost_at_batch_one",
    relation="classifier_head",
    formulation="linear_head",
    bug_class="bias",
    description="the Linear classifier head drops its bias at batch 1",
)
@fault(
    relation="full_kernel",
    formulation="flatten_linear",
    bug_class="bias",
    description="Linear drops its bias when the batch has one row (a separate batch-1 path)",
    issue=issue(136338),
)
def bias_lost_at_batch_one(fn_: Callable) -> Callable:
    def fn(x: torch.Tensor, p: Params, *rest):
        if x.shape[0] == 1 and p.bias is not None:
            p = replace(p, bias=None)
        return fn_(x, p, *rest)

    return fn


@fault(
    relation="general_conv",
    formulation="unfold_matmul",
    bug_class="bias",
    description="on a channels_last input the bias is added by the kernel and again by the epilogue",
)
def bias_added_twice_channels_last(conv: Formulation) -> Formulation:
    def fn(x: torch.Tensor, p: Params, g: ConvGeometry) -> torch.Tensor:
        y = conv(x, p, g)
        if p.bias is not None and is_channels_last_only(x):
            y = y + p.bias.view(1, -1, 1, 1)
        return y

    return fn
