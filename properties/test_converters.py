"""Converters: the modules linconv.converters hands out compute the source's map (forward and
input gradient; exact lane: bit for bit), and round trips give bit-identical parameters."""

import torch
from hypothesis import given

from linconv import converters
from linconv.relations.converted import conv_module
from linconv.search.placement import on_device
from properties.support import relation_property
from strategies import full_kernel_cases, pointwise_cases

test_conv1x1_to_linear_computes_the_conv = relation_property("converted_pointwise")
test_full_kernel_conv_to_linear_computes_the_conv = relation_property("converted_full_kernel")
test_conv_to_dense_linear_computes_the_conv = relation_property("converted_dense")
test_fuse_linear_after_conv_computes_the_composition = relation_property("converted_fused")


def _conv(case):
    t = case.build()
    return conv_module(t.params, case.geometry)


def _assert_same_parameters(a: torch.nn.Module, b: torch.nn.Module) -> None:
    __tracebackhide__ = True
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert p.shape == q.shape and p.dtype == q.dtype and p.device == q.device, name
        assert torch.equal(p, q), f"{name} changed in the round trip: max |diff| {(p - q).abs().max()}"


@given(case=pointwise_cases(max_stride=1))
def test_pointwise_round_trip_is_bit_identical(case, device):
    conv = _conv(on_device(case, device))
    linear = converters.conv1x1_to_linear(conv)
    if conv.groups == 1:
        _assert_same_parameters(conv, converters.linear_to_conv1x1(linear))
    _assert_same_parameters(linear, converters.conv1x1_to_linear(converters.linear_to_conv1x1(linear)))


@given(case=full_kernel_cases())
def test_full_kernel_round_trip_is_bit_identical(case, device):
    case = on_device(case, device)
    g = case.geometry
    conv = _conv(case)
    linear = converters.full_kernel_conv_to_linear(conv)
    back = converters.linear_to_full_kernel_conv(linear, (g.in_channels, *g.size))
    if conv.groups == 1:
        _assert_same_parameters(conv, back)
    _assert_same_parameters(linear, converters.full_kernel_conv_to_linear(back))
