"""Default initialisation: under one seed, ``Conv2d(C, O, (kh, kw), groups=g)`` and
``Linear(C/g*kh*kw, O)`` get bit-identical parameters.

Both modules call ``kaiming_uniform_(weight, a=sqrt(5))`` and draw the bias from
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (torch/nn/modules/conv.py and linear.py,
``reset_parameters``), with the same fan-in and the same number of draws in the same order. The
global RNG is forked so a check never disturbs the caller's random stream.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from linconv.cases import Case
from linconv.check import Comparison, RelationResult, RelationViolation, unravel

__all__ = ["INIT_FORMULATIONS", "InitParameters", "check_init", "conv_defaults", "linear_defaults", "run_init"]

InitParameters = tuple[torch.Tensor, torch.Tensor | None]  # weight as [O, fan_in], bias
InitFormulation = Callable[[Case], InitParameters]


def _seeded(case: Case, build: Callable[[], nn.Module]) -> nn.Module:
    device = torch.device(case.device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if device.type != "cpu" else "cuda"):
        torch.manual_seed(case.seed)
        return build()


def conv_defaults(case: Case) -> InitParameters:
    g = case.geometry
    conv = _seeded(
        case,
        lambda: nn.Conv2d(
            g.in_channels,
            g.out_channels,
            g.kernel,
            groups=g.groups,
            bias=g.bias,
            dtype=case.torch_dtype,
            device=case.device,
        ),
    )
    return conv.weight.detach().flatten(1), None if conv.bias is None else conv.bias.detach()


def linear_defaults(case: Case) -> InitParameters:
    g = case.geometry
    linear = _seeded(
        case,
        lambda: nn.Linear(
            g.reduction_length(), g.out_channels, bias=g.bias, dtype=case.torch_dtype, device=case.device
        ),
    )
    return linear.weight.detach(), None if linear.bias is None else linear.bias.detach()


INIT_FORMULATIONS: dict[str, InitFormulation] = {"conv2d": conv_defaults, "linear": linear_defaults}


def _compare_exact(formulation: str, tensor: str, got: torch.Tensor | None, want: torch.Tensor | None) -> Comparison:
    if (got is None) != (want is None):
        return Comparison(formulation, tensor, True, float("inf"), problem="present on one side only")
    if got is None or want is None:
        return Comparison(formulation, tensor, True, 0.0)
    if got.shape != want.shape:
        return Comparison(
            formulation,
            tensor,
            True,
            float("inf"),
            problem=f"shape {tuple(got.shape)} differs from {tuple(want.shape)}",
        )
    differs = (got != want).flatten()
    if not bool(differs.any()):
        return Comparison(formulation, tensor, True, 0.0)
    flat = int(differs.nonzero()[0])
    index = unravel(flat, tuple(got.shape))
    value, reference = float(got.flatten()[flat]), float(want.flatten()[flat])
    return Comparison(formulation, tensor, True, float("inf"), index, value, reference, abs(value - reference), 0.0)


def run_init(case: Case, formulations: dict[str, InitFormulation] | None = None) -> RelationResult:
    """Compare every init formulation's parameters with the first one's, bit for bit."""
    entries = formulations or INIT_FORMULATIONS
    (base_name, base), *others = entries.items()
    want_w, want_b = base(case)
    comparisons = []
    for name, build in others:
        got_w, got_b = build(case)
        comparisons.append(_compare_exact(name, f"weight (vs {base_name})", got_w, want_w))
        comparisons.append(_compare_exact(name, f"bias (vs {base_name})", got_b, want_b))
    return RelationResult("init", case, tuple(comparisons), flags="n/a (initialisation draws only)")


def check_init(case: Case, formulations: dict[str, InitFormulation] | None = None) -> RelationResult:
    __tracebackhide__ = True
    result = run_init(case, formulations)
    if result.violations:
        raise RelationViolation(result)
    return result
