"""Value kinds: how a case's numbers are drawn (see linconv.core.cases.Case._values)."""

from __future__ import annotations

from hypothesis import strategies as st

from linconv.core.cases import VALUE_KINDS

__all__ = ["value_kinds"]


def value_kinds(*, allowed: tuple[str, ...] = VALUE_KINDS) -> st.SearchStrategy[str]:
    """normal (weights scaled like the default init), integer (the exact lane), positive
    (no cancellation), wide (magnitudes over 12 binades)."""
    return st.sampled_from(allowed)
