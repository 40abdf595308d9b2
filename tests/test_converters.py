"""The converters in linconv.converters return modules that compute exactly the map of their source.

Values are small integers in float64 wherever outputs are compared, so every sum is exact and
equality is demanded bit for bit; round trips and dtype-keeping checks use ordinary float values.
"""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from linconv.converters import (
    conv1x1_to_linear,
    conv_geometry,
    conv_to_dense_linear,
    dense_conv_weight,
    full_kernel_conv_to_linear,
    fuse_linear_after_conv,
    linear_to_conv1x1,
    linear_to_full_kernel_conv,
)
from linconv.core.geometry import ConvGeometry
from strategies.geometry import conv_geometries

# torch's own note that it pads a copy of the input for 'same' with an even kernel: not under test.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")

# Keeps an example to a few milliseconds (one thread) yet fits 5x5 kernels dilated by 2 (config.MIN_MAX_NUMEL).
GEOMETRY_NUMEL = 2**12
F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors gain nothing from threads, and on a loaded 2-core machine each op then waits at the
    thread-pool barrier (measured: 150-250 ms per 10-element conv, 10x the whole module's run time)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def integers(shape: tuple[int, ...], seed: int, *, dtype: torch.dtype = F64, magnitude: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(-magnitude, magnitude + 1, shape, generator=generator).to(dtype)


def conv_of(g: ConvGeometry, weight: torch.Tensor, bias: torch.Tensor | None = None) -> nn.Conv2d:
    """The nn.Conv2d of geometry ``g`` holding ``weight`` and ``bias`` (torch's own forward is the reference)."""
    conv = nn.Conv2d(
        g.in_channels,
        g.out_channels,
        g.kernel,
        stride=g.stride,
        padding=g.padding,
        dilation=g.dilation,
        groups=g.groups,
        bias=bias is not None,
        padding_mode=g.padding_mode,
        dtype=weight.dtype,
    )
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
    return conv


def integer_parameters(module: nn.Module, seed: int) -> nn.Module:
    with torch.no_grad():
        for offset, parameter in enumerate(module.parameters()):
            parameter.copy_(integers(parameter.shape, seed + offset))
    return module


def storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


# Each padding mode, 'same' with a non-square dilated kernel, groups with stride: always run.
CORNER_GEOMETRIES = [
    ConvGeometry(2, 4, 6, (5, 7), (3, 2), (1, 1), "same", (2, 1), 2, "reflect"),
    ConvGeometry(1, 3, 3, (4, 6), (3, 3), (2, 3), (2, 1), (1, 2), 3, "circular"),
    ConvGeometry(1, 2, 4, (3, 5), (2, 3), (1, 2), (2, 2), (1, 1), 1, "replicate"),
    ConvGeometry(2, 2, 2, (6, 4), (3, 3), (3, 1), (3, 1), (2, 1), 1, "zeros"),
    ConvGeometry(1, 2, 3, (5, 5), (3, 3), (2, 2), "valid", (1, 1), 1, "zeros"),
]


def with_corners(test):
    for g in CORNER_GEOMETRIES:
        test = example(g=g, seed=0)(test)
    return test


# --- dense_conv_weight ----------------------------------------------------------------------


@with_corners
@given(g=conv_geometries(max_numel=GEOMETRY_NUMEL), seed=st.integers(0, 2**16))
def test_dense_weight_times_input_equals_conv(g: ConvGeometry, seed: int) -> None:
    weight, x = integers(g.weight_shape, seed), integers(g.input_shape, seed + 1)
    expected = conv_of(g, weight)(x)
    got = F.linear(x.flatten(1), dense_conv_weight(weight, g)).view(g.output_shape)
    assert torch.equal(got, expected), f"{g}: max |error| {(got - expected).abs().max().item()}"


@with_corners
@given(g=conv_geometries(max_numel=GEOMETRY_NUMEL), seed=st.integers(0, 2**16))
def test_dense_weight_gradient_equals_conv_weight_gradient(g: ConvGeometry, seed: int) -> None:
    x, grad_out = integers(g.input_shape, seed), integers(g.output_shape, seed + 1)
    conv = conv_of(g, integers(g.weight_shape, seed + 2))
    conv(x).backward(grad_out)
    weight = conv.weight.detach().clone().requires_grad_(True)
    F.linear(x.flatten(1), dense_conv_weight(weight, g)).view(g.output_shape).backward(grad_out)
    assert torch.equal(weight.grad, conv.weight.grad), f"{g}: {weight.grad} != {conv.weight.grad}"


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("g", CORNER_GEOMETRIES[:4], ids=lambda g: g.padding_mode)
def test_dense_weight_keeps_dtype_and_device_for_any_layout(g: ConvGeometry, dtype: torch.dtype, layout: str) -> None:
    weight = integers(g.weight_shape, 7, magnitude=2)
    if layout == "channels_last":
        source = weight.to(dtype, memory_format=torch.channels_last)
    elif layout == "strided":
        source = torch.stack([weight, -weight], dim=-1).to(dtype)[..., 0]
        assert not source.is_contiguous()
    else:
        source = weight.to(dtype)
    dense = dense_conv_weight(source, g)
    assert (dense.dtype, dense.device, dense.shape) == (dtype, source.device, (g.out_features, g.in_features))
    assert dense.is_contiguous()
    assert torch.equal(dense, dense_conv_weight(weight, g).to(dtype))  # integer sums are exact in every dtype


def test_dense_weight_tap_on_zero_padding_adds_nothing_even_for_inf() -> None:
    g = ConvGeometry(1, 1, 1, (2, 2), kernel=3, padding=1)
    weight = torch.zeros(g.weight_shape)
    weight[0, 0, 0, 0] = float("inf")  # reads input (i-1, j-1): real only for output (1, 1)
    dense = dense_conv_weight(weight, g)
    expected = torch.zeros(4, 4)
    expected[3, 0] = float("inf")
    assert torch.equal(dense, expected)


# --- conv_geometry --------------------------------------------------------------------------


def test_conv_geometry_reads_every_field_of_the_module() -> None:
    conv = nn.Conv2d(6, 4, (3, 2), padding="same", dilation=(2, 1), groups=2, bias=False, padding_mode="reflect")
    assert conv_geometry(conv, (5, 7), batch=3) == ConvGeometry(
        3, 6, 4, (5, 7), (3, 2), (1, 1), "same", (2, 1), 2, "reflect", False
    )
    conv = nn.Conv2d(2, 3, 3, stride=(2, 1), padding=(1, 0))
    assert conv_geometry(conv, [6, 4]) == ConvGeometry(1, 2, 3, (6, 4), (3, 3), (2, 1), (1, 0), bias=True)


# --- converters: same outputs ---------------------------------------------------------------


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize(
    ("groups", "dilation", "padding"), [(1, 1, 0), (3, (2, 3), "valid"), (3, 1, "same"), (1, 2, (0, 0))]
)
def test_pointwise_conv_equals_linear_over_channels(groups: int, dilation: object, padding: object, bias: bool) -> None:
    conv = integer_parameters(
        nn.Conv2d(6, 9, 1, padding=padding, dilation=dilation, groups=groups, bias=bias, dtype=F64), 1
    )
    x = integers((2, 6, 3, 4), 2)
    linear = conv1x1_to_linear(conv)
    assert (linear.in_features, linear.out_features) == (6, 9)
    assert torch.equal(linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), conv(x))
    back = linear_to_conv1x1(linear)
    assert torch.equal(back(x), conv(x))


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize(("groups", "stride", "batch"), [(1, 1, 1), (2, (2, 3), 3), (4, 5, 1)])
def test_full_kernel_conv_equals_linear_on_flattened_input(groups: int, stride: object, batch: int, bias: bool) -> None:
    conv = integer_parameters(nn.Conv2d(4, 8, (3, 2), stride=stride, groups=groups, bias=bias, dtype=F64), 3)
    x = integers((batch, 4, 3, 2), 4)
    linear = full_kernel_conv_to_linear(conv)
    assert (linear.in_features, linear.out_features) == (24, 8)
    assert torch.equal(linear(x.flatten(1)), conv(x).view(batch, 8))  # view, never squeeze: batch may be 1
    back = linear_to_full_kernel_conv(linear, (4, 3, 2))
    assert torch.equal(back(x), conv(x))


@with_corners
@given(g=conv_geometries(max_numel=GEOMETRY_NUMEL), seed=st.integers(0, 2**16))
def test_dense_linear_equals_conv(g: ConvGeometry, seed: int) -> None:
    conv = conv_of(g, integers(g.weight_shape, seed), integers((g.out_channels,), seed + 1) if g.bias else None)
    x = integers(g.input_shape, seed + 2)
    linear = conv_to_dense_linear(conv, g.size)
    assert torch.equal(linear(x.flatten(1)).view(g.output_shape), conv(x))


@pytest.mark.parametrize(("conv_bias", "linear_bias"), [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("g", CORNER_GEOMETRIES[:3], ids=lambda g: g.padding_mode)
def test_linear_after_conv_fuses_to_one_linear(g: ConvGeometry, conv_bias: bool, linear_bias: bool) -> None:
    conv = conv_of(g, integers(g.weight_shape, 5), integers((g.out_channels,), 6) if conv_bias else None)
    linear = integer_parameters(nn.Linear(g.out_features, 5, bias=linear_bias, dtype=F64), 7)
    x = integers(g.input_shape, 9)
    fused = fuse_linear_after_conv(conv, linear, g.size)
    assert (fused.bias is None) == (not conv_bias and not linear_bias)
    assert torch.equal(fused(x.flatten(1)), linear(conv(x).flatten(1)))


def test_fused_weight_is_the_float64_product_rounded_once() -> None:
    g = CORNER_GEOMETRIES[0]
    torch.manual_seed(0)
    conv = conv_of(g, torch.randn(g.weight_shape), torch.randn(g.out_channels))
    linear = nn.Linear(g.out_features, 3)
    fused = fuse_linear_after_conv(conv, linear, g.size)
    dense = dense_conv_weight(conv.weight.detach().double(), g)
    head = linear.weight.detach().double()
    bias = head @ conv.bias.detach().double().repeat_interleave(g.out_features // g.out_channels)
    assert torch.equal(fused.weight, (head @ dense).float())
    assert torch.equal(fused.bias, (bias + linear.bias.detach().double()).float())


# --- converters: round trips and what the new module keeps -----------------------------------


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_round_trips_are_bit_identical(dtype: torch.dtype, bias: bool) -> None:
    torch.manual_seed(0)
    pointwise = nn.Conv2d(5, 7, 1, bias=bias, dtype=dtype)
    again = linear_to_conv1x1(conv1x1_to_linear(pointwise))
    full = nn.Conv2d(3, 4, (2, 5), bias=bias, dtype=dtype).to(memory_format=torch.channels_last)
    full_again = linear_to_full_kernel_conv(full_kernel_conv_to_linear(full), (3, 2, 5))
    linear = nn.Linear(30, 4, bias=bias, dtype=dtype)
    linear_again = full_kernel_conv_to_linear(linear_to_full_kernel_conv(linear, (3, 2, 5)))
    for source, result in [(pointwise, again), (full, full_again), (linear, linear_again)]:
        for name, parameter in source.named_parameters():
            got = getattr(result, name)
            assert got.shape == parameter.shape and torch.equal(got, parameter), name


def _conversions(dtype: torch.dtype, requires_grad: bool) -> list[tuple[str, list[nn.Module], nn.Module]]:
    torch.manual_seed(0)
    pointwise = nn.Conv2d(4, 6, 1, groups=2, dtype=dtype)
    full = nn.Conv2d(2, 3, (2, 3), dtype=dtype)
    general = nn.Conv2d(2, 4, 3, padding=1, padding_mode="reflect", dtype=dtype)
    linear = nn.Linear(6, 5, dtype=dtype)
    head = nn.Linear(4 * 3 * 3, 2, dtype=dtype)
    for module in (pointwise, full, general, linear, head):
        module.requires_grad_(requires_grad)
    return [
        ("conv1x1_to_linear", [pointwise], conv1x1_to_linear(pointwise)),
        ("linear_to_conv1x1", [linear], linear_to_conv1x1(linear)),
        ("full_kernel_conv_to_linear", [full], full_kernel_conv_to_linear(full)),
        ("linear_to_full_kernel_conv", [linear], linear_to_full_kernel_conv(linear, (1, 2, 3))),
        ("conv_to_dense_linear", [general], conv_to_dense_linear(general, (3, 3))),
        ("fuse_linear_after_conv", [general, head], fuse_linear_after_conv(general, head, (3, 3))),
    ]


@pytest.mark.parametrize("requires_grad", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_result_keeps_dtype_device_requires_grad_and_owns_its_parameters(
    dtype: torch.dtype, requires_grad: bool
) -> None:
    for name, sources, result in _conversions(dtype, requires_grad):
        source_storages = {storage(p) for s in sources for p in s.parameters()}
        for parameter in result.parameters():
            assert isinstance(parameter, nn.Parameter) and parameter.is_leaf, name
            assert (parameter.dtype, parameter.device) == (dtype, torch.device("cpu")), name
            assert parameter.requires_grad is requires_grad, name
            assert storage(parameter) not in source_storages, name


# --- bad arguments: exact messages ----------------------------------------------------------

_CONV3 = nn.Conv2d(2, 8, 3)  # on 5x5 input: output 8x3x3, O*Ho*Wo = 72
_BAD_ARGUMENTS = [
    (
        lambda: dense_conv_weight([1.0], ConvGeometry(1, 1, 1, (1, 1))),
        TypeError,
        "dense_conv_weight: weight must be a torch.Tensor, got list",
    ),
    (
        lambda: dense_conv_weight(torch.zeros(1, 1, 1, 1), {"kernel": 1}),
        TypeError,
        "dense_conv_weight: geometry must be a linconv.core.geometry.ConvGeometry, got dict",
    ),
    (
        lambda: dense_conv_weight(torch.zeros(4, 1, 3, 3), ConvGeometry(1, 2, 4, (5, 5), kernel=3)),
        ValueError,
        "dense_conv_weight: weight.shape must equal geometry.weight_shape (4, 2, 3, 3), got (4, 1, 3, 3)",
    ),
    (
        lambda: conv1x1_to_linear(nn.Linear(2, 3)),
        TypeError,
        "conv1x1_to_linear: conv must be a torch.nn.Conv1d, Conv2d or Conv3d, got Linear",
    ),
    (
        lambda: conv1x1_to_linear(nn.Conv2d(2, 3, 3)),
        ValueError,
        "conv1x1_to_linear: conv.kernel_size must be (1, 1) for a pointwise Linear, got (3, 3)",
    ),
    (
        lambda: conv1x1_to_linear(nn.Conv2d(2, 3, 1, padding=1)),
        ValueError,
        "conv1x1_to_linear: conv.padding must be 0 or 'valid' for a pointwise Linear, got (1, 1)",
    ),
    (
        lambda: conv1x1_to_linear(nn.Conv2d(2, 3, 1, stride=(2, 3))),
        ValueError,
        "conv1x1_to_linear: conv.stride must be (1, 1) for a pointwise Linear, got (2, 3); "
        "subsample the input first (x[:, :, ::2, ::3]) and convert a stride-1 conv",
    ),
    (
        lambda: linear_to_conv1x1(nn.Conv2d(2, 3, 1)),
        TypeError,
        "linear_to_conv1x1: linear must be a torch.nn.Linear, got Conv2d",
    ),
    (
        lambda: full_kernel_conv_to_linear(nn.Identity()),
        TypeError,
        "full_kernel_conv_to_linear: conv must be a torch.nn.Conv1d, Conv2d or Conv3d, got Identity",
    ),
    (
        lambda: full_kernel_conv_to_linear(nn.Conv2d(2, 3, 3, padding=(0, 1))),
        ValueError,
        "full_kernel_conv_to_linear: conv.padding must be 0 or 'valid' when the kernel covers the whole input, "
        "got (0, 1)",
    ),
    (
        lambda: full_kernel_conv_to_linear(nn.Conv2d(2, 3, 3, padding="same")),
        ValueError,
        "full_kernel_conv_to_linear: conv.padding must be 0 or 'valid' when the kernel covers the whole input, "
        "got 'same'",
    ),
    (
        lambda: full_kernel_conv_to_linear(nn.Conv2d(2, 3, 3, dilation=(2, 1))),
        ValueError,
        "full_kernel_conv_to_linear: conv.dilation must be (1, 1) when the kernel covers the whole input, got (2, 1)",
    ),
    (
        lambda: linear_to_full_kernel_conv(nn.Conv2d(2, 3, 1), (2, 1, 1)),
        TypeError,
        "linear_to_full_kernel_conv: linear must be a torch.nn.Linear, got Conv2d",
    ),
    (
        lambda: linear_to_full_kernel_conv(nn.Linear(12, 3), (3, 4, 1, 1, 1)),
        ValueError,
        "linear_to_full_kernel_conv: input_shape must be 2 to 4 positive ints: (C, L), (C, H, W) or (C, D, H, W), "
        "got (3, 4, 1, 1, 1)",
    ),
    (
        lambda: linear_to_full_kernel_conv(nn.Linear(12, 3), (3, 0, 4)),
        ValueError,
        "linear_to_full_kernel_conv: input_shape must be 2 to 4 positive ints: (C, L), (C, H, W) or (C, D, H, W), "
        "got (3, 0, 4)",
    ),
    (
        lambda: linear_to_full_kernel_conv(nn.Linear(50, 3), (2, 5, 4)),
        ValueError,
        "linear_to_full_kernel_conv: input_shape C*H*W must equal linear.in_features = 50, "
        "got (2, 5, 4) with C*H*W = 40",
    ),
    (
        lambda: conv_to_dense_linear(nn.Linear(2, 3), (4, 4)),
        TypeError,
        "conv_to_dense_linear: conv must be a torch.nn.Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d or "
        "ConvTranspose3d, got Linear",
    ),
    (
        lambda: conv_to_dense_linear(_CONV3, None),
        ValueError,
        "conv_to_dense_linear: input_size must be a pair of positive ints (H, W), got None",
    ),
    (
        lambda: conv_to_dense_linear(_CONV3, (5,)),
        ValueError,
        "conv_to_dense_linear: input_size must be a pair of positive ints (H, W), got (5,)",
    ),
    (
        lambda: conv_to_dense_linear(_CONV3, (5.0, 5)),
        ValueError,
        "conv_to_dense_linear: input_size must be a pair of positive ints (H, W), got (5.0, 5)",
    ),
    (
        lambda: conv_to_dense_linear(_CONV3, (0, 5)),
        ValueError,
        "conv_to_dense_linear: input_size must be a pair of positive ints (H, W), got (0, 5)",
    ),
    (
        lambda: conv_to_dense_linear(_CONV3, (2, 5)),
        ValueError,
        "conv_to_dense_linear: input_size (2, 5) is too small for the conv: kernel (3, 3) with dilation (1, 1) "
        "does not fit input 2x5 padded by (0, 0): output would be 0x3",
    ),
    (
        lambda: conv_to_dense_linear(nn.Conv2d(1, 1, 3, padding=2, padding_mode="reflect"), (2, 4)),
        ValueError,
        "conv_to_dense_linear: input_size (2, 4) is too small for the conv: padding_mode='reflect' needs "
        "padding < input size, got padding (2, 2) for input 2x4",
    ),
    (
        lambda: conv_geometry(_CONV3, (5, 5), batch=0),
        ValueError,
        "conv_geometry: batch must be a positive int, got 0",
    ),
    (
        lambda: fuse_linear_after_conv(_CONV3, nn.Conv2d(72, 3, 1), (5, 5)),
        TypeError,
        "fuse_linear_after_conv: linear must be a torch.nn.Linear, got Conv2d",
    ),
    (
        lambda: fuse_linear_after_conv(_CONV3, nn.Linear(70, 3), (5, 5)),
        ValueError,
        "fuse_linear_after_conv: linear.in_features must equal conv output features O*Ho*Wo = 72, got 70",
    ),
    (
        lambda: fuse_linear_after_conv(_CONV3, nn.Linear(72, 3, dtype=torch.bfloat16), (5, 5)),
        ValueError,
        "fuse_linear_after_conv: linear.weight.dtype must equal conv.weight.dtype torch.float32, got torch.bfloat16",
    ),
    (
        lambda: fuse_linear_after_conv(_CONV3, nn.Linear(72, 3), None),
        ValueError,
        "fuse_linear_after_conv: input_size must be a pair of positive ints (H, W), got None",
    ),
]


@pytest.mark.parametrize(("call", "error", "message"), _BAD_ARGUMENTS, ids=[m for _, _, m in _BAD_ARGUMENTS])
def test_bad_argument_is_rejected_with_exact_message(call, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        call()
