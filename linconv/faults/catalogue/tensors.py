"""Tensor helpers the fault wrappers share: how a kernel that ignores strides reads memory, and
the layout-preserving copies the benign perturbations need."""

from __future__ import annotations

import torch

from linconv.core.cases import Params

__all__ = [
    "CHANNELS_LAST",
    "all_integers",
    "cast_params",
    "is_channels_last_only",
    "issue",
    "read_as_contiguous",
    "same_layout",
]

CHANNELS_LAST = torch.channels_last


def issue(number: int) -> str:
    return f"https://github.com/pytorch/pytorch/issues/{number}"


def is_channels_last_only(t: torch.Tensor) -> bool:
    """Channels innermost in memory and not contiguous: NHWC (4-D), NDHWC (5-D, channels_last_3d)
    or a sequence stored [N, L, C] (3-D)."""
    if t.dim() not in (3, 4, 5) or t.is_contiguous():
        return False
    if t.dim() == 3:
        return t.transpose(1, 2).is_contiguous()
    return t.is_contiguous(memory_format=CHANNELS_LAST if t.dim() == 4 else torch.channels_last_3d)


def _contiguous_strides(shape: torch.Size) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def read_as_contiguous(t: torch.Tensor) -> torch.Tensor:
    """The same storage read with the strides of a contiguous tensor: what a kernel that ignores
    the strides it is handed computes on."""
    return t.as_strided(t.shape, _contiguous_strides(t.shape), t.storage_offset())


def cast_params(p: Params, dtype: torch.dtype) -> Params:
    return Params(*(None if t is None else t.to(dtype) for t in (p.weight, p.bias, p.head_weight, p.head_bias)))


def same_layout(like: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``values`` in ``like``'s strides (differentiably): a reordering must not change the layout too.
    (flip + flatten of a channels_last batch-1 tensor leaves a batch stride below C*H*W, which
    trips a torch 2.13 CPU bug in the grouped conv weight gradient: docs/robustness.md.)"""
    return torch.empty_like(like).copy_(values)


def all_integers(*tensors: torch.Tensor | None) -> bool:
    return all(t is None or bool((t == t.round()).all()) for t in tensors)
