"""Whole cases: a geometry plus dtype, values, layout and seed, as a frozen, printable Case."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from linconv.core import config
from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from strategies.dtypes import dtypes, input_views, memory_formats, param_layouts
from strategies.geometry import (
    conv_geometries,
    conv_transpose_geometries,
    full_kernel_geometries,
    linear_geometries,
    patch_geometries,
    pointwise_geometries,
    unpatchify_geometries,
)
from strategies.values import value_kinds

__all__ = [
    "cases",
    "classifier_head_cases",
    "composition_cases",
    "conv_transpose_cases",
    "full_kernel_cases",
    "invalid_cases",
    "linear_cases",
    "general_cases",
    "patch_embedding_cases",
    "pointwise_cases",
    "unpatchify_cases",
]

MAX_HEAD_FEATURES = 16
EMPTY_ONE_IN = 16
SEEDS = st.integers(0, 2**32 - 1)


@st.composite
def cases(
    draw,
    geometries: st.SearchStrategy[ConvGeometry],
    *,
    head_features: bool = False,
    values: st.SearchStrategy[str] | None = None,
    dtype_names: st.SearchStrategy[str] | None = None,
    empty_batch: bool = True,
) -> Case:
    geometry = draw(geometries, label="geometry")
    # about one example in EMPTY_ONE_IN has no batch (a detection head with no proposals); the
    # simplest draw (0) is a batch, so shrinking moves away from empty
    if empty_batch and draw(st.integers(0, EMPTY_ONE_IN - 1), label="empty_batch") == EMPTY_ONE_IN - 1:
        geometry = replace(geometry, batch=0)
    head = 0
    if head_features:
        # the head's weight [head, out_features] stays within the size budget too
        cap = max(1, min(MAX_HEAD_FEATURES, config.max_numel() // geometry.out_features))
        head = draw(st.integers(1, cap), label="head_features")
    return Case(
        geometry=geometry,
        dtype=draw(dtype_names if dtype_names is not None else dtypes(), label="dtype"),
        values=draw(values if values is not None else value_kinds(), label="values"),
        memory_format=draw(memory_formats(), label="memory_format"),
        input_view=draw(input_views(), label="input_view"),
        head_features=head,
        seed=draw(SEEDS, label="seed"),
        param_layout=draw(param_layouts(), label="param_layout"),
    )


def pointwise_cases(*, max_stride: int | None = None, rank: int = 2) -> st.SearchStrategy[Case]:
    """1x1 convs; ``max_stride=1`` for what a pointwise Linear module can replace by itself."""
    if max_stride is None:
        return cases(pointwise_geometries(rank=rank))
    return cases(pointwise_geometries(max_stride=max_stride, rank=rank))


def full_kernel_cases(*, rank: int = 2) -> st.SearchStrategy[Case]:
    return cases(full_kernel_geometries(rank=rank))


def general_cases(*, rank: int = 2) -> st.SearchStrategy[Case]:
    return cases(conv_geometries(rank=rank))


def composition_cases(
    *,
    values: st.SearchStrategy[str] | None = None,
    dtype_names: st.SearchStrategy[str] | None = None,
    rank: int = 2,
) -> st.SearchStrategy[Case]:
    """Linear after a 1x1, a full-kernel or a general conv. Fusing builds the conv's dense
    [out_features, in_features] matrix, so every branch budgets it (docs/robustness.md: without the
    cap one pointwise example needed a 326 M-entry matrix)."""
    geometries = st.one_of(
        pointwise_geometries(dense=True, rank=rank),
        full_kernel_geometries(dense=True, rank=rank),
        conv_geometries(rank=rank),
    )
    return cases(geometries, head_features=True, values=values, dtype_names=dtype_names)


def classifier_head_cases(*, dtype_names: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Case]:
    """Full-kernel heads: out_channels are the classes of the classifier."""
    # no empty batch: the mean cross-entropy of no example is 0/0 (NaN) in every formulation
    return cases(full_kernel_geometries(), dtype_names=dtype_names, empty_batch=False)


def conv_transpose_cases(*, rank: int | None = None) -> st.SearchStrategy[Case]:
    """Transposed convs of every rank (``None``) or of one."""
    return cases(conv_transpose_geometries(rank=rank))


def unpatchify_cases(*, rank: int | None = None) -> st.SearchStrategy[Case]:
    """Transposed convs with stride == kernel: the un-patchify of a decoder."""
    return cases(unpatchify_geometries(rank=rank))


def patch_embedding_cases(*, rank: int | None = None) -> st.SearchStrategy[Case]:
    """Patch embeddings (stride == kernel), inputs with and without a remainder."""
    return cases(patch_geometries(rank=rank))


def linear_cases(*, empty_features: bool = False) -> st.SearchStrategy[Case]:
    """A Linear over the last dimension of a ``[N, *size, C]`` input (``memory_format`` channels_last:
    that input is contiguous; contiguous: it is a permuted view); ``empty_features``: no in or no
    out features."""
    return cases(linear_geometries(empty_features=empty_features))


def invalid_cases(family: str, breaks: tuple[str, ...]) -> st.SearchStrategy[Case]:
    """A valid case of ``family`` ("linear": a Linear on any rank; "conv": any Conv2d) with one of
    ``breaks`` to break (``Case.invalid``; linconv.relations.shape_contract). Never an empty batch:
    an empty input has no element a wrong shape could misplace, and torch lets some through."""
    geometries = linear_geometries() if family == "linear" else conv_geometries()
    valid = cases(geometries, empty_batch=False)
    return st.builds(lambda case, broken: replace(case, invalid=broken), valid, st.sampled_from(breaks))
