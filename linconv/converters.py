"""Converters between convolutions and Linear: the public API users call on their own models.

Conv1d, Conv2d and Conv3d (and, for the dense matrix, ConvTranspose1d/2d/3d). Each converter
returns a new module that computes the same linear map as its source, on the source's dtype and
device, with freshly allocated parameters (never views of the source's) that keep each source
parameter's ``requires_grad``. Requests that cannot be honoured raise ``ValueError`` (or
``TypeError`` for a wrong kind of argument) with a message that starts with the function's name,
names the argument, and says what was expected and what was got. Two requests are refused on purpose: complex (and
integer) parameters, whose imaginary part a float64 product would drop, and a dense matrix over
:data:`DENSE_MAX_NUMEL` entries unless ``max_numel`` allows it
(``conv_to_dense_linear(nn.Conv2d(16, 16, 3, padding=1), (64, 64))`` asks for 4.3 G entries,
17 GB in float32: a ValueError naming that, not the allocator's crash).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from linconv.core.geometry import ConvGeometry

__all__ = [
    "DENSE_MAX_NUMEL",
    "block_diagonal",
    "conv1x1_to_linear",
    "conv_geometry",
    "conv_to_dense_linear",
    "dense_conv_weight",
    "full_kernel_conv_to_linear",
    "fuse_linear_after_conv",
    "fused_linear_parameters",
    "linear_to_conv1x1",
    "linear_to_full_kernel_conv",
    "linear_to_patch_embedding",
    "patch_embedding_to_linear",
    "patchify",
]

_CONVS: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_TRANSPOSED: dict[int, type[nn.Module]] = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_CONV_KINDS = "torch.nn.Conv1d, Conv2d or Conv3d"
_ANY_KINDS = "torch.nn.Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d or ConvTranspose3d"
# How each rank's input size and (channels + size) shape are named in messages.
_SIZE_WHAT = {
    1: "a positive int L or a 1-tuple (L,)",
    2: "a pair of positive ints (H, W)",
    3: "a triple of positive ints (D, H, W)",
}
_PRODUCT = {1: "C*L", 2: "C*H*W", 3: "C*D*H*W"}
_OUT_PRODUCT = {1: "O*Lo", 2: "O*Ho*Wo", 3: "O*Do*Ho*Wo"}
_SHAPE_WHAT = "2 to 4 positive ints: (C, L), (C, H, W) or (C, D, H, W)"


# Most entries of a dense matrix the converters build unless ``max_numel=`` says otherwise: 2**28
# entries are 1 GiB in float32 and 2 GiB in float64 (the dtype fusion forms its product in), which
# a workstation holds; 4x the largest dense matrix a property may build (LARGEST_MAX_NUMEL).
DENSE_MAX_NUMEL = 2**28


# --- argument checks ------------------------------------------------------------------------


def _check_type(value: object, kind: type, name: str, caller: str) -> None:
    if not isinstance(value, kind):
        module = "torch.nn" if issubclass(kind, nn.Module) else kind.__module__
        raise TypeError(f"{caller}: {name} must be a {module}.{kind.__name__}, got {type(value).__name__}")


def _check_real(tensor: torch.Tensor | None, name: str, caller: str) -> None:
    """Real floating point only: fusion forms products in float64, which would drop an imaginary
    part (a complex Conv2d + Linear fused to a Linear off by 100%), and an integer Linear cannot run."""
    if tensor is not None and not tensor.dtype.is_floating_point:
        raise ValueError(
            f"{caller}: {name}.dtype must be a real floating-point dtype (float16, bfloat16, float32, float64), "
            f"got {tensor.dtype}"
        )


def _check_module(module: object, kind: type, name: str, caller: str) -> None:
    _check_type(module, kind, name, caller)
    _check_real_parameters(module, name, caller)


def _check_real_parameters(module: object, name: str, caller: str) -> None:
    _check_real(module.weight, f"{name}.weight", caller)  # type: ignore[attr-defined]
    _check_real(module.bias, f"{name}.bias", caller)  # type: ignore[attr-defined]


def _check_dense_budget(geometry: ConvGeometry, dtype: torch.dtype, max_numel: int | None, caller: str) -> None:
    """Refuse, with its size, a dense matrix over the budget before anything is allocated."""
    budget = DENSE_MAX_NUMEL if max_numel is None else max_numel
    if not _is_positive_int(budget):
        raise ValueError(f"{caller}: max_numel must be a positive int or None, got {max_numel!r}")
    numel = geometry.dense_numel()
    if numel > budget:
        size = numel * dtype.itemsize
        raise ValueError(
            f"{caller}: the dense matrix would have {geometry.out_features:,} x {geometry.in_features:,} = "
            f"{numel:,} entries ({size / 1e9:.1f} GB in {str(dtype).removeprefix('torch.')}), over max_numel = "
            f"{budget:,}"
            + (" (DENSE_MAX_NUMEL)" if max_numel is None else "")
            + "; pass a larger max_numel to build it"
        )


def _check_conv(conv: object, caller: str, *, transposed: bool = False) -> int:
    """The rank of ``conv``, a Conv1d/2d/3d (or, with ``transposed``, also a ConvTranspose1d/2d/3d)."""
    kinds = (*_CONVS.values(), *(_TRANSPOSED.values() if transposed else ()))
    if not isinstance(conv, kinds):
        raise TypeError(
            f"{caller}: conv must be a {_ANY_KINDS if transposed else _CONV_KINDS}, got {type(conv).__name__}"
        )
    _check_real_parameters(conv, "conv", caller)
    return len(conv.kernel_size)  # type: ignore[union-attr]


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _positive_ints(value: object, count: int, name: str, what: str, caller: str) -> tuple[int, ...]:
    if not (isinstance(value, (tuple, list)) and len(value) == count and all(map(_is_positive_int, value))):
        raise ValueError(f"{caller}: {name} must be {what}, got {value!r}")
    return tuple(value)


def _input_size(value: object, rank: int, caller: str) -> tuple[int, ...]:
    if rank == 1 and _is_positive_int(value):
        return (value,)  # type: ignore[return-value]
    return _positive_ints(value, rank, "input_size", _SIZE_WHAT[rank], caller)


def _shape(value: object, name: str, caller: str) -> tuple[int, ...]:
    """A (channels, *spatial) shape of 2 to 4 positive ints."""
    if not (isinstance(value, (tuple, list)) and 2 <= len(value) <= 4 and all(map(_is_positive_int, value))):
        raise ValueError(f"{caller}: {name} must be {_SHAPE_WHAT}, got {value!r}")
    return tuple(value)


def _ones(rank: int) -> tuple[int, ...]:
    return (1,) * rank


def _has_no_padding(conv: nn.Module) -> bool:
    if conv.padding == "valid":
        return True
    if conv.padding == "same":  # torch pads d*(k-1) in total, nothing only for a 1x1 kernel
        return set(conv.kernel_size) == {1}
    return set(conv.padding) == {0}


def _geometry(
    conv: nn.Module, input_size: object, caller: str, batch: int = 1, *, transposed: bool = False
) -> ConvGeometry:
    rank = _check_conv(conv, caller, transposed=transposed)
    size = _input_size(input_size, rank, caller)
    if not _is_positive_int(batch):
        raise ValueError(f"{caller}: batch must be a positive int, got {batch!r}")
    padding = conv.padding if isinstance(conv.padding, str) else tuple(conv.padding)
    try:
        return ConvGeometry(
            batch=batch,
            in_channels=conv.in_channels,
            out_channels=conv.out_channels,
            size=size,
            kernel=tuple(conv.kernel_size),
            stride=tuple(conv.stride),
            padding=padding,
            dilation=tuple(conv.dilation),
            groups=conv.groups,
            padding_mode=conv.padding_mode,
            bias=conv.bias is not None,
            transposed=bool(conv.transposed),
            output_padding=tuple(conv.output_padding),
        )
    except ValueError as exc:
        # A module torch built has a valid kernel, stride, groups and padding mode: what can
        # still fail is the input size (output < 1 element, or reflect/circular padding too wide).
        shown = size[0] if rank == 1 and _is_positive_int(input_size) else tuple(size)
        raise ValueError(f"{caller}: input_size {shown} is too small for the conv: {exc}") from exc


# --- building modules -----------------------------------------------------------------------


def _parameter(data: torch.Tensor, source: torch.Tensor | tuple[torch.Tensor | None, ...]) -> nn.Parameter:
    """Wrap new data, requiring grad when the (or any) source parameter does."""
    sources = source if isinstance(source, tuple) else (source,)
    return nn.Parameter(data, requires_grad=any(s is not None and s.requires_grad for s in sources))


def _linear(weight: nn.Parameter, bias: nn.Parameter | None) -> nn.Linear:
    out_features, in_features = weight.shape
    # Built on "meta" so that no default init runs (a dense weight can hold millions of entries).
    linear = nn.Linear(in_features, out_features, bias=bias is not None, device="meta")
    linear.weight = weight
    if bias is not None:
        linear.bias = bias
    return linear


def _conv(weight: nn.Parameter, bias: nn.Parameter | None, stride: tuple[int, ...] | None = None) -> nn.Module:
    """The Conv{1,2,3}d of ``weight`` ``[O, C, *kernel]`` (rank from its dimensions)."""
    out_channels, in_channels, *kernel = weight.shape
    module = _CONVS[len(kernel)]
    conv = module(in_channels, out_channels, tuple(kernel), stride=stride or 1, bias=bias is not None, device="meta")
    conv.weight = weight
    if bias is not None:
        conv.bias = bias
    return conv


def _copy(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().clone(memory_format=torch.contiguous_format)


def block_diagonal(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """``[O, C/groups, ...]`` grouped weight -> ``[O, C*...]`` dense weight, zero outside each output
    channel's group (block-diagonal). Differentiable; shares storage with ``weight`` when groups == 1."""
    out_channels = weight.shape[0]
    blocks = weight.reshape(groups, out_channels // groups, -1)
    if groups == 1:
        return blocks.reshape(out_channels, -1)
    width = blocks.shape[-1]
    full = blocks.new_zeros(groups, out_channels // groups, groups, width)
    full.diagonal(dim1=0, dim2=2).copy_(blocks.permute(1, 2, 0))
    return full.view(out_channels, groups * width)


# --- the dense ("Toeplitz") matrix of a conv ------------------------------------------------


def _source(position: int, size: int, padding_mode: str) -> int:
    """Input index that padding mode ``padding_mode`` reads at ``position`` (outside ``[0, size)``)."""
    if padding_mode == "reflect":  # mirror without repeating the edge, as F.pad(mode="reflect")
        position = -position if position < 0 else position
        return 2 * (size - 1) - position if position >= size else position
    if padding_mode == "circular":
        return position % size
    # replicate; also where a zero-padding tap is parked (it adds 0.0, see dense_conv_weight)
    return min(max(position, 0), size - 1)


def _axis_taps(
    size: int, out: int, kernel: int, stride: int, dilation: int, before: int, padding_mode: str
) -> tuple[list[int], list[bool], bool]:
    """One spatial axis: the input index each (output position, tap) reads, ordered output-major.

    Also whether each reads the input (False only for zero padding) and whether, for every output
    position, its taps read distinct inputs (then no two taps of one row share a column).
    """
    sources, reads = [], []
    for i in range(out):
        for p in range(kernel):
            position = i * stride + p * dilation - before
            inside = 0 <= position < size
            sources.append(position if inside else _source(position, size, padding_mode))
            reads.append(inside or padding_mode != "zeros")
    distinct = len({(n // kernel, s) for n, s in enumerate(sources)}) == len(sources)
    return sources, reads, distinct


def dense_conv_weight(weight: torch.Tensor, geometry: ConvGeometry, *, max_numel: int | None = None) -> torch.Tensor:
    """The dense matrix ``D`` of the conv (bias excluded) described by ``geometry`` with ``weight``.

    ``D`` has shape ``[geometry.out_features, geometry.in_features]`` and
    ``F.linear(x.flatten(1), D).view(geometry.output_shape)`` equals the conv of ``x`` for every
    stride, padding (pairs, ``'same'``, ``'valid'``), dilation, groups and padding mode. Row
    ``o*Ho*Wo + i*Wo + j`` holds output ``(o, i, j)``; column ``c*H*W + h*W + w`` input ``(c, h, w)``.

    Built by index arithmetic, not by running the conv: the column that tap ``(p, q)`` of input
    channel ``c`` reads for output ``(i, j)`` is broadcast over ``(group, i, j, c, p, q)``, and one
    scatter along the rows puts each weight there. Where a padding mode maps several taps of one
    output onto the same input, their weights add up; a tap that reads zero padding adds ``0.0``.
    The result keeps ``weight``'s dtype and device and is differentiable with respect to it.

    For a transposed conv (``geometry.transposed``) ``D`` is the transpose of its adjoint conv's
    matrix (:meth:`ConvGeometry.adjoint`): a transposed conv is the input gradient of that conv.

    ValueError (naming its size) when ``D`` would have more than ``max_numel`` entries
    (default :data:`DENSE_MAX_NUMEL`).
    """
    caller = "dense_conv_weight"
    _check_type(weight, torch.Tensor, "weight", caller)
    _check_type(geometry, ConvGeometry, "geometry", caller)
    # a geometry changed after construction (linconv.relations.shape_contract) is refused here, not
    # turned into an empty matrix: the index arithmetic below trusts it
    geometry.validate()
    _check_real(weight, "weight", caller)
    _check_dense_budget(geometry, weight.dtype, max_numel, caller)
    if tuple(weight.shape) != geometry.weight_shape:
        raise ValueError(
            f"{caller}: weight.shape must equal geometry.weight_shape {geometry.weight_shape}, "
            f"got {tuple(weight.shape)}"
        )
    if geometry.transposed:
        return _dense_transposed_weight(weight, geometry)
    rank, device = geometry.rank, weight.device
    out_channels, in_per_group = geometry.weight_shape[:2]
    groups, size, out, kernel = geometry.groups, geometry.size, geometry.output_size(), geometry.kernel
    axes = [
        _axis_taps(n, o, k, s, d, before, geometry.padding_mode)
        for n, o, k, s, d, (before, _) in zip(
            size, out, kernel, geometry.stride, geometry.dilation, geometry.pads(), strict=True
        )
    ]
    positions, reduction = math.prod(out), geometry.reduction_length()
    per_group = (groups, out_channels // groups, positions, reduction)

    # Column read by (group, output position o_1..o_r, c_in_group, tap k_1..k_r): c*prod(size) +
    # sum_d source_d * prod(size[d+1:]). It does not depend on the output channel within a group,
    # so it is expanded (stride 0), never materialised, over that.
    def on_axis(values: list, d: int) -> torch.Tensor:
        shape = [1] * (2 * rank + 1)
        shape[d], shape[rank + 1 + d] = out[d], kernel[d]
        return torch.tensor(values, device=device).view(shape)

    columns = torch.arange(groups * in_per_group, device=device).view(groups, *[1] * rank, in_per_group, *[1] * rank)
    columns = columns * math.prod(size)
    for d, (sources, _, _) in enumerate(axes):
        columns = columns + on_axis(sources, d).unsqueeze(0) * math.prod(size[d + 1 :])
    columns = columns.reshape(groups, 1, positions, reduction).expand(per_group)

    flat_weight = weight.reshape(out_channels, reduction)
    if all(all(reads) for _, reads, _ in axes):
        values = flat_weight.reshape(groups, -1, 1, reduction).expand(per_group)
    else:
        # A tap on zero padding is parked on the nearest edge column, which a real tap may also write
        # (the rows then accumulate), and takes its value from an appended zero column: adding 0.0
        # changes nothing, where weight * mask would turn an inf weight into nan.
        reads = torch.ones((1,) * (2 * rank + 1), dtype=torch.bool, device=device)
        for d, (_, axis_reads, _) in enumerate(axes):
            reads = reads & on_axis(axis_reads, d)
        taps = torch.arange(reduction, device=device).view(1, *[1] * rank, in_per_group, *kernel)
        taps = torch.where(reads, taps, reduction).reshape(-1)
        padded = torch.cat([flat_weight, flat_weight.new_zeros(out_channels, 1)], dim=1)
        values = padded.index_select(1, taps).view(per_group)

    dense = torch.zeros((*per_group[:3], geometry.in_features), dtype=weight.dtype, device=device)
    if all(distinct for _, _, distinct in axes):
        # No two taps of a row share a column: plain assignment, measured ~20% faster than
        # scatter_add_ (113k entries, one CPU thread).
        dense.scatter_(3, columns, values)
    else:
        dense.scatter_add_(3, columns, values)
    return dense.view(geometry.out_features, geometry.in_features)


def _dense_transposed_weight(weight: torch.Tensor, geometry: ConvGeometry) -> torch.Tensor:
    adjoint = geometry.adjoint()
    dense = dense_conv_weight(weight, adjoint)  # [in_channels * prod(adjoint output), out_features]
    reached = adjoint.output_size()
    if reached != geometry.size:
        # output_padding >= stride: the adjoint's output has extra trailing positions, which the
        # transposed conv's input does not have (their gradient is zero): keep the others' rows
        rows = torch.arange(adjoint.out_features, device=weight.device).view(adjoint.out_channels, *reached)
        rows = rows[(slice(None), *(slice(0, n) for n in geometry.size))].reshape(-1)
        dense = dense.index_select(0, rows)
    return dense.t().contiguous()


# --- public converters ----------------------------------------------------------------------


def conv_geometry(conv: nn.Module, input_size: int | tuple[int, ...], batch: int = 1) -> ConvGeometry:
    """The :class:`ConvGeometry` of ``conv`` (Conv1d/2d/3d or ConvTranspose1d/2d/3d) applied to
    ``[batch, C, *input_size]``.

    Reads kernel, stride, padding (ints or ``'same'`` / ``'valid'``), dilation, groups, padding
    mode, whether there is a bias and, for a transposed conv, its output padding from the module.
    ``input_size`` has one int per spatial dimension (a Conv1d also takes a bare int).
    """
    return _geometry(conv, input_size, "conv_geometry", batch, transposed=True)


def conv1x1_to_linear(conv: nn.Module) -> nn.Linear:
    """A pointwise ``ConvNd(C, O, 1)`` (N = 1, 2, 3) -> ``Linear(C, O)`` applied over the channel axis.

    ``linear(x.movedim(1, -1)).movedim(-1, 1)`` equals ``conv(x)`` (for a Conv2d:
    ``linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)``; for a Conv1d on a sequence stored
    ``[N, L, C]``, ``linear`` applies to it as it is). The conv needs a kernel of ones, no padding
    and stride 1 (any dilation); with groups the weight is block-diagonal.
    """
    caller = "conv1x1_to_linear"
    rank = _check_conv(conv, caller)
    ones = _ones(rank)
    if tuple(conv.kernel_size) != ones:
        raise ValueError(f"{caller}: conv.kernel_size must be {ones} for a pointwise Linear, got {conv.kernel_size}")
    if not _has_no_padding(conv):
        raise ValueError(f"{caller}: conv.padding must be 0 or 'valid' for a pointwise Linear, got {conv.padding!r}")
    if tuple(conv.stride) != ones:
        steps = ", ".join(f"::{s}" for s in conv.stride)
        raise ValueError(
            f"{caller}: conv.stride must be {ones} for a pointwise Linear, got {conv.stride}; "
            f"subsample the input first (x[:, :, {steps}]) and convert a stride-1 conv"
        )
    weight = _parameter(_copy(block_diagonal(conv.weight.detach(), conv.groups)), conv.weight)
    bias = None if conv.bias is None else _parameter(_copy(conv.bias), conv.bias)
    return _linear(weight, bias)


def linear_to_conv1x1(linear: nn.Linear, rank: int = 2) -> nn.Module:
    """``Linear(C, O)`` -> ``ConvNd(C, O, 1)`` (N = ``rank``: 1, 2 or 3; default a Conv2d) that
    applies it at every position; inverse of :func:`conv1x1_to_linear`."""
    caller = "linear_to_conv1x1"
    _check_module(linear, nn.Linear, "linear", caller)
    if rank not in _CONVS or isinstance(rank, bool):
        raise ValueError(f"{caller}: rank must be 1, 2 or 3 (Conv1d, Conv2d or Conv3d), got {rank!r}")
    out_features, in_features = linear.weight.shape
    weight = _parameter(_copy(linear.weight).view(out_features, in_features, *_ones(rank)), linear.weight)
    bias = None if linear.bias is None else _parameter(_copy(linear.bias), linear.bias)
    return _conv(weight, bias)


def full_kernel_conv_to_linear(conv: nn.Module) -> nn.Linear:
    """A conv (Conv1d/2d/3d) whose kernel covers the whole input -> ``Linear(C*prod(kernel), O)``
    on ``x.flatten(1)``.

    For input ``[N, C, *kernel]`` the conv gives ``[N, O, 1, ...]`` and ``linear(x.flatten(1))``
    gives its ``.view(N, O)``. The conv needs no padding and dilation 1; the stride does not
    matter. With groups the weight is block-diagonal in the flattened ``(c, *spatial)`` order.
    """
    caller = "full_kernel_conv_to_linear"
    rank = _check_conv(conv, caller)
    if not _has_no_padding(conv):
        raise ValueError(
            f"{caller}: conv.padding must be 0 or 'valid' when the kernel covers the whole input, got {conv.padding!r}"
        )
    if tuple(conv.dilation) != _ones(rank):
        raise ValueError(
            f"{caller}: conv.dilation must be {_ones(rank)} when the kernel covers the whole input, got {conv.dilation}"
        )
    weight = _parameter(_copy(block_diagonal(conv.weight.detach(), conv.groups)), conv.weight)
    bias = None if conv.bias is None else _parameter(_copy(conv.bias), conv.bias)
    return _linear(weight, bias)


def _linear_to_conv(linear: nn.Linear, input_shape: object, caller: str, *, patch: bool) -> nn.Module:
    _check_module(linear, nn.Linear, "linear", caller)
    name = "patch_shape" if patch else "input_shape"
    shape = _shape(input_shape, name, caller)
    in_features = linear.weight.shape[1]
    product = _PRODUCT[len(shape) - 1]
    if math.prod(shape) != in_features:
        raise ValueError(
            f"{caller}: {name} {product} must equal linear.in_features = "
            f"{in_features}, got {shape} with {product} = {math.prod(shape)}"
        )
    out_features = linear.weight.shape[0]
    weight = _parameter(_copy(linear.weight).view(out_features, *shape), linear.weight)
    bias = None if linear.bias is None else _parameter(_copy(linear.bias), linear.bias)
    return _conv(weight, bias, stride=shape[1:] if patch else None)


def linear_to_full_kernel_conv(linear: nn.Linear, input_shape: tuple[int, ...]) -> nn.Module:
    """``Linear(C*prod(size), O)`` -> ``ConvNd(C, O, size)`` on input ``[N, *input_shape]``, where
    ``input_shape`` is ``(C, L)``, ``(C, H, W)`` or ``(C, D, H, W)`` (a Conv1d, Conv2d or Conv3d).

    Inverse of :func:`full_kernel_conv_to_linear`: ``conv(x).view(N, O)`` equals
    ``linear(x.flatten(1))``.
    """
    return _linear_to_conv(linear, input_shape, "linear_to_full_kernel_conv", patch=False)


def conv_to_dense_linear(
    conv: nn.Module, input_size: int | tuple[int, ...], *, max_numel: int | None = None
) -> nn.Linear:
    """Any conv or transposed conv (Conv1d/2d/3d, ConvTranspose1d/2d/3d) -> ``Linear(C*prod(input_size),
    O*prod(output size))`` on ``x.flatten(1)`` for input of spatial size ``input_size``.

    ``linear(x.flatten(1)).view(N, O, *output_size)`` equals ``conv(x)``; the weight is
    :func:`dense_conv_weight`, the bias each output channel's bias repeated over its output positions.
    ValueError (naming its size) when the weight would have more than ``max_numel`` entries
    (default :data:`DENSE_MAX_NUMEL`).
    """
    caller = "conv_to_dense_linear"
    geometry = _geometry(conv, input_size, caller, transposed=True)
    _check_dense_budget(geometry, conv.weight.dtype, max_numel, caller)
    weight = _parameter(dense_conv_weight(conv.weight.detach(), geometry, max_numel=max_numel), conv.weight)
    bias = None
    if conv.bias is not None:
        positions = math.prod(geometry.output_size())
        bias = _parameter(conv.bias.detach().repeat_interleave(positions), conv.bias)
    return _linear(weight, bias)


def patchify(x: torch.Tensor, patch: tuple[int, ...]) -> torch.Tensor:
    """``[N, C, *size]`` -> ``[N, *grid, C*prod(patch)]``: the non-overlapping patches of ``x``, each
    flattened in ``(c, *position in patch)`` order (the order of a conv weight's ``flatten(1)``).

    ``grid = size // patch``: a remainder at the end of a dimension is dropped, as a conv with
    stride == kernel drops it. Differentiable; a copy (a view only when nothing moves).
    """
    caller = "patchify"
    _check_type(x, torch.Tensor, "x", caller)
    if not (isinstance(patch, (tuple, list)) and 1 <= len(patch) <= 3 and all(map(_is_positive_int, patch))):
        raise ValueError(f"{caller}: patch must be 1 to 3 positive ints (one per spatial dimension), got {patch!r}")
    rank = len(patch)
    if x.dim() != rank + 2:
        raise ValueError(
            f"{caller}: x must have {rank + 2} dimensions [N, C, *size] for a patch of {rank}, got {x.dim()}"
        )
    grid = [n // p for n, p in zip(x.shape[2:], patch, strict=True)]
    if min(grid) < 1:
        raise ValueError(f"{caller}: patch {tuple(patch)} is larger than the input {tuple(x.shape[2:])}")
    cropped = x[(slice(None), slice(None), *(slice(0, g * p) for g, p in zip(grid, patch, strict=True)))]
    # [N, C, g1, p1, g2, p2, ...] -> [N, g1, g2, ..., C, p1, p2, ...]
    split = cropped.reshape(x.shape[0], x.shape[1], *[v for g, p in zip(grid, patch, strict=True) for v in (g, p)])
    order = (0, *range(2, 2 + 2 * rank, 2), 1, *range(3, 3 + 2 * rank, 2))
    # the patch length spelled out (never -1): an empty batch has no size to infer it from
    return split.permute(order).reshape(x.shape[0], *grid, x.shape[1] * math.prod(patch))


def patch_embedding_to_linear(conv: nn.Module) -> nn.Linear:
    """A patch embedding ``ConvNd(C, O, p, stride=p)`` (no padding, no dilation) ->
    ``Linear(C*prod(p), O)`` on :func:`patchify` ``(x, p)``.

    ``linear(patchify(x, p)).movedim(-1, 1)`` equals ``conv(x)`` (``[N, O, *grid]``), for any
    input size: the conv and :func:`patchify` both drop a remainder. With groups the weight is
    block-diagonal.
    """
    caller = "patch_embedding_to_linear"
    rank = _check_conv(conv, caller)
    if tuple(conv.stride) != tuple(conv.kernel_size):
        raise ValueError(
            f"{caller}: conv.stride must equal conv.kernel_size {tuple(conv.kernel_size)} (non-overlapping patches), "
            f"got {conv.stride}"
        )
    if not _has_no_padding(conv):
        raise ValueError(f"{caller}: conv.padding must be 0 or 'valid' for a patch embedding, got {conv.padding!r}")
    if tuple(conv.dilation) != _ones(rank):
        raise ValueError(f"{caller}: conv.dilation must be {_ones(rank)} for a patch embedding, got {conv.dilation}")
    weight = _parameter(_copy(block_diagonal(conv.weight.detach(), conv.groups)), conv.weight)
    bias = None if conv.bias is None else _parameter(_copy(conv.bias), conv.bias)
    return _linear(weight, bias)


def linear_to_patch_embedding(linear: nn.Linear, patch_shape: tuple[int, ...]) -> nn.Module:
    """``Linear(C*prod(p), O)`` on patches -> the patch embedding ``ConvNd(C, O, p, stride=p)``, where
    ``patch_shape`` is ``(C, *p)`` (2 to 4 ints); inverse of :func:`patch_embedding_to_linear`."""
    return _linear_to_conv(linear, patch_shape, "linear_to_patch_embedding", patch=True)


def fused_linear_parameters(
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    head_weight: torch.Tensor,
    head_bias: torch.Tensor | None,
    geometry: ConvGeometry,
    *,
    max_numel: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weight and bias of the one Linear equal to ``F.linear(conv(x).flatten(1), head_weight, head_bias)``.

    ``head_weight @ D`` and ``head_weight @ bias_repeated + head_bias`` (``D`` from
    :func:`dense_conv_weight`; either bias may be None), formed in float64 (on the CPU for MPS,
    which has no float64) and rounded once to ``head_weight``'s dtype, on its device. Stays
    differentiable with respect to all four tensors. ValueError when a tensor is complex or ``D``
    would have more than ``max_numel`` entries (default :data:`DENSE_MAX_NUMEL`).
    """
    caller = "fused_linear_parameters"
    for name, tensor in (("weight", weight), ("bias", bias), ("head_weight", head_weight), ("head_bias", head_bias)):
        _check_real(tensor, name, caller)
    _check_dense_budget(geometry, torch.float64, max_numel, caller)
    device, dtype = head_weight.device, head_weight.dtype
    exact = {"device": torch.device("cpu") if device.type == "mps" else device, "dtype": torch.float64}
    outer = head_weight.to(**exact)
    fused_weight = outer @ dense_conv_weight(weight.to(**exact), geometry, max_numel=max_numel)
    fused_bias = None
    if bias is not None:
        fused_bias = outer @ bias.to(**exact).repeat_interleave(math.prod(geometry.output_size()))
    if head_bias is not None:
        fused_bias = head_bias.to(**exact) if fused_bias is None else fused_bias + head_bias.to(**exact)
    return (
        fused_weight.to(device=device, dtype=dtype),
        None if fused_bias is None else fused_bias.to(device=device, dtype=dtype),
    )


def fuse_linear_after_conv(
    conv: nn.Module, linear: nn.Linear, input_size: int | tuple[int, ...], *, max_numel: int | None = None
) -> nn.Linear:
    """``linear(conv(x).flatten(1))`` with nothing in between (a Conv1d/2d/3d) -> one Linear on ``x.flatten(1)``.

    Weight ``linear.weight @ D`` and bias ``linear.weight @ conv_bias_repeated + linear.bias``
    (``D`` from :func:`dense_conv_weight`), either bias may be missing. The products are taken in
    float64 (on the CPU for MPS, which has no float64) and rounded once to the modules' dtype.
    The fused weight requires grad if either source weight does; the bias likewise over its sources.
    ValueError (naming its size) when the conv's dense matrix would have more than ``max_numel``
    entries (default :data:`DENSE_MAX_NUMEL`); complex modules are refused (see the module docstring).
    """
    caller = "fuse_linear_after_conv"
    _check_conv(conv, caller)
    _check_module(linear, nn.Linear, "linear", caller)
    geometry = _geometry(conv, input_size, caller)
    if linear.weight.shape[1] != geometry.out_features:
        raise ValueError(
            f"{caller}: linear.in_features must equal conv output features {_OUT_PRODUCT[geometry.rank]} = "
            f"{geometry.out_features}, "
            f"got {linear.weight.shape[1]}"
        )
    _check_dense_budget(geometry, torch.float64, max_numel, caller)
    dtype, device = linear.weight.dtype, linear.weight.device
    if conv.weight.dtype != dtype:
        raise ValueError(f"{caller}: linear.weight.dtype must equal conv.weight.dtype {conv.weight.dtype}, got {dtype}")
    if conv.weight.device != device:
        raise ValueError(
            f"{caller}: linear.weight.device must equal conv.weight.device {conv.weight.device}, got {device}"
        )

    fused_weight, fused_bias = fused_linear_parameters(
        conv.weight.detach(),
        None if conv.bias is None else conv.bias.detach(),
        linear.weight.detach(),
        None if linear.bias is None else linear.bias.detach(),
        geometry,
        max_numel=max_numel,
    )
    weight = _parameter(fused_weight, (linear.weight, conv.weight))
    bias = None
    if fused_bias is not None:
        sources = (linear.bias, conv.bias, linear.weight if conv.bias is not None else None)
        bias = _parameter(fused_bias, sources)
    return _linear(weight, bias)
