"""Dtypes and memory layouts, simplest first (float32, contiguous, dense view)."""

from __future__ import annotations

from hypothesis import strategies as st

from linconv.core import config
from linconv.core.cases import INPUT_VIEWS, MEMORY_FORMATS, PARAM_LAYOUTS

__all__ = ["dtypes", "input_views", "memory_formats", "param_layouts"]


def dtypes(*, allowed: tuple[str, ...] | None = None) -> st.SearchStrategy[str]:
    """Dtype names from ``allowed``, ``None`` meaning the run's selection (``--dtypes`` /
    ``LINCONV_DTYPES``), read when the example is drawn; inside :func:`config.drawing_dtype` (a
    property's test of one dtype) that dtype, drawn without a choice (so its examples replay and
    shrink within that test)."""
    return _dtypes(allowed)


@st.composite
def _dtypes(draw, allowed: tuple[str, ...] | None) -> str:
    choices = allowed if allowed is not None else config.selected_dtypes()
    drawn = config.drawn_dtype()
    if drawn is None:
        return draw(st.sampled_from(choices), label="dtype")
    if drawn not in choices:
        raise ValueError(f"this strategy draws dtypes {','.join(choices)}, not {drawn!r} (the relation's dtypes)")
    return drawn


def memory_formats() -> st.SearchStrategy[str]:
    return st.sampled_from(MEMORY_FORMATS)


def input_views() -> st.SearchStrategy[str]:
    """'dense', 'strided' (a non-contiguous view: every other column of a wider tensor) or
    'size1_strides' (non-canonical strides on size-1 dimensions: docs/robustness.md)."""
    return st.sampled_from(INPUT_VIEWS)


def param_layouts() -> st.SearchStrategy[str]:
    """How weights, biases and the upstream gradient are stored: 'dense' (the memory format),
    'sliced' (a view into a larger parameter), 'transposed' (a tied ``weight.t()``), 'permuted'
    (an HWIO checkpoint permuted back) or 'size1_strides' (linconv.core.cases.Case)."""
    return st.sampled_from(PARAM_LAYOUTS)
