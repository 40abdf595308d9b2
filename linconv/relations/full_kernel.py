"""Full kernel: a ``Conv2d`` whose kernel covers the whole input equals ``Linear(C*H*W, O)`` on
``x.flatten(1)``; output ``[N, O, 1, 1]`` vs ``[N, O]``, batch 1 included (never ``squeeze()``)."""

from __future__ import annotations

from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.relations.common import (
    CONV_FLAT_PRODUCT,
    LARGEST_FULL_KERNEL,
    conv_flat,
    conv_reductions,
    flatten_linear,
    half_precision_examples,
    requires,
)
from linconv.relations.conditions import FULL_KERNEL, NO_HEAD, RANK_2
from linconv.relations.record import FormulationSpec, Relation
from linconv.relations.registry import register
from strategies import full_kernel_cases

__all__ = ["BATCH_ONE_HEAD", "FULL_KERNEL"]

# The classic question: [1, 512, 4, 4] -> 5 classes with batch 1, where squeeze() drops the batch axis.
BATCH_ONE_HEAD = Case(ConvGeometry(1, 512, 5, (4, 4), kernel=(4, 4)), seed=1)

FULL_KERNEL = register(
    Relation(
        name="full_kernel",
        statement="a Conv2d whose kernel covers the input equals Linear(C*H*W, O) on x.flatten(1)",
        strategy=full_kernel_cases,
        formulations={
            "conv2d": FormulationSpec(conv_flat, ("conv",), partial_sums="slow_conv", rounded=CONV_FLAT_PRODUCT),
            "flatten_linear": FormulationSpec(flatten_linear, ("matmul",), rounded=CONV_FLAT_PRODUCT),
        },
        reference=conv_flat,
        grads=("x", "weight", "bias"),
        reductions=conv_reductions,
        calibrated=True,
        cross_device=True,
        property_module="properties/test_full_kernel.py",
        examples=(BATCH_ONE_HEAD, *half_precision_examples(LARGEST_FULL_KERNEL)),
        applies_to=requires(RANK_2, FULL_KERNEL, NO_HEAD),
    )
)
