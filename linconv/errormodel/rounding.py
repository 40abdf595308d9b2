"""Which roundings a formulation's arithmetic has on a case: the input rounding the precision
flags allow, the partial sums a half-precision cuBLAS GEMM may add in its output dtype, the
underflow scale, and the :class:`~linconv.errormodel.precision.Precision` that results. Every
relation's comparisons take their precision from :func:`formulation_precision`, so the error
model is applied identically everywhere."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from linconv.core.cases import Case
from linconv.errormodel.constants import INPUT_UNIT_ROUNDOFF, SPLIT_K_MAX
from linconv.errormodel.precision import Precision, precision_of
from linconv.lanes.flags import PrecisionFlags, read_flags

__all__ = [
    "OPS",
    "formulation_precision",
    "half_accumulation",
    "input_rounding",
    "input_unit_roundoff",
    "per_element_rounding",
    "reduced_precision_partial_sums",
    "underflow_scale",
]

_DEVICE_TYPES = ("cpu", "cuda", "mps")
# The kernels whose float32 inputs a precision flag may round.
OPS = ("conv", "matmul")


def input_unit_roundoff(device_type: str, op: str, flags: PrecisionFlags | None = None) -> float:
    """Unit roundoff of the rounding that float32 inputs of ``op`` on ``device_type`` may get.

    0.0 when inputs stay IEEE float32, 2**-10 for TF32 (truncation bound), 2**-8 for bfloat16. ``op`` is
    ``"conv"`` or ``"matmul"``; ``flags`` defaults to :func:`read_flags`. An upper bound over the
    kernels torch may pick: a convolution that does not go to cuDNN (or oneDNN) runs as im2col
    plus a cuBLAS (or cpublas) GEMM, which follows the matmul flag (ConvolutionMM2d.cu /
    ConvolutionMM2d.cpp; cpublas::gemm tries mkldnn_bf32_gemm first), so a conv is bounded by
    both its own flag and the matmul flag. No torch flag lowers float32 precision on MPS.
    """
    if device_type not in _DEVICE_TYPES:
        raise ValueError(f"device_type must be one of {_DEVICE_TYPES}, got {device_type!r}")
    if op not in OPS:
        raise ValueError(f"op must be one of {OPS}, got {op!r}")
    if device_type == "mps":
        return 0.0
    flags = read_flags() if flags is None else flags
    if device_type == "cuda":
        matmul, conv, conv_library_on = flags.cuda_matmul, flags.cudnn_conv, flags.cudnn_enabled
    else:
        matmul, conv, conv_library_on = flags.mkldnn_matmul, flags.mkldnn_conv, flags.mkldnn_enabled
    roundoff = INPUT_UNIT_ROUNDOFF[matmul]
    if op == "conv" and conv_library_on:
        roundoff = max(roundoff, INPUT_UNIT_ROUNDOFF[conv])
    return roundoff


def _cublas_may_run(device_type: str, op: str) -> bool:
    """Whether ``op`` on ``device_type`` may reach a cuBLAS GEMM: on CUDA a matmul always, and a
    conv too, as for the input rounding above (one that misses cuDNN runs as im2col + cuBLAS
    GEMM; the model is an upper bound over the kernels torch may pick)."""
    if device_type not in _DEVICE_TYPES:
        raise ValueError(f"device_type must be one of {_DEVICE_TYPES}, got {device_type!r}")
    if op not in OPS:
        raise ValueError(f"op must be one of {OPS}, got {op!r}")
    return device_type == "cuda"


def reduced_precision_partial_sums(
    device_type: str, op: str, dtype: torch.dtype, reduction_length: int, flags: PrecisionFlags | None = None
) -> int:
    """How many partial sums a GEMM of ``op`` on ``device_type`` may add in ``dtype`` itself:
    ``min(reduction_length, SPLIT_K_MAX)`` for a float16/bfloat16 GEMM on CUDA while the flags
    allow reduced-precision reductions (torch's default), else 0.

    A flag this torch does not have (``None``) counts as allowed: cuBLAS's own default is to
    allow them, and without the flag torch cannot forbid them.
    """
    if reduction_length < 0:
        raise ValueError(f"reduction_length must be >= 0, got {reduction_length}")
    if not _cublas_may_run(device_type, op):
        return 0
    flags = read_flags() if flags is None else flags
    if dtype == torch.float16:
        allowed = flags.cuda_fp16_reduced_precision_reduction
    elif dtype == torch.bfloat16:
        allowed = flags.cuda_bf16_reduced_precision_reduction
    else:
        return 0
    return 0 if allowed is False else min(int(reduction_length), SPLIT_K_MAX)


def half_accumulation(device_type: str, op: str, dtype: torch.dtype, flags: PrecisionFlags | None = None) -> bool:
    """Whether a GEMM of ``op`` may keep its whole sum in float16 (``allow_fp16_accumulation``,
    off by default; cuBLAS then computes in ``CUBLAS_COMPUTE_16F``)."""
    if not _cublas_may_run(device_type, op) or dtype != torch.float16:
        return False
    flags = read_flags() if flags is None else flags
    return bool(flags.cuda_fp16_accumulation)


def per_element_rounding(device_type: str, ops: Iterable[str]) -> bool:
    """Whether the kernels ``ops`` may run on ``device_type`` are all sums of products whose
    intermediate results are rounded element by element, so that each rounding costs ``u`` times
    the magnitude of what is rounded (``R``, linconv.errormodel.intermediates). Measured on the
    CPU (oneDNN and ATen's kernels, docs/calibration.md); cuBLAS GEMMs are sums of products (their
    split-K partial sums are ``u_part``). Not assumed where it is not known: a cuDNN convolution
    may transform its operands (Winograd, FFT: the rounding of a transformed tile reaches every
    output of the tile), and MPS is unmeasured; there the roundings are charged against ``M``."""
    if device_type not in _DEVICE_TYPES:
        raise ValueError(f"device_type must be one of {_DEVICE_TYPES}, got {device_type!r}")
    ops = tuple(ops)
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        raise ValueError(f"ops must be among {OPS}, got {unknown}")
    if device_type == "cpu":
        return True
    return device_type == "cuda" and "conv" not in ops


def input_rounding(case: Case, ops: Iterable[str]) -> float:
    """The largest input rounding any of ``ops`` may apply on the case's device (float32 only:
    the flags lower float32 math alone)."""
    if case.torch_dtype != torch.float32:
        return 0.0
    device_type = torch.device(case.device).type
    return max((input_unit_roundoff(device_type, op) for op in ops), default=0.0)


def underflow_scale(tensors: Iterable[torch.Tensor | None]) -> float:
    """S of linconv.errormodel.precision: the largest factor an underflowed intermediate can be
    multiplied by (the largest |value| among the case's inputs, parameters and upstream gradient)."""
    return max([1.0] + [float(t.detach().abs().max()) for t in tensors if t is not None and t.numel()])


def formulation_precision(
    case: Case,
    ops: Iterable[str],
    *,
    scale: float = 1.0,
    storage_accumulation: bool = False,
    storage_partial_sums: int = 0,
    reduction_length: int = 0,
) -> Precision:
    """The error-model parameters of one formulation's result on ``case``: its dtype, the input
    rounding of its ops under the flags in force, the underflow scale ``scale``, and (for one
    gradient) sums in the storage dtype or partial sums added there; whether its intermediate
    roundings may be charged per element (:func:`per_element_rounding`).

    ``reduction_length`` is the length of the sums behind the compared tensor: with it, the
    partial sums a half-precision cuBLAS GEMM may add in its output dtype
    (:func:`reduced_precision_partial_sums`) and full float16 accumulation
    (:func:`half_accumulation`) join the model. Partial sums of a CPU kernel
    (``storage_partial_sums``) and of cuBLAS never meet (one device each): the larger counts.
    """
    ops = tuple(ops)
    dtype = case.torch_dtype
    device_type = torch.device(case.device).type
    if reduction_length and any(_cublas_may_run(device_type, op) for op in ops):
        flags = read_flags()
        splits = [reduced_precision_partial_sums(device_type, op, dtype, reduction_length, flags) for op in ops]
        storage_partial_sums = max([storage_partial_sums, *splits])
        half_sums = any(half_accumulation(device_type, op, dtype, flags) for op in ops)
        storage_accumulation = storage_accumulation or half_sums
    return precision_of(
        dtype,
        input_rounding=input_rounding(case, ops),
        storage_accumulation=storage_accumulation,
        storage_partial_sums=storage_partial_sums,
        underflow_scale=scale,
        per_element=per_element_rounding(device_type, ops),
    )
