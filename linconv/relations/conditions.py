"""Conditions a case must meet for a relation to apply (``Relation.applies_to``), each with the
sentence that says why a case is outside."""

from __future__ import annotations

__all__ = [
    "CONV",
    "FULL_KERNEL",
    "HEAD",
    "NO_HEAD",
    "PATCH",
    "POINTWISE",
    "RANK_1",
    "RANK_2",
    "RANK_3",
    "TRANSPOSED",
    "UNSTRIDED",
    "rank",
]


def rank(n: int) -> tuple:
    """A (not transposed) ``n``-D convolution: Conv1d, Conv2d or Conv3d."""
    size = {1: "one int", 2: "two ints", 3: "three ints"}[n]
    return (
        lambda c: c.geometry.rank == n and not c.geometry.transposed,
        f"it needs a {n}-D conv (size of {size}, not transposed)",
    )


RANK_1, RANK_2, RANK_3 = rank(1), rank(2), rank(3)
TRANSPOSED = (lambda c: c.geometry.transposed, "it needs a transposed conv (transposed=true)")
CONV = (lambda c: not c.geometry.transposed, "it needs a conv, not a transposed one (transposed=false)")
POINTWISE = (lambda c: c.geometry.is_pointwise(), "it needs a 1x1 kernel without padding")
UNSTRIDED = (lambda c: set(c.geometry.stride) == {1}, "it needs stride 1")
FULL_KERNEL = (
    lambda c: c.geometry.is_full_kernel(),
    "it needs a kernel that covers the input (kernel == size, no padding, no dilation)",
)
PATCH = (
    lambda c: c.geometry.is_patch(),
    "it needs non-overlapping patches (stride == kernel, no padding, output padding or dilation)",
)
HEAD = (lambda c: c.head_features >= 1, "it needs head_features >= 1 (the Linear after the conv)")
NO_HEAD = (lambda c: c.head_features == 0, "it has no Linear after the conv: head_features must be 0")
