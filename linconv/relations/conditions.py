"""Conditions a case must meet for a relation to apply (``Relation.applies_to``), each with the
sentence that says why a case is outside."""

from __future__ import annotations

__all__ = ["FULL_KERNEL", "HEAD", "NO_HEAD", "POINTWISE", "RANK_2", "UNSTRIDED"]

RANK_2 = (lambda c: c.geometry.rank == 2, "it needs a 2-D conv (size of two ints)")
POINTWISE = (lambda c: c.geometry.is_pointwise(), "it needs a 1x1 kernel without padding")
UNSTRIDED = (lambda c: set(c.geometry.stride) == {1}, "it needs stride 1")
FULL_KERNEL = (
    lambda c: c.geometry.is_full_kernel(),
    "it needs a kernel that covers the input (kernel == size, no padding, no dilation)",
)
HEAD = (lambda c: c.head_features >= 1, "it needs head_features >= 1 (the Linear after the conv)")
NO_HEAD = (lambda c: c.head_features == 0, "it has no Linear after the conv: head_features must be 0")
