"""The size budget bounds every tensor an example builds, including the dense matrices that
fusion and the dense Linear materialise (docs/robustness.md: the pointwise branch of the
composition strategy once drew a 326 M-entry matrix)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from linconv.core.cases import Case
from linconv.core.config import max_numel
from strategies.cases import (
    classifier_head_cases,
    composition_cases,
    conv_transpose_cases,
    full_kernel_cases,
    general_cases,
    linear_cases,
    patch_embedding_cases,
    pointwise_cases,
    unpatchify_cases,
)

STRATEGIES = {
    "pointwise": (pointwise_cases(), False),
    "full_kernel": (full_kernel_cases(), False),
    "general_conv": (general_cases(), True),
    "composition": (composition_cases(), True),
    "classifier_head": (classifier_head_cases(), False),
    **{f"pointwise_{r}d": (pointwise_cases(rank=r), False) for r in (1, 3)},
    **{f"full_kernel_{r}d": (full_kernel_cases(rank=r), False) for r in (1, 3)},
    **{f"general_conv_{r}d": (general_cases(rank=r), True) for r in (1, 3)},
    **{f"composition_{r}d": (composition_cases(rank=r), True) for r in (1, 3)},
    "conv_transpose": (conv_transpose_cases(), True),
    "unpatchify": (unpatchify_cases(), False),
    "patch_embedding": (patch_embedding_cases(), False),
    "linear_last_dim": (linear_cases(), False),
    "linear_empty_features": (linear_cases(empty_features=True), False),
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_tensor_of_every_case_fits_the_budget(name: str) -> None:
    strategy, dense = STRATEGIES[name]
    budget = max_numel()

    @settings(max_examples=300, deadline=None, database=None)
    @given(case=strategy)
    def check(case: Case) -> None:
        over = {k: v for k, v in case.tensor_sizes(dense=dense).items() if v > budget}
        assert not over, f"{case.to_json()}: over the {budget}-element budget: {over}"

    check()
