"""Shape contracts: every formulation of a relation refuses the same invalid input, with a message
that names the mismatch. A formulation that returns a tensor instead (it truncated, padded or
broadcast its way through) violates the contract, as does one whose error says nothing about
shapes.

A case here is a valid case plus what to break (``Case.invalid``): the input gets one channel (in
feature) more or fewer than the weight takes (``more_channels``, ``fewer_channels``), the
formulations are told a number of groups that does not divide the channels (``groups``), or the
kernel is one longer than the padded input in the first spatial dimension (``kernel``). The
geometry handed over is then one ConvGeometry cannot hold (it validates), so it is built without
validation here, and only here.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import torch

from linconv.core.cases import Case, CaseTensors, Params
from linconv.core.geometry import ConvGeometry
from linconv.measure import Comparison, Observer, RelationResult, flags_in_force
from linconv.relations.common import INVALID, requires
from linconv.relations.conditions import CONV, NO_HEAD, POINTWISE, RANK_2, UNSTRIDED
from linconv.relations.general_conv import GENERAL_CONV
from linconv.relations.linear_last_dim import LINEAR_LAST_DIM
from linconv.relations.record import Relation
from linconv.relations.registry import register
from strategies import invalid_cases

__all__ = ["SHAPE_CONTRACT", "broken_inputs", "names_a_mismatch", "underlying_error"]

# An error "names the mismatch" when it speaks of shapes: torch's and linconv's messages all do
# ("mat1 and mat2 shapes cannot be multiplied (6x5 and 4x3)", "expected input[2, 5, 6, 6] to have
# 4 channels", "Given groups=5, expected weight to be divisible by 5", "Kernel size can't be
# greater than actual input size"). A heuristic: it cannot tell a precise message from a vague one
# that uses one of these words, but it does catch an error about something else entirely.
# Compiled (torch.compile), the same checks run on fake tensors while dynamo traces, and their
# messages come from torch's meta functions ("a and b must have same reduction dim, but got [3, 5]
# X [6, 4]"), hence "dim".
_MISMATCH_WORDS = re.compile(r"shape|size|channel|group|kernel|dimension|\bdims?\b|divisible|features", re.IGNORECASE)


def names_a_mismatch(message: str) -> bool:
    return bool(_MISMATCH_WORDS.search(message))


def underlying_error(error: BaseException) -> BaseException:
    """The error torch raised, beneath dynamo's wrappers: compiled, a shape error raised while
    tracing reaches the caller as ``TorchRuntimeError: RuntimeError when making fake tensor call``
    (whose text quotes fake tensors' sizes, so it would always "name a mismatch"), with the real
    error as its context; a Python exception the formulation raises while dynamo traces it
    (fullgraph) reaches it as ``Unsupported: Observed exception`` whose context is dynamo's
    record of it (``raised exception ValueError('groups=3 must divide ...')``). Not the whole
    message, then: the first error in the chain that dynamo did not raise, else the innermost."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        if not type(current).__module__.startswith("torch._dynamo"):
            return current
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen[-1]


def _unvalidated(g: ConvGeometry, **changes: object) -> ConvGeometry:
    """A copy of ``g`` with ``changes`` that ConvGeometry would refuse (no validation)."""
    broken = copy.copy(g)
    for name, value in changes.items():
        object.__setattr__(broken, name, value)
    return broken


def broken_inputs(case: Case, t: CaseTensors) -> tuple[torch.Tensor, Params, ConvGeometry]:
    """The case's tensors and geometry with ``case.invalid`` broken."""
    g, x, p = case.geometry, t.x, t.params
    if case.invalid == "more_channels":
        return torch.cat([x, x[:, :1]], dim=1), p, g
    if case.invalid == "fewer_channels":
        return x[:, 1:], p, g
    if case.invalid == "groups":
        return x, p, _unvalidated(g, groups=g.in_channels + 1)  # never divides in_channels
    # kernel: longer than the padded input in the first spatial dimension ('same' padding, which
    # grows with the kernel, becomes 'valid'); the weight keeps its taps, zeros beyond
    padding = "valid" if g.padding == "same" else g.padding
    lo, hi = (0, 0) if padding == "valid" else g.pads()[0]
    kernel = (max(g.size[0] + lo + hi + 1, g.kernel[0]), *g.kernel[1:])  # type: ignore[index]
    weight = torch.zeros((p.weight.shape[0], p.weight.shape[1], *kernel), dtype=x.dtype, device=x.device)
    weight[(slice(None), slice(None), *(slice(0, k) for k in p.weight.shape[2:]))] = p.weight
    return x, Params(weight, p.bias), _unvalidated(g, kernel=kernel, padding=padding)


def _refusal(relation: Relation, name: str, fn, x: torch.Tensor, p: Params, g: ConvGeometry) -> Comparison:
    try:
        with torch.no_grad():
            y = fn(x, p, g)
    except Exception as raised:  # the contract: it refuses
        error = underlying_error(raised)
        message = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        if names_a_mismatch(message):
            return Comparison(name, "refusal", exact=True, ratio=0.0)
        return Comparison(name, "refusal", True, float("inf"), problem=f"raised, but not about shapes: {message}")
    shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
    return Comparison(
        name, "refusal", True, float("inf"), problem=f"accepted the invalid input and returned shape {shape}"
    )


@dataclass(frozen=True)
class _ShapeContract:
    """Every formulation (and the reference) called on the broken input must raise."""

    name: str = "shape contract"
    timed: bool = False

    def run(self, relation: Relation, case: Case, *, observer: Observer | None, keep_outputs: bool) -> RelationResult:
        x, p, g = broken_inputs(case, case.build())
        named = {**{n: spec.fn for n, spec in relation.formulations.items()}, "reference": relation.reference}
        comparisons = tuple(_refusal(relation, n, fn, x, p, g) for n, fn in named.items())
        return RelationResult(relation.name, case, comparisons, flags=flags_in_force())


SHAPE_CONTRACT = _ShapeContract()


def _allowed(*kinds: str) -> tuple:
    return (lambda c: c.invalid in kinds, f"it breaks one of {kinds} (invalid)")


_LINEAR_BREAKS = ("more_channels", "fewer_channels")
_CONV_BREAKS = ("more_channels", "fewer_channels", "groups", "kernel")

register(
    Relation(
        name="shape_contract_linear",
        statement="Linear on [N, *size, C] (any rank, flattened, per row) and the 1x1 conv all refuse an input "
        "with a wrong in_features, naming the mismatch",
        strategy=lambda: invalid_cases("linear", _LINEAR_BREAKS),
        formulations=LINEAR_LAST_DIM.formulations,
        reference=LINEAR_LAST_DIM.reference,
        kind=SHAPE_CONTRACT,
        property_module="properties/test_shape_contract.py",
        applies_to=requires(INVALID, _allowed(*_LINEAR_BREAKS), CONV, POINTWISE, UNSTRIDED, NO_HEAD),
        example_share=0.25,
    )
)

register(
    Relation(
        name="shape_contract_conv",
        statement="conv2d, unfold + matmul and the dense Linear all refuse a wrong C_in, groups that do not divide "
        "the channels and a kernel larger than the padded input, naming the mismatch",
        strategy=lambda: invalid_cases("conv", _CONV_BREAKS),
        formulations=GENERAL_CONV.formulations,
        reference=GENERAL_CONV.reference,
        kind=SHAPE_CONTRACT,
        property_module="properties/test_shape_contract.py",
        applies_to=requires(INVALID, _allowed(*_CONV_BREAKS), RANK_2, NO_HEAD),
        example_share=0.25,
    )
)
