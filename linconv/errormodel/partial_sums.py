"""Which backward kernels add partial sums in the storage dtype instead of float32.

The error model assumes float16/bfloat16 sums run in float32 (``constants.ACCUMULATION_BITS``).
Two CPU kernels break that, by construction rather than by accident, and the model must know:

- ``F.fold`` (col2im, the backward of ``F.unfold``) adds each input pixel's overlapping kernel
  taps straight into the gradient tensor: ``data_im[...] += data_col[...]`` with ``scalar_t`` the
  storage dtype (aten/src/ATen/native/im2col.h, ``col2im``). One rounding per tap.
- ATen's slow convolution (``slow_conv2d`` / ``slow_conv_dilated2d``, used on CPUs where oneDNN
  has no float16/bfloat16 kernels) computes the input gradient as a GEMM into columns followed by
  the same col2im, and the weight gradient as one GEMM per sample added into a weight-shaped
  tensor of the storage dtype (aten/src/ATen/native/ConvolutionMM2d.cpp,
  ``slow_conv2d_backward_weight_frame`` with beta = 1).

Measured, not assumed (docs/calibration.md, "partial sums"): on an AVX-512 Xeon whose oneDNN
runs float16 convs, the unfold + matmul input gradient reached error/bound 1.14 in float16
(median 0.72) on ``N4 C4 7x6 -> O2 k4x5 same g2`` while conv2d stayed at 0.20; on an AMD EPYC
without oneDNN half kernels conv2d's own input gradient reached 1.21 on the same geometry.

- ATen's slow transposed convolution (``slow_conv_transpose2d`` / ``3d``, and a conv's input
  gradient computed by the slow conv backward) is the same col2im in the FORWARD: each output
  adds the taps that reach it in the storage dtype (aten/src/ATen/native/
  NaiveConvolutionTranspose2d.cpp / 3d.cpp); its weight gradient adds one GEMM per sample into the
  storage-dtype weight gradient, as above.
- ``Tensor.unfold`` (the N-d im2col of linconv's Conv1d/Conv3d unfold + matmul) has the same
  backward as ``F.fold``: ``unfold_backward`` adds each window's gradient into the input gradient
  in the storage dtype (aten/src/ATen/native/cpu/UnfoldBackwardKernel.cpp).

- The backward of a non-zero padding mode (``F.pad`` with ``replicate``, ``reflect`` or
  ``circular``, applied by nn.ConvNd before the conv) adds the gradients of every padded copy of an
  input element into that element, in the storage dtype (measured 2026-12-06, torch 2.13.0 CPU:
  float16 replicate-pad backward, 50 copies of one element, up to 3.5 ulps of the result over 200
  draws, where float32 sums would give 0.5; thorough seed 8 drew it: general_conv_3d grad x at
  1.07 of a bound that did not count it). Every formulation that pads first carries it.

``T`` partial sums added in a format of unit roundoff ``u`` carry about ``sqrt(T) * u`` of
relative error (the same probabilistic argument as the main reduction term), so such a gradient
(or forward output) gets ``sqrt(T) * u_storage`` on top of the float32 accumulation term; see
precision.precision_of.
"""

from __future__ import annotations

import math

import torch

from linconv.core.geometry import ConvGeometry

__all__ = ["RULES", "conv_backend", "storage_partial_sums"]

# The rules a FormulationSpec may name: "fold" (im2col whose backward is col2im), "slow_conv"
# (F.convNd), "slow_conv_transpose" (F.conv_transposeNd) and "slow_conv_input_grad" (a transposed
# conv computed as the input gradient of its adjoint conv).
RULES = ("fold", "slow_conv", "slow_conv_transpose", "slow_conv_input_grad")

# ATen's convolution backends that run im2col + GEMM + col2im in the storage dtype on the CPU.
_SLOW_CPU_BACKENDS = ("Slow2d", "SlowDilated2d", "Slow3d", "SlowDilated3d", "SlowTranspose2d", "SlowTranspose3d")


def _overlap(g: ConvGeometry) -> int:
    """Most kernel taps that land on one input pixel (bounded by the output positions)."""
    if g.transposed:  # the taps of its input gradient, a conv: at most prod(kernel) per element
        return min(g.taps, math.prod(g.size))
    return min(g.taps, math.prod(g.output_size()))


def conv_backend(x: torch.Tensor, weight: torch.Tensor, g: ConvGeometry) -> str:
    """The name of the backend ``F.convNd`` picks for these tensors ('' when torch cannot say:
    ``_select_conv_backend`` is private and may change between releases)."""
    select = getattr(torch._C, "_select_conv_backend", None)
    if select is None:
        return ""
    # the backend depends on dtype, layout, device, groups and dilation; the padding amount
    # does not change the choice, and 'same'/'valid' (or a padded copy) reach it as ints
    zeros = [0] * g.rank
    padding = zeros if isinstance(g.padding, str) or g.padding_mode != "zeros" else list(g.padding)
    output_padding = list(g.output_padding)  # type: ignore[arg-type]
    try:
        backend = select(
            x, weight, None, list(g.stride), padding, list(g.dilation), g.transposed, output_padding, g.groups, None
        )
    except (RuntimeError, TypeError):
        return ""
    return str(backend).rsplit(".", 1)[-1]


def storage_partial_sums(rule: str, g: ConvGeometry, x: torch.Tensor, weight: torch.Tensor) -> dict[str, int]:
    """Partial sums per gradient (by tensor name) that ``rule``'s kernel adds in the storage
    dtype for these tensors; empty when its sums stay in the accumulation format."""
    if rule not in RULES:
        raise ValueError(f"partial-sum rule must be one of {RULES}, got {rule!r}")
    if x.dtype not in (torch.float16, torch.bfloat16) or x.device.type != "cpu":
        return {}
    found = _kernel_partial_sums(rule, g, x, weight)
    if g.padding_mode != "zeros" and rule in ("fold", "slow_conv"):
        # the pad's backward sums after the kernel's: sqrt(T) adds up as sqrt(a) + sqrt(b)
        copies = _pad_copies(g)
        found["x"] = math.ceil((math.sqrt(found.get("x", 0)) + math.sqrt(copies)) ** 2)
    return found


def _pad_copies(g: ConvGeometry) -> int:
    """Most padded copies of one input element (a bound for every non-zero padding mode: an edge
    element of a size-1 dimension is copied 1 + before + after times under 'replicate')."""
    pads = g.torch_pad()
    return math.prod(1 + pads[i] + pads[i + 1] for i in range(0, len(pads), 2))


def _kernel_partial_sums(rule: str, g: ConvGeometry, x: torch.Tensor, weight: torch.Tensor) -> dict[str, int]:
    if rule == "fold":
        return {"x": _overlap(g)}
    if rule == "slow_conv_input_grad":  # the backend of the adjoint conv, whose backward runs
        adjoint = g.adjoint()
        x = torch.empty(adjoint.input_shape, dtype=x.dtype, device=x.device)
        backend = conv_backend(x, weight, adjoint)
    else:
        backend = conv_backend(x, weight, g)
    if backend and backend not in _SLOW_CPU_BACKENDS:
        return {}
    # a slow backend, or one torch would not name: assume the storage-dtype sums (the safe side)
    if rule == "slow_conv":
        return {"x": _overlap(g), "weight": g.batch}
    return {"output": g.taps_per_output(), "weight": g.batch}  # col2im in the forward
