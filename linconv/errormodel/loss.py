"""The terms a cross-entropy loss adds on top of the error model of its logits.

With logit errors ``|d z_nk| <= beta_nk`` (the linear map's bound), the per-sample loss
``lse(z_n) - z_n[t]`` moves by at most ``2 max_k beta_nk`` (log-sum-exp and the target pick are
each 1-Lipschitz in the max norm); softmax moves by at most ``p_nk (exp(2 max_k beta_nk) - 1)``.
The loss's own rounding adds ``C u`` times the size of the terms it combines (its mean over N
samples: ``sqrt(N) u_acc``); softmax's adds ``p_nk (exp(C u (|z_nk| + |lse_n|)) - 1)`` (exp of an
argument rounded relative to its size), and probabilities below the smallest normal may flush to
zero. The gradient of the logits is ``(softmax - onehot) / N``: its bound is the softmax's plus
the rounding of the stored gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from linconv.errormodel.constants import C_CALIBRATED
from linconv.errormodel.precision import Precision

__all__ = ["CrossEntropyBounds", "cross_entropy_bounds"]


@dataclass(frozen=True)
class CrossEntropyBounds:
    loss: torch.Tensor  # bound on |loss - reference loss| (a scalar)
    upstream: torch.Tensor  # bound on the error of d loss / d logits that backward propagates, [N, K]
    grad_logits: torch.Tensor  # bound on |grad logits - reference|, [N, K]


def cross_entropy_bounds(
    logits: torch.Tensor,
    target: torch.Tensor,
    logit_bound: torch.Tensor,
    loss: torch.Tensor,
    grad_logits: torch.Tensor,
    precision: Precision,
    *,
    c: float = C_CALIBRATED,
) -> CrossEntropyBounds:
    """Bounds for ``cross_entropy(logits, target)`` (mean over N) and its logit gradient, from the
    float64 reference ``logits`` / ``loss`` / ``grad_logits`` and the per-logit ``logit_bound``."""
    n, classes = logits.shape
    u = precision.u_out
    dtype = {53: torch.float64, 24: torch.float32, 11: torch.float16, 8: torch.bfloat16}[precision.significand_bits]
    underflow = float(torch.finfo(dtype).smallest_normal)
    probs = torch.softmax(logits, dim=1)
    onehot = F.one_hot(target, classes).double()
    lse = torch.logsumexp(logits, dim=1)
    z_target = logits.gather(1, target.view(-1, 1)).squeeze(1)
    beta_max = logit_bound.max(dim=1).values
    loss_bound = (
        (2 * beta_max).mean()
        + c * (precision.u_mid + (n**0.5) * precision.u_acc) * (lse.abs() + z_target.abs()).mean()
        + u * loss.abs()
    )
    exponent_err = 2 * beta_max.view(-1, 1) + c * u * (logits.abs() + lse.abs().view(-1, 1))
    upstream = (probs * torch.expm1(exponent_err) + c * u * (probs + onehot) + underflow) / n
    return CrossEntropyBounds(loss_bound, upstream, upstream + u * grad_logits.abs())
