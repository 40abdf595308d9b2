"""The converters in one and three dimensions, for transposed convs and for patch embeddings:
every module they return computes exactly its source's map (small integers in float64, so every
sum is exact and equality is demanded bit for bit), round trips are bit-identical, and bad
requests get the exact message."""

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
    linear_to_patch_embedding,
    patch_embedding_to_linear,
    patchify,
)
from linconv.core.cases import Params
from linconv.core.geometry import ConvGeometry
from linconv.relations.converted import conv_module
from strategies.geometry import conv_geometries, conv_transpose_geometries, patch_geometries

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")

GEOMETRY_NUMEL = 2**12  # a few milliseconds per example (tests/test_converters.py)
F64 = torch.float64
CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
TRANSPOSED = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def integers(shape: tuple[int, ...], seed: int, *, magnitude: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(-magnitude, magnitude + 1, tuple(shape), generator=generator).to(F64)


def module_of(g: ConvGeometry, seed: int) -> nn.Module:
    """The nn.ConvNd / nn.ConvTransposeNd of ``g`` with small-integer parameters (torch's own forward
    is the reference)."""
    if g.transposed:
        module = TRANSPOSED[g.rank](g.in_channels, g.out_channels, g.kernel, g.stride, g.padding, g.output_padding,
                                    g.groups, bias=g.bias, dilation=g.dilation, dtype=F64)  # fmt: skip
    else:
        module = CONVS[g.rank](g.in_channels, g.out_channels, g.kernel, g.stride, g.padding, g.dilation, g.groups,
                               bias=g.bias, padding_mode=g.padding_mode, dtype=F64)  # fmt: skip
    with torch.no_grad():
        for offset, parameter in enumerate(module.parameters()):
            parameter.copy_(integers(parameter.shape, seed + offset))
    return module


def assert_same_parameters(a: nn.Module, b: nn.Module) -> None:
    __tracebackhide__ = True
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert p.shape == q.shape and p.dtype == q.dtype and torch.equal(p, q), name


# --- the dense matrix, any rank, transposed or not -------------------------------------------------

# output_padding >= stride (allowed by torch where it is below the dilation), grouped 3-D, 1-D padded
TRANSPOSED_CORNERS = [
    ConvGeometry(2, 2, 4, (3,), 3, 1, 1, 3, 2, bias=True, transposed=True, output_padding=2),
    ConvGeometry(1, 4, 2, (2, 3, 2), (2, 1, 3), (2, 1, 2), (1, 0, 1), 1, 2, transposed=True, output_padding=(1, 0, 1)),
    ConvGeometry(
        1, 1, 1, (1, 1, 2), (1, 1, 3), (1, 1, 2), (0, 0, 3), (1, 1, 2), transposed=True
    ),  # an output no tap reaches
]


@example(g=TRANSPOSED_CORNERS[0], seed=0)
@example(g=TRANSPOSED_CORNERS[1], seed=1)
@example(g=TRANSPOSED_CORNERS[2], seed=2)
@given(g=conv_transpose_geometries(max_numel=GEOMETRY_NUMEL), seed=st.integers(0, 2**16))
def test_dense_weight_of_a_transposed_conv_equals_it_and_the_module_converts(g: ConvGeometry, seed: int) -> None:
    module, x = module_of(g, seed), integers(g.input_shape, seed + 7)
    expected = module(x)
    assert tuple(expected.shape) == g.output_shape
    bias = 0 if module.bias is None else module.bias.detach().view(1, -1, *[1] * g.rank)
    got = F.linear(x.flatten(1), dense_conv_weight(module.weight.detach(), g)).view(g.output_shape) + bias
    assert torch.equal(got, expected)
    linear = conv_to_dense_linear(module, g.size)
    assert torch.equal(linear(x.flatten(1)).view(g.output_shape), expected)
    assert conv_geometry(module, g.size, batch=g.batch) == g


@pytest.mark.parametrize("rank", [1, 3])
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_dense_weight_and_its_gradient_in_one_and_three_dimensions(rank: int, data, seed: int) -> None:
    g = data.draw(conv_geometries(max_numel=GEOMETRY_NUMEL, rank=rank), label="g")
    module, x = module_of(g, seed), integers(g.input_shape, seed + 7)
    expected = module(x)
    linear = conv_to_dense_linear(module, g.size)
    assert torch.equal(linear(x.flatten(1)).view(g.output_shape), expected)
    grad_out = integers(g.output_shape, seed + 9)
    expected.backward(grad_out)
    weight = module.weight.detach().clone().requires_grad_(True)
    F.linear(x.flatten(1), dense_conv_weight(weight, g)).view(g.output_shape).backward(grad_out)
    assert torch.equal(weight.grad, module.weight.grad)


# --- 1x1, full kernel and fusion in 1-D and 3-D ----------------------------------------------------


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize(("rank", "groups"), [(1, 1), (1, 3), (3, 1), (3, 3)])
def test_pointwise_conv_in_any_rank_equals_linear_over_channels(rank: int, groups: int, bias: bool) -> None:
    conv = module_of(ConvGeometry(2, 6, 9, (4,) * rank, groups=groups, bias=bias), 1)
    x = integers((2, 6, *(3, 4, 2)[:rank]), 2)
    linear = conv1x1_to_linear(conv)
    assert (linear.in_features, linear.out_features) == (6, 9)
    assert torch.equal(linear(x.movedim(1, -1)).movedim(-1, 1), conv(x))
    back = linear_to_conv1x1(linear, rank)
    assert isinstance(back, CONVS[rank]) and torch.equal(back(x), conv(x))
    if groups == 1:
        assert_same_parameters(conv, back)


def test_conv1d_on_a_sequence_stored_n_l_c_is_the_linear_on_that_storage() -> None:
    # the most asked variant: a [N, L, C] sequence through Conv1d(C, O, 1) after transpose(1, 2)
    conv = module_of(ConvGeometry(3, 5, 7, (11,)), 4)
    sequence = integers((3, 11, 5), 5)  # [N, L, C]
    assert torch.equal(conv1x1_to_linear(conv)(sequence), conv(sequence.transpose(1, 2)).transpose(1, 2))


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize(("shape", "groups", "batch"), [((4, 5), 1, 1), ((4, 3), 2, 3), ((4, 2, 3, 2), 2, 1)])
def test_full_kernel_conv_in_any_rank_equals_linear(shape: tuple, groups: int, batch: int, bias: bool) -> None:
    channels, *size = shape
    conv = module_of(ConvGeometry(batch, channels, 6, tuple(size), kernel=tuple(size), groups=groups, bias=bias), 3)
    x = integers((batch, *shape), 4)
    linear = full_kernel_conv_to_linear(conv)
    assert torch.equal(linear(x.flatten(1)), conv(x).view(batch, 6))
    back = linear_to_full_kernel_conv(linear, shape)
    assert isinstance(back, CONVS[len(size)]) and torch.equal(back(x), conv(x))
    if groups == 1:
        assert_same_parameters(conv, back)


@pytest.mark.parametrize(
    "g",
    [
        ConvGeometry(2, 3, 4, (7,), 3, 2, 1, 2, padding_mode="reflect"),
        ConvGeometry(1, 2, 2, (3, 4, 3), (2, 3, 1), 1, "same", (1, 1, 2), 2, "circular"),
    ],
    ids=["1d", "3d"],
)
def test_linear_after_conv_in_any_rank_fuses_to_one_linear(g: ConvGeometry) -> None:
    conv = module_of(g, 5)
    linear = module_of_linear(g.out_features, 4, 6)
    x = integers(g.input_shape, 9)
    size = g.size[0] if g.rank == 1 else g.size  # a Conv1d takes a bare int too
    assert torch.equal(fuse_linear_after_conv(conv, linear, size)(x.flatten(1)), linear(conv(x).flatten(1)))


def module_of_linear(in_features: int, out_features: int, seed: int) -> nn.Linear:
    linear = nn.Linear(in_features, out_features, dtype=F64)
    with torch.no_grad():
        linear.weight.copy_(integers(linear.weight.shape, seed))
        linear.bias.copy_(integers(linear.bias.shape, seed + 1))
    return linear


# --- patch embeddings --------------------------------------------------------------------------


@example(g=ConvGeometry(2, 3, 8, (10, 9), kernel=4, stride=4), seed=0)  # a ViT-like stem with a remainder
@given(g=patch_geometries(max_numel=GEOMETRY_NUMEL), seed=st.integers(0, 2**16))
def test_patch_embedding_equals_linear_on_patches(g: ConvGeometry, seed: int) -> None:
    conv, x = module_of(g, seed), integers(g.input_shape, seed + 3)
    linear = patch_embedding_to_linear(conv)
    assert torch.equal(linear(patchify(x, g.kernel)).movedim(-1, 1), conv(x))
    back = linear_to_patch_embedding(linear, (g.in_channels, *g.kernel))
    assert torch.equal(back(x), conv(x))
    if g.groups == 1:
        assert_same_parameters(conv, back)


def test_patchify_orders_each_patch_like_a_conv_weight() -> None:
    x = torch.arange(2 * 2 * 5, dtype=F64).view(1, 2, 2, 5)  # C=2, H=2, W=5: patches 2x2, one column dropped
    patches = patchify(x, (2, 2))
    assert patches.shape == (1, 1, 2, 8)
    assert patches[0, 0, 1].tolist() == [2.0, 3.0, 7.0, 8.0, 12.0, 13.0, 17.0, 18.0]  # (c, i, j) of patch (0, 1)


# --- what each new module keeps -----------------------------------------------------------------


@pytest.mark.parametrize("requires_grad", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_new_conversions_keep_dtype_requires_grad_and_own_their_parameters(dtype, requires_grad) -> None:
    torch.manual_seed(0)
    sources = {
        "conv1d": nn.Conv1d(4, 6, 1, groups=2, dtype=dtype),
        "conv3d": nn.Conv3d(2, 3, (2, 1, 2), dtype=dtype),
        "patch": nn.Conv2d(3, 5, 4, stride=4, dtype=dtype),
        "transposed": nn.ConvTranspose2d(2, 4, 3, stride=2, output_padding=1, groups=2, dtype=dtype),
        "linear": nn.Linear(6, 5, dtype=dtype),
    }
    for module in sources.values():
        module.requires_grad_(requires_grad)
    conversions = [
        (["conv1d"], conv1x1_to_linear(sources["conv1d"])),
        (["linear"], linear_to_conv1x1(sources["linear"], 3)),
        (["conv3d"], full_kernel_conv_to_linear(sources["conv3d"])),
        (["linear"], linear_to_full_kernel_conv(sources["linear"], (3, 2))),
        (["patch"], patch_embedding_to_linear(sources["patch"])),
        (["linear"], linear_to_patch_embedding(sources["linear"], (1, 2, 3))),
        (["transposed"], conv_to_dense_linear(sources["transposed"], (3, 2))),
    ]
    for names, result in conversions:
        source_storages = {p.untyped_storage().data_ptr() for n in names for p in sources[n].parameters()}
        for parameter in result.parameters():
            assert (parameter.dtype, parameter.requires_grad) == (dtype, requires_grad), names
            assert parameter.untyped_storage().data_ptr() not in source_storages, names


def test_the_property_modules_builder_matches_the_geometry() -> None:
    g = TRANSPOSED_CORNERS[1]
    source = module_of(g, 0)
    module = conv_module(Params(source.weight.detach(), source.bias.detach()), g)
    assert isinstance(module, nn.ConvTranspose3d) and conv_geometry(module, g.size) == g


# --- bad arguments: exact messages -----------------------------------------------------------------

_BAD_ARGUMENTS = [
    (
        lambda: conv1x1_to_linear(nn.Conv1d(2, 3, 3)),
        ValueError,
        "conv1x1_to_linear: conv.kernel_size must be (1,) for a pointwise Linear, got (3,)",
    ),
    (
        lambda: conv1x1_to_linear(nn.Conv3d(2, 3, 1, stride=(1, 2, 2))),
        ValueError,
        "conv1x1_to_linear: conv.stride must be (1, 1, 1) for a pointwise Linear, got (1, 2, 2); "
        "subsample the input first (x[:, :, ::1, ::2, ::2]) and convert a stride-1 conv",
    ),
    (
        lambda: conv1x1_to_linear(nn.ConvTranspose2d(2, 3, 1)),
        TypeError,
        "conv1x1_to_linear: conv must be a torch.nn.Conv1d, Conv2d or Conv3d, got ConvTranspose2d",
    ),
    (
        lambda: linear_to_conv1x1(nn.Linear(2, 3), 4),
        ValueError,
        "linear_to_conv1x1: rank must be 1, 2 or 3 (Conv1d, Conv2d or Conv3d), got 4",
    ),
    (
        lambda: full_kernel_conv_to_linear(nn.Conv3d(2, 3, 3, dilation=(1, 2, 1))),
        ValueError,
        "full_kernel_conv_to_linear: conv.dilation must be (1, 1, 1) when the kernel covers the whole input, "
        "got (1, 2, 1)",
    ),
    (
        lambda: linear_to_full_kernel_conv(nn.Linear(50, 3), (2, 5)),
        ValueError,
        "linear_to_full_kernel_conv: input_shape C*L must equal linear.in_features = 50, got (2, 5) with C*L = 10",
    ),
    (
        lambda: conv_to_dense_linear(nn.Conv1d(2, 3, 3), (4, 4)),
        ValueError,
        "conv_to_dense_linear: input_size must be a positive int L or a 1-tuple (L,), got (4, 4)",
    ),
    (
        lambda: conv_to_dense_linear(nn.Conv3d(2, 3, 3), (4, 4)),
        ValueError,
        "conv_to_dense_linear: input_size must be a triple of positive ints (D, H, W), got (4, 4)",
    ),
    (
        lambda: conv_to_dense_linear(nn.Conv1d(2, 3, 3), 2),
        ValueError,
        "conv_to_dense_linear: input_size 2 is too small for the conv: kernel (3,) with dilation (1,) does not fit "
        "input 2 padded by (0,): output would be 0",
    ),
    (
        lambda: conv_to_dense_linear(nn.ConvTranspose2d(2, 3, 3, padding=3), (2, 2)),
        ValueError,
        "conv_to_dense_linear: input_size (2, 2) is too small for the conv: transposed conv with kernel (3, 3), "
        "stride (1, 1), padding (3, 3) and dilation (1, 1) on input 2x2: output would be -2x-2",
    ),
    (
        lambda: fuse_linear_after_conv(nn.Conv1d(2, 8, 3), nn.Linear(70, 3), 5),
        ValueError,
        "fuse_linear_after_conv: linear.in_features must equal conv output features O*Lo = 24, got 70",
    ),
    (
        lambda: fuse_linear_after_conv(nn.ConvTranspose1d(2, 8, 3), nn.Linear(70, 3), 5),
        TypeError,
        "fuse_linear_after_conv: conv must be a torch.nn.Conv1d, Conv2d or Conv3d, got ConvTranspose1d",
    ),
    (
        lambda: patch_embedding_to_linear(nn.Conv2d(3, 8, 16, stride=8)),
        ValueError,
        "patch_embedding_to_linear: conv.stride must equal conv.kernel_size (16, 16) (non-overlapping patches), "
        "got (8, 8)",
    ),
    (
        lambda: patch_embedding_to_linear(nn.Conv2d(3, 8, 4, stride=4, padding=1)),
        ValueError,
        "patch_embedding_to_linear: conv.padding must be 0 or 'valid' for a patch embedding, got (1, 1)",
    ),
    (
        lambda: patch_embedding_to_linear(nn.Conv2d(3, 8, 4, stride=4, dilation=2)),
        ValueError,
        "patch_embedding_to_linear: conv.dilation must be (1, 1) for a patch embedding, got (2, 2)",
    ),
    (
        lambda: patch_embedding_to_linear(nn.Linear(3, 8)),
        TypeError,
        "patch_embedding_to_linear: conv must be a torch.nn.Conv1d, Conv2d or Conv3d, got Linear",
    ),
    (
        lambda: linear_to_patch_embedding(nn.Linear(48, 8), (3, 4, 5)),
        ValueError,
        "linear_to_patch_embedding: patch_shape C*H*W must equal linear.in_features = 48, got (3, 4, 5) "
        "with C*H*W = 60",
    ),
    (
        lambda: linear_to_patch_embedding(nn.Linear(48, 8), 48),
        ValueError,
        "linear_to_patch_embedding: patch_shape must be 2 to 4 positive ints: (C, L), (C, H, W) or (C, D, H, W), "
        "got 48",
    ),
    (
        lambda: patchify([1.0], (2, 2)),
        TypeError,
        "patchify: x must be a torch.Tensor, got list",
    ),
    (
        lambda: patchify(torch.zeros(1, 3, 5, 5), (2, 0)),
        ValueError,
        "patchify: patch must be 1 to 3 positive ints (one per spatial dimension), got (2, 0)",
    ),
    (
        lambda: patchify(torch.zeros(1, 3, 5, 5), (2,)),
        ValueError,
        "patchify: x must have 3 dimensions [N, C, *size] for a patch of 1, got 4",
    ),
    (
        lambda: patchify(torch.zeros(1, 3, 5, 5), (16, 16)),
        ValueError,
        "patchify: patch (16, 16) is larger than the input (5, 5)",
    ),
]


@pytest.mark.parametrize(("call", "error", "message"), _BAD_ARGUMENTS, ids=[m for _, _, m in _BAD_ARGUMENTS])
def test_bad_argument_is_rejected_with_exact_message(call, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        call()
