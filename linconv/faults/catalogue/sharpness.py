"""One dropped term per relation: the sharpness probes (a one-term error must be seen at the largest K)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from linconv.faults.record import fault


def _without_last_channel(x: torch.Tensor) -> torch.Tensor:
    return x.index_fill(1, torch.tensor([x.shape[1] - 1], device=x.device), 0)


@fault(
    name="drop_channel_classifier_head",
    relation="classifier_head",
    formulation="linear_head",
    bug_class="one_term",
    description="input channel C-1 dropped from the Linear classifier head",
)
@fault(
    name="drop_channel_composition",
    relation="composition",
    formulation="fused_linear",
    bug_class="one_term",
    description="input channel C-1 dropped from the fused Linear",
)
@fault(
    name="drop_channel_general_conv",
    relation="general_conv",
    formulation="unfold_matmul",
    bug_class="one_term",
    description="input channel C-1 dropped from unfold + matmul",
)
@fault(
    name="drop_channel_full_kernel",
    relation="full_kernel",
    formulation="flatten_linear",
    bug_class="one_term",
    description="input channel C-1 dropped from the flattened Linear (H*W terms per output)",
)
@fault(
    name="drop_channel_pointwise",
    relation="pointwise",
    formulation="linear_over_channels",
    bug_class="one_term",
    description="input channel C-1 dropped from the Linear over channels (one term per output)",
)
def drop_last_input_channel(fn_: Callable) -> Callable:
    """Input channel C-1 never reaches the sum: one term per output of a 1x1 conv, kh*kw terms
    for a larger kernel (a packing loop one channel short)."""

    def fn(x: torch.Tensor, *rest):
        return fn_(_without_last_channel(x), *rest)

    return fn


@fault(
    name="drop_term_full_kernel",
    relation="full_kernel",
    formulation="flatten_linear",
    bug_class="one_term",
    description="one input element dropped from the flattened Linear (exactly one term per output)",
)
def drop_one_input_term(fn_: Callable) -> Callable:
    """One input element per sample (last channel, last position in every spatial dimension)
    never reaches the sum: exactly one term of every full-kernel output."""

    def fn(x: torch.Tensor, *rest):
        mask = torch.ones_like(x)
        mask[(slice(None), -1, *[-1] * (x.dim() - 2))] = 0
        return fn_(x * mask, *rest)

    return fn
