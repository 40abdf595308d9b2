"""Every number the error model and the negative controls rest on, each with where it comes from.

Change one only with data: docs/calibration.md holds the measurements behind C, and
tests/test_sharpness.py shows that the bound still sees a one-term error at the largest K.
"""

from __future__ import annotations

import torch

__all__ = [
    "ACCUMULATION_BITS",
    "C_CALIBRATED",
    "INPUT_UNIT_ROUNDOFF",
    "RELU_EFFECT",
    "SIGNIFICAND_BITS",
    "SOFTMAX_EFFECT",
    "SPLIT_K_MAX",
]

# Unit roundoff u = 2**-p for a format with p significand bits (incl. the implicit bit):
# IEEE 754-2008 binary64 p=53, binary32 p=24, binary16 p=11; bfloat16 p=8 (8 exponent bits).
SIGNIFICAND_BITS = {torch.float64: 53, torch.float32: 24, torch.float16: 11, torch.bfloat16: 8}

# Accumulation format per storage dtype on the backends torch ships: CPU and CUDA kernels for
# float16/bfloat16 conv and matmul accumulate in float32 (ATen's opmath_type<Half/BFloat16> is
# float; oneDNN and cuBLAS/cuDNN use f32 accumulators for half inputs). Measured, not assumed:
# docs/calibration.md shows every reduced-precision formulation inside this model.
ACCUMULATION_BITS = {torch.float64: 53, torch.float32: 24, torch.float16: 24, torch.bfloat16: 24}

# C: calibrated constant of the error model. Value and reasoning: docs/calibration.md, from
# `python -m linconv calibrate` over 20,000 examples (largest C needed: 1.79 in float32/float64)
# and, since the partial-sum and underflow terms, 8,000 half-precision examples (largest: 1.69);
# C = 4 leaves a margin above 2 and still sees one dropped term at the largest K in float32
# (tests/test_sharpness.py). Raising it blunts the suite; never raise it without data.
C_CALIBRATED = 4.0

# Unit roundoff of the rounding applied to float32 inputs inside a kernel, per effective
# precision of the flags in force (linconv.lanes.flags). TF32 keeps 10 explicit mantissa bits
# (11 significant): u = 2**-11 when inputs are rounded to nearest (NVIDIA, "Accelerating AI
# Training with NVIDIA TF32 Tensor Cores": "rounds FP32 inputs to TF32"; torch
# docs/source/notes/cuda.rst, "TensorFloat-32 (TF32) on Ampere (and later) devices"). bfloat16
# keeps 7 explicit bits (8 significant): u = 2**-8 (torch set_float32_matmul_precision
# docstring). torch docs/source/notes/numerical_accuracy.rst says TF32 kernels read "only the
# first 10 bits of the input mantissa"; if a kernel truncates instead of rounding, its error per
# input is up to 2**-10. linconv takes the truncation bound for TF32 (2**-10): a bound that is
# too tight on a real GPU would be a false alarm, and the factor 2 is small next to the TF32
# error itself.
INPUT_UNIT_ROUNDOFF = {"ieee": 0.0, "tf32": 2.0**-10, "bf16": 2.0**-8}

# Most partial sums a cuBLAS/cuBLASLt float16/bfloat16 GEMM may add in its output dtype when
# reduced-precision reductions are allowed (torch's default; linconv.lanes.flags): a split-K GEMM
# computes SPLITK_NUM slices of the K sum in float32 and, under the INPLACE or OUTPUT_TYPE
# reduction schemes, adds the slices in the output type (cublasLt.h, cublasLtReductionScheme_t:
# "INPLACE - using the output buffer (and output data type)"; "OUTPUT_TYPE - intermediate results
# are stored in output type"). cuBLASLt documents no upper bound for
# CUBLASLT_ALGO_CONFIG_SPLITK_NUM and torch takes the heuristic's first algorithm
# (aten/src/ATen/cuda/CUDABlas.cpp, cublasLtMatmulAlgoGetHeuristic with 1 result), so the number
# is an assumption: 32, the largest split NVIDIA's own cuBLASLt auto-tuning sample tries
# (CUDALibrarySamples, cuBLASLt/LtSgemmCustomFind: splitKSequenceA = {2, 3, 4, 5, 6, 8, 12, 16,
# 32}); a GEMM of K terms has at most K slices. With T = min(K, 32) slices the term C*sqrt(T)*u
# covers even T/2 same-signed roundings (T <= 32 < 2(1 + C(1 + sqrt T))), and its CPU simulation
# is in tests/test_split_k.py (docs/calibration.md, "Split-K"). The first GPU run checks it
# (docs/gpu/): a half-precision violation in the as-shipped CUDA mode only is the sign that
# cuBLAS split further.
SPLIT_K_MAX = 32

# Negative controls must be able to tell the two maps apart. Composition with a ReLU between the
# layers: the ReLU must move the float64 output by this much relative to its largest value, >100x
# the float32 error bound at the largest K drawn (properties: an example below it is assumed away,
# it is not a counterexample).
RELU_EFFECT = 1e-3
# Classifier head with a softmax before CrossEntropyLoss: the softmax must move the float64 loss
# by this much relative, > 80x the float32 loss bound seen in the thorough runs. Thorough seed 3
# drew 126 classes with near-equal logits: both losses were log(126) to 6e-6 relative, inside the
# float32 bound, so the control "failed" on an example that cannot tell them apart.
SOFTMAX_EFFECT = 1e-3
