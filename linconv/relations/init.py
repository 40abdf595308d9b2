"""Default initialisation: under one seed, ``Conv2d(C, O, (kh, kw), groups=g)`` and
``Linear(C/g*kh*kw, O)`` get bit-identical parameters.

Both modules call ``kaiming_uniform_(weight, a=sqrt(5))`` and draw the bias from
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (torch/nn/modules/conv.py and linear.py,
``reset_parameters``), with the same fan-in and the same number of draws in the same order. The
global RNG is forked so a check never disturbs the caller's random stream. The comparison is the
exact lane of :func:`linconv.measure.compare` (bit for bit); the first formulation is the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from linconv.core.cases import Case
from linconv.measure import Observer, RelationResult, compare
from linconv.relations.common import requires
from linconv.relations.conditions import RANK_2
from linconv.relations.record import FormulationSpec, Relation
from linconv.relations.registry import register
from strategies import general_cases

__all__ = ["INIT", "PARAMETER_INIT", "InitParameters", "conv_defaults", "linear_defaults", "seeded"]

InitParameters = tuple[torch.Tensor, torch.Tensor | None]  # weight as [O, fan_in], bias
InitFormulation = Callable[[Case], InitParameters]

_CONV_MODULES = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def seeded(case: Case, build: Callable[[], object]) -> object:
    """``build()`` under ``torch.manual_seed(case.seed)``, with the caller's RNG state restored after."""
    device = torch.device(case.device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if device.type != "cpu" else "cuda"):
        torch.manual_seed(case.seed)
        return build()


def conv_defaults(case: Case) -> InitParameters:
    g = case.geometry
    module = _CONV_MODULES[g.rank]
    conv = seeded(case, lambda: module(g.in_channels, g.out_channels, g.kernel, groups=g.groups, bias=g.bias,
                                       dtype=case.torch_dtype, device=case.device))  # fmt: skip
    return conv.weight.detach().flatten(1), None if conv.bias is None else conv.bias.detach()


def linear_defaults(case: Case) -> InitParameters:
    g = case.geometry
    linear = seeded(
        case,
        lambda: nn.Linear(
            g.reduction_length(), g.out_channels, bias=g.bias, dtype=case.torch_dtype, device=case.device
        ),
    )
    return linear.weight.detach(), None if linear.bias is None else linear.bias.detach()


@dataclass(frozen=True)
class _ParameterInit:
    """Formulations ``f(case) -> (weight, bias)``: every one bit-identical to the first."""

    name: str = "parameter init"
    timed: bool = False  # parameter creation only: nothing to time
    # compiled code draws random numbers from inductor's own generator (config.fallback_random is
    # off), so a compiled init differs from eager by design; and a compiled model never runs its init
    compile_unavailable: str = (
        "initialisation is not compiled (a compiled model does not run its init, and inductor "
        "draws random numbers from its own generator)"
    )
    graph_breaks: bool = False
    forward_only: bool = False

    def run(self, relation: Relation, case: Case, *, observer: Observer | None, keep_outputs: bool) -> RelationResult:
        (base_name, base), *others = relation.formulations.items()
        want_w, want_b = base.fn(case)
        comparisons = []
        for name, spec in others:
            got_w, got_b = spec.fn(case)
            for tensor, got, want in (("weight", got_w, want_w), ("bias", got_b, want_b)):
                comparisons.append(compare(name, f"{tensor} (vs {base_name})", got, want, exact=True,
                                           missing_is_zero=False))  # fmt: skip
        return RelationResult(relation.name, case, tuple(comparisons), flags="n/a (initialisation draws only)")


PARAMETER_INIT = _ParameterInit()

INIT = register(
    Relation(
        name="init",
        statement="under one seed, Conv2d(C, O, (kh, kw)) and Linear(C*kh*kw, O) get bit-identical default parameters",
        strategy=general_cases,
        formulations={"conv2d": FormulationSpec(conv_defaults), "linear": FormulationSpec(linear_defaults)},
        kind=PARAMETER_INIT,
        property_module="properties/test_init.py",
        applies_to=requires(RANK_2),
    )
)
