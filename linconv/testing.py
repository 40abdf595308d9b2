"""linconv.testing: the suite's error model in your own tests (public API).

Two modules that compute the same linear map in float32 never agree bit for bit: the sums run in
a different order. Whether a difference is rounding or a bug depends on the length K of the sums
and on the magnitude ``|W| (*) |x| + |b|`` of what is summed (cancellation makes ``|y|`` a poor
guide). These assertions compute both, compare against a float64 reference, and say how far
inside (or outside) the calibrated bound a result is:

- :func:`assert_same_map`: ``module_b`` computes ``module_a``'s map on ``x``, within rounding;
- :func:`assert_within_bound`: one tensor against a reference, given the magnitude and K
  (:func:`magnitude` and :func:`reduction_length` compute them for a module);
- both return a :class:`Verdict` (error, bound, error/bound) and raise ``AssertionError`` with a
  readable message when the bound is exceeded.

The bound is the suite's error model (linconv.errormodel; docs/calibration.md) in its general
form: ``|y_hat - y| <= u_out |y| + C (u_mid + u_in + sqrt(K) u_acc) M``, every intermediate
rounding charged against ``M`` (the suite's own formulations state what they round and get the
sharper per-element charge, linconv.errormodel.intermediates; a module's internals are not
known here). It holds for maps built of
Conv/Linear layers and operations that only move or average values (flatten, view, permute,
pooling); a module with other parameters (BatchNorm, LayerNorm, embeddings) is refused: fold it
into the conv first. An activation between layers makes a different map, which is what the
check then reports.

The pytest plugin (:mod:`linconv.pytest_plugin`, installed with linconv) offers the ``linconv``
fixture, which runs these and summarises every check of the run.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from linconv.errormodel import Precision, bound, precision_of
from linconv.errormodel.rounding import (
    half_accumulation,
    input_unit_roundoff,
    reduced_precision_partial_sums,
    underflow_scale,
)
from linconv.measure import Comparison, compare, float64_cpu

__all__ = ["Verdict", "assert_same_map", "assert_within_bound", "magnitude", "precision_for", "reduction_length"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_LINEAR_LAYERS = (nn.Linear, *_CONVS)


@dataclass(frozen=True)
class Verdict:
    """The worst element of one comparison: its error, the bound, and error / bound (<= 1: rounding)."""

    what: str
    ratio: float
    error: float
    bound: float
    index: tuple[int, ...]
    value: float
    reference: float
    reduction_length: int
    dtype: str
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem and self.ratio <= 1.0

    def describe(self) -> str:
        if self.problem:
            return f"{self.what}: {self.problem}"
        word = "within" if self.ok else "OUTSIDE"
        return (
            f"{self.what}: {word} the error bound: worst at index {list(self.index)}: got {self.value!r}, "
            f"reference {self.reference!r}, |error| {self.error:.3e} vs bound {self.bound:.3e} "
            f"(error/bound {self.ratio:.3g}; K={self.reduction_length}, {self.dtype})"
        )


def _verdict(what: str, c: Comparison, k: int, dtype: torch.dtype) -> Verdict:
    name = str(dtype).removeprefix("torch.")
    return Verdict(what, c.ratio, c.error, c.bound, c.index, c.value, c.reference, k, name, c.problem)


def precision_for(
    dtype: torch.dtype, device: str | torch.device = "cpu", *, scale: float = 1.0, reduction_length: int = 0
) -> Precision:
    """The error-model parameters of a Conv/Linear result in ``dtype`` on ``device`` under the
    precision flags in force, as the suite's formulations get them (errormodel.rounding): TF32 /
    bf16 input rounding of float32 conv and matmul, and, given ``reduction_length``, the partial
    sums a half-precision cuBLAS GEMM may add in its output dtype (or a float16 accumulation)."""
    device_type = torch.device(device).type
    ops = ("conv", "matmul")
    rounding = 0.0
    if dtype == torch.float32 and device_type in ("cpu", "cuda", "mps"):
        rounding = max(input_unit_roundoff(device_type, op) for op in ops)
    partial_sums, storage_accumulation = 0, False
    if reduction_length and device_type == "cuda":
        partial_sums = max(reduced_precision_partial_sums(device_type, op, dtype, reduction_length) for op in ops)
        storage_accumulation = any(half_accumulation(device_type, op, dtype) for op in ops)
    return precision_of(
        dtype,
        input_rounding=rounding,
        storage_accumulation=storage_accumulation,
        storage_partial_sums=partial_sums,
        underflow_scale=max(1.0, scale),
    )


def _check_module(module: object, name: str) -> nn.Module:
    if not isinstance(module, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(module).__name__}")
    for path, sub in module.named_modules():
        if isinstance(sub, _LINEAR_LAYERS):
            continue
        own = [p for p, _ in sub.named_parameters(recurse=False)]
        if own:
            where = f"{name}.{path}" if path else name
            raise ValueError(
                f"{name}: every parameter must belong to a Conv or Linear layer (the error model is that of a "
                f"linear map), but {where} ({type(sub).__name__}) has {own}; fold it into the conv first"
            )
    return module


def _float64(module: nn.Module, absolute: bool) -> nn.Module:
    copied = copy.deepcopy(module).to(device="cpu", dtype=torch.float64)
    if absolute:
        with torch.no_grad():
            for p in copied.parameters():
                p.abs_()
    return copied


def _run(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module(x)


def _run64(module: nn.Module, x: torch.Tensor, *, absolute: bool, name: str) -> torch.Tensor:
    """``module`` (a deep copy, in float64 on the CPU) on ``x`` (a float64 CPU copy)."""
    try:
        return _run(_float64(module, absolute), float64_cpu(x).abs() if absolute else float64_cpu(x))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{name}: running it in float64 on the CPU (a deep copy, .to(torch.float64)) raised {first!r}: every "
            f"layer it uses must be a registered submodule (an attribute of an nn.Module), not a closure or a global"
        ) from None


def magnitude(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``M = |W| (*) |x| + |b|``: ``module`` with every parameter replaced by its absolute value, on
    ``|x|``, in float64 on the CPU (the scale of the rounding error of each output)."""
    _check_module(module, "module")
    return _run64(module, x, absolute=True, name="module")


def _k(m: nn.Module) -> int:
    if isinstance(m, nn.Linear):
        return m.in_features
    return m.in_channels // m.groups * math.prod(m.kernel_size)


def reduction_length(module: nn.Module, x: torch.Tensor) -> int:
    """K: the terms of each output's sum, added over the Conv/Linear calls ``module(x)`` makes (two
    sums in a row: their lengths add, as in the composition relation). At least 1."""
    _check_module(module, "module")
    total = [0]

    def hook(m: nn.Module, args: tuple, output: object) -> None:
        total[0] += _k(m)

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, _LINEAR_LAYERS)]
    try:
        _run(module, x)
    finally:
        for handle in handles:
            handle.remove()
    return max(total[0], 1)


def _raise_if_outside(verdicts: list[Verdict], context: Callable[[], str]) -> None:
    __tracebackhide__ = True
    bad = [v for v in verdicts if not v.ok]
    if bad:
        lines = [f"{len(bad)} comparison(s) outside the error bound:", *(f"  - {v.describe()}" for v in bad)]
        lines += [f"  ({v.describe()})" for v in verdicts if v.ok]
        raise AssertionError("\n".join([*lines, context()]))


def assert_within_bound(
    actual: torch.Tensor,
    reference: torch.Tensor,
    *,
    magnitude: torch.Tensor,
    reduction_length: int,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> Verdict:
    """``actual`` agrees with ``reference`` within the rounding of a sum of ``reduction_length``
    terms of size ``magnitude`` (e.g. :func:`magnitude` of the module), computed in ``dtype`` (default
    ``actual.dtype``) on ``device`` (default ``actual.device``).

    A float64 ``reference`` is taken as exact. A reference in another dtype is taken as a second
    computation with the same rounding, so the allowance doubles (two errors, each within its
    bound). Returns the :class:`Verdict`; raises ``AssertionError`` outside the bound."""
    __tracebackhide__ = True
    if not isinstance(actual, torch.Tensor) or not isinstance(reference, torch.Tensor):
        raise TypeError("actual and reference must be tensors")
    if not isinstance(reduction_length, int) or isinstance(reduction_length, bool) or reduction_length < 1:
        raise ValueError(f"reduction_length must be an int >= 1 (the terms of each sum), got {reduction_length!r}")
    dtype = actual.dtype if dtype is None else dtype
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    precision = precision_for(dtype, actual.device if device is None else device, reduction_length=reduction_length)
    mag = float64_cpu(magnitude)
    ref = float64_cpu(reference)
    if tuple(mag.shape) != tuple(ref.shape):
        raise ValueError(f"magnitude must have the reference's shape {tuple(ref.shape)}, got {tuple(mag.shape)}")
    limit = bound(ref, mag, reduction_length, precision)
    if reference.dtype != torch.float64:
        limit = 2 * limit
    c = compare("actual", "output", actual, ref, limit=limit)
    verdict = _verdict("actual", c, reduction_length, dtype)
    _raise_if_outside([verdict], lambda: f"reference dtype {reference.dtype}; torch {torch.__version__}")
    return verdict


def assert_same_map(
    module_a: nn.Module,
    module_b: nn.Module,
    x: torch.Tensor,
    *,
    x_b: torch.Tensor | None = None,
) -> tuple[Verdict, ...]:
    """``module_b`` computes the same map as ``module_a``: on ``x`` (``x_b`` for ``module_b`` if it
    takes another view of the input), each module's output agrees with ``module_a`` run in float64
    on the CPU within its own error bound (its own magnitude and K, its dtype, the precision flags
    in force on its device). The outputs must have the same shape (``[N, O, 1, 1]`` vs ``[N, O]``
    is a different map: flatten(1), never squeeze()). For a sharper check, pass float64 modules
    and input: the bound is then float64's.

    Returns the :class:`Verdict` of each comparison; raises ``AssertionError`` when one is outside
    its bound, ``ValueError`` for a module the error model does not describe."""
    __tracebackhide__ = True
    _check_module(module_a, "module_a")
    _check_module(module_b, "module_b")
    x_b = x if x_b is None else x_b
    reference = _run64(module_a, x, absolute=False, name="module_a")
    verdicts = []
    for name, module, inputs in (("module_a", module_a, x), ("module_b", module_b, x_b)):
        out = _run(module, inputs)
        k = reduction_length(module, inputs)
        scale = underflow_scale([inputs, *module.parameters()])
        precision = precision_for(out.dtype, out.device, scale=scale, reduction_length=k)
        mag = _run64(module, inputs, absolute=True, name=name)
        c = compare(name, "output", out, reference, magnitude=mag, reduction=k, precision=precision)
        verdicts.append(
            _verdict(f"{name} ({str(out.dtype).removeprefix('torch.')}) vs module_a in float64", c, k, out.dtype)
        )
    _raise_if_outside(
        verdicts,
        lambda: (
            f"input {list(x.shape)} {x.dtype} on {x.device}; torch {torch.__version__}; "
            f"module_a: {type(module_a).__name__}, module_b: {type(module_b).__name__}"
        ),
    )
    return tuple(verdicts)
