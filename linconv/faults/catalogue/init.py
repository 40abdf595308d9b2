"""Initialisation: a wrong fan-in."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.faults.catalogue.tensors import issue
from linconv.faults.record import fault


def _seeded_parameters(case: Case, shape: tuple[int, ...], fan: int, bias_fan: int) -> tuple:
    """torch's default init (kaiming_uniform_(a=sqrt(5)) then U(+-1/sqrt(fan_in)) for the bias,
    torch/nn/modules/conv.py and linear.py, reset_parameters) with the fans given explicitly, in
    the same draw order and arithmetic: with the right fans it reproduces nn.Conv2d/nn.Linear
    bit for bit (tests/test_faults.py checks that)."""
    device = torch.device(case.device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if device.type != "cpu" else "cuda"):
        torch.manual_seed(case.seed)
        weight = torch.empty(shape, dtype=case.torch_dtype, device=device)
        gain = nn.init.calculate_gain("leaky_relu", math.sqrt(5))
        weight.uniform_(-math.sqrt(3.0) * (gain / math.sqrt(fan)), math.sqrt(3.0) * (gain / math.sqrt(fan)))
        bias = None
        if case.geometry.bias:
            bias = torch.empty(shape[0], dtype=case.torch_dtype, device=device)
            bias.uniform_(-1 / math.sqrt(bias_fan), 1 / math.sqrt(bias_fan))
    return weight.flatten(1), bias


def conv_init_with_fans(fan_in: Callable[[ConvGeometry], int]) -> Callable[[Case], tuple]:
    def build(case: Case) -> tuple:
        g = case.geometry
        fan = fan_in(g)
        return _seeded_parameters(case, g.weight_shape, fan, fan)

    return build


@fault(
    name="init_fan_in_ignores_groups_3d",
    relation="init_3d",
    formulation="conv3d",
    bug_class="fan_in",
    description="Conv3d init computes fan-in as C*kd*kh*kw instead of C/groups*kd*kh*kw",
    issue=issue(23854),
)
@fault(
    name="init_fan_in_ignores_groups_1d",
    relation="init_1d",
    formulation="conv1d",
    bug_class="fan_in",
    description="Conv1d init computes fan-in as C*k instead of C/groups*k",
    issue=issue(23854),
)
@fault(
    relation="init",
    formulation="conv2d",
    bug_class="fan_in",
    description="Conv2d init computes fan-in as C*kh*kw instead of C/groups*kh*kw",
    issue=issue(23854),
)
def init_fan_in_ignores_groups(_conv_defaults: Callable) -> Callable:
    return conv_init_with_fans(lambda g: g.in_channels * g.taps)


@fault(
    relation="init",
    formulation="linear",
    bug_class="fan_in",
    description="Linear init uses fan_out (out_features) where kaiming_uniform_ takes fan_in",
    issue=issue(23854),
)
def init_linear_fan_out(_linear_defaults: Callable) -> Callable:
    def build(case: Case) -> tuple:
        g = case.geometry
        fan_in = g.reduction_length()
        return _seeded_parameters(case, (g.out_channels, fan_in), g.out_channels, fan_in)  # bias keeps fan_in

    return build
