"""Precision flags: which float32 kernels may round their inputs, and lanes that pin them.

On Ampere and newer GPUs torch ships a float32 Conv2d in TF32 (cuDNN conv precision ``"tf32"``)
and a float32 Linear in IEEE float32 (cuBLAS matmul precision unset), so the two formulations of
one linear map differ at ~1e-3. This module reads the flags in force into a
:class:`PrecisionFlags` snapshot and offers lanes (:func:`precision_lane`): as shipped, or strict
(IEEE float32 everywhere). What the flags mean for the error bound is
:func:`linconv.errormodel.rounding.input_unit_roundoff`.

torch has two generations of flags and a process must use only one of them:

* ``fp32_precision`` (torch >= 2.9): ``torch.backends.fp32_precision`` (generic),
  ``torch.backends.cudnn.fp32_precision`` (backend "cuda", all ops),
  ``torch.backends.cuda.matmul.fp32_precision``, ``torch.backends.cudnn.conv.fp32_precision``,
  ``torch.backends.mkldnn.fp32_precision`` (backend "mkldnn", all ops; its *setter* writes the
  generic flag in torch 2.13, so this module never assigns it), ``torch.backends.mkldnn.matmul``
  and ``.conv``. Values are ``"ieee"``, ``"tf32"``, ``"bf16"`` or ``"none"``; ``"none"``
  inherits from the backend's "all" flag, then from the generic flag, and a chain that ends in
  ``"none"`` means IEEE. The "cuda" backend rejects ``"bf16"`` and inherits it as ``"none"``
  (aten/src/ATen/Context.cpp, ``Context::float32Precision``). torch 2.13's getters return the
  resolved value; older ones may return the raw one, so :func:`read_flags` resolves the chain
  itself.
* ``allow_tf32`` (older torch): ``torch.backends.cuda.matmul.allow_tf32``,
  ``torch.backends.cudnn.allow_tf32`` and ``torch.get_float32_matmul_precision()``.

In torch 2.13, once a ``fp32_precision`` flag disagrees with the legacy state, reading a legacy
flag raises ``RuntimeError`` ("you have used mix of the legacy and new APIs"): for instance
``cudnn.allow_tf32`` after ``cudnn.conv.fp32_precision = "ieee"``, or
``get_float32_matmul_precision()`` after ``cuda.matmul.fp32_precision = "tf32"``. So every
function here works through exactly one generation, chosen by :func:`detect_api`.

Half-precision GEMMs have flags of their own, outside both generations (a process may read and
set them whatever generation it uses): ``torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction``
and ``allow_bf16_reduced_precision_reduction`` (True by default) let cuBLAS/cuBLASLt add the
partial sums of a split-K GEMM in the output dtype (float16/bfloat16) instead of float32
(aten/src/ATen/cuda/CUDABlas.cpp: without them the cuBLASLt reduction-scheme mask keeps
``CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE | NONE``, and cuBLAS gets
``CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION``); ``allow_fp16_accumulation`` (False by
default, torch >= 2.7) runs the whole float16 GEMM in float16. Since torch 2.10 (pytorch#164766)
the two reduction flags also take a tuple ``(allow_reduced_precision, allow_split_k)`` and have
``..._split_k`` getters; writing a plain ``False`` there would silently turn split-K back on, so
the strict lane writes the tuple where the getter exists. A torch without a flag records
``None``; what that means for the bound is the error model's business
(:func:`linconv.errormodel.rounding.reduced_precision_partial_sums`).

``torch.backends.cudnn.flags()`` is not used: it defaults to ``enabled=False`` and, in torch
2.13, also writes the legacy ``allow_tf32=True`` (turning cuDNN conv back to TF32 inside the
block), resets ``deterministic``, and reads the legacy flag on entry, which raises inside the
strict lane. :func:`cudnn_mode` assigns ``enabled`` and ``benchmark`` instead.

Every function that touches flags takes ``torch_module`` (default: :mod:`torch`), an object
with ``backends``, ``get_float32_matmul_precision`` and ``set_float32_matmul_precision``, so
tests can substitute fakes of either generation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch

__all__ = [
    "LANES",
    "PrecisionFlags",
    "cudnn_mode",
    "detect_api",
    "precision_lane",
    "read_flags",
]

# Ordered simplest first: "as-shipped" is the default lane.
LANES = ("as-shipped", "strict")

_NEW_API = "fp32_precision"
_LEGACY_API = "allow_tf32"

# Raw fp32_precision values torch ships for the op flags this module sets (a fresh torch 2.13
# process reads cudnn.conv "tf32", the others "none", with "none" above them, so these are raw).
# Used only to break the tie described in _restore_value.
_SHIPPED_RAW = {"cuda.matmul": "none", "cudnn.conv": "tf32", "mkldnn.matmul": "none", "mkldnn.conv": "none"}

# Legacy torch: what float32_matmul_precision means for the oneDNN (CPU) matmul, mirroring
# torch >= 2.9's own translation (Context::setFloat32MatmulPrecision). "high" may mean bf16x3
# (about 16 bits) or nothing on a given CPU; reading it as TF32 keeps the model an upper bound.
_LEGACY_MKLDNN_MATMUL = {"highest": "ieee", "high": "tf32", "medium": "bf16"}


@dataclass(frozen=True)
class PrecisionFlags:
    """The precision flags in force, as plain data (JSON-serialisable through :meth:`to_dict`).

    ``api`` is the flag generation read: ``"fp32_precision"`` or ``"allow_tf32"``.
    ``cuda_matmul``, ``cudnn_conv``, ``mkldnn_matmul`` and ``mkldnn_conv`` are effective float32
    precisions after resolving inheritance: ``"ieee"``, ``"tf32"`` or ``"bf16"``.
    ``float32_matmul_precision`` is ``torch.get_float32_matmul_precision()`` under the legacy
    API and ``None`` under the ``fp32_precision`` API, where reading it can raise.
    ``cuda_fp16_reduced_precision_reduction``, ``cuda_bf16_reduced_precision_reduction`` and
    ``cuda_fp16_accumulation`` are the cuBLAS half-GEMM flags (module docstring), ``None`` where
    this torch has no such flag (and in snapshots written before linconv recorded them).
    """

    api: str
    cuda_matmul: str
    cudnn_conv: str
    mkldnn_matmul: str
    mkldnn_conv: str
    cudnn_enabled: bool
    cudnn_benchmark: bool
    cudnn_deterministic: bool
    mkldnn_enabled: bool
    float32_matmul_precision: str | None = None
    cuda_fp16_reduced_precision_reduction: bool | None = None
    cuda_bf16_reduced_precision_reduction: bool | None = None
    cuda_fp16_accumulation: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for report headers and failure messages."""
        legacy = ""
        if self.float32_matmul_precision is not None:
            legacy = f" float32_matmul_precision={self.float32_matmul_precision}"
        return (
            f"{self.api}: cuda.matmul={self.cuda_matmul} cudnn.conv={self.cudnn_conv} "
            f"mkldnn.matmul={self.mkldnn_matmul} mkldnn.conv={self.mkldnn_conv}{legacy}; "
            f"cudnn={_on(self.cudnn_enabled)} benchmark={_on(self.cudnn_benchmark)} "
            f"deterministic={_on(self.cudnn_deterministic)} mkldnn={_on(self.mkldnn_enabled)}; "
            f"cuBLAS half reductions: fp16={_on(self.cuda_fp16_reduced_precision_reduction)} "
            f"bf16={_on(self.cuda_bf16_reduced_precision_reduction)} "
            f"fp16-accumulation={_on(self.cuda_fp16_accumulation)}"
        )


def _on(value: bool | None) -> str:
    return "n/a" if value is None else "on" if value else "off"


def _torch(torch_module: Any) -> Any:
    return torch if torch_module is None else torch_module


def detect_api(*, torch_module: Any = None) -> str:
    """``"fp32_precision"`` when torch has the per-backend fp32_precision flags, else ``"allow_tf32"``."""
    return _NEW_API if hasattr(_torch(torch_module).backends, "fp32_precision") else _LEGACY_API


# --- the fp32_precision generation ------------------------------------------------------------


def _op_holders(backends: Any) -> dict[str, tuple[Any, Any, str]]:
    """Each op flag this module reads or sets: (holder, holder of the backend's "all" flag, backend)."""
    return {
        "cuda.matmul": (backends.cuda.matmul, backends.cudnn, "cuda"),
        "cudnn.conv": (backends.cudnn.conv, backends.cudnn, "cuda"),
        "mkldnn.matmul": (backends.mkldnn.matmul, backends.mkldnn, "mkldnn"),
        "mkldnn.conv": (backends.mkldnn.conv, backends.mkldnn, "mkldnn"),
    }


def _resolve(chain: list[str], backend: str) -> str:
    """The first value in ``chain`` other than "none", as Context::float32Precision picks it."""
    value = next((v for v in chain if v != "none"), "none")
    # The "cuda" backend has no bf16 mode: an inherited "bf16" reads as "none".
    return "none" if backend == "cuda" and value == "bf16" else value


def _inherited(backends: Any, parent: Any, backend: str) -> str:
    return _resolve([parent.fp32_precision, backends.fp32_precision], backend)


def _read_new(torch_module: Any) -> dict[str, Any]:
    backends = torch_module.backends
    effective = {}
    for name, (holder, parent, backend) in _op_holders(backends).items():
        value = _resolve([holder.fp32_precision, _inherited(backends, parent, backend)], backend)
        effective[name.replace(".", "_")] = "ieee" if value == "none" else value
    return {"api": _NEW_API, "float32_matmul_precision": None, **effective}


def _restore_value(shown: str, inherited: str, shipped: str) -> str:
    """The raw value to write back for an op flag whose getter showed ``shown``.

    torch 2.13's getters resolve inheritance, so ``shown == inherited`` cannot tell "none" from an
    explicit value equal to the inherited one. Prefer torch's shipped raw value, then "none",
    then the explicit value, taking the first that reads back as ``shown``: the getters then
    read exactly as before, and a flag that inherited keeps inheriting.
    """
    for candidate in (shipped, "none"):
        if (inherited if candidate == "none" else candidate) == shown:
            return candidate
    return shown


def _strict_new(torch_module: Any) -> list[tuple[Callable[[Any], None], Any, Any]]:
    backends = torch_module.backends
    settings = []
    for name, (holder, parent, backend) in _op_holders(backends).items():
        previous = _restore_value(holder.fp32_precision, _inherited(backends, parent, backend), _SHIPPED_RAW[name])
        settings.append((_setter(holder, "fp32_precision"), "ieee", previous))
    return settings


# --- the allow_tf32 generation ----------------------------------------------------------------


def _read_legacy(torch_module: Any) -> dict[str, Any]:
    backends = torch_module.backends
    matmul_precision = torch_module.get_float32_matmul_precision()
    return {
        "api": _LEGACY_API,
        "cuda_matmul": "tf32" if backends.cuda.matmul.allow_tf32 else "ieee",
        "cudnn_conv": "tf32" if backends.cudnn.allow_tf32 else "ieee",
        "mkldnn_matmul": _LEGACY_MKLDNN_MATMUL[matmul_precision],
        # Legacy torch has no flag that lowers the precision of oneDNN float32 convolutions.
        "mkldnn_conv": "ieee",
        "float32_matmul_precision": matmul_precision,
    }


def _strict_legacy(torch_module: Any) -> list[tuple[Callable[[Any], None], Any, Any]]:
    backends = torch_module.backends
    # Undone in reverse: cuda.matmul.allow_tf32 = previous sets the matmul precision to "high"
    # or "highest", so set_float32_matmul_precision(previous) must run after it to bring back
    # "medium" exactly.
    return [
        (_setter(backends.cudnn, "allow_tf32"), False, backends.cudnn.allow_tf32),
        (
            torch_module.set_float32_matmul_precision,
            "highest",
            torch_module.get_float32_matmul_precision(),
        ),
        (_setter(backends.cuda.matmul, "allow_tf32"), False, backends.cuda.matmul.allow_tf32),
    ]


# --- cuBLAS half-precision GEMM flags (both generations) ---------------------------------------

# PrecisionFlags field -> attribute of torch.backends.cuda.matmul
_HALF_GEMM_FLAGS = {
    "cuda_fp16_reduced_precision_reduction": "allow_fp16_reduced_precision_reduction",
    "cuda_bf16_reduced_precision_reduction": "allow_bf16_reduced_precision_reduction",
    "cuda_fp16_accumulation": "allow_fp16_accumulation",
}
_SPLIT_K = "_split_k"


def _has(holder: Any, attribute: str) -> bool:
    """Whether ``holder`` has ``attribute`` (torch's cuBLASModule raises AttributeError for names
    it does not know, so hasattr works; a getter that fails otherwise is a real error)."""
    try:
        getattr(holder, attribute)
    except AttributeError:
        return False
    return True


def _read_half_gemm(torch_module: Any) -> dict[str, bool | None]:
    matmul = torch_module.backends.cuda.matmul
    return {
        field: bool(getattr(matmul, name)) if _has(matmul, name) else None for field, name in _HALF_GEMM_FLAGS.items()
    }


def _strict_half_gemm(torch_module: Any) -> list[tuple[Callable[[Any], None], Any, Any]]:
    """Reduced-precision reductions off (keeping split-K as it was: it changes the order of the
    float32 sums, not their precision), full float16 accumulation off; absent flags are skipped."""
    matmul = torch_module.backends.cuda.matmul
    settings: list[tuple[Callable[[Any], None], Any, Any]] = []
    for field, name in _HALF_GEMM_FLAGS.items():
        if not _has(matmul, name):
            continue
        previous: Any = bool(getattr(matmul, name))
        value: Any = False
        if field != "cuda_fp16_accumulation" and _has(matmul, name + _SPLIT_K):
            split_k = bool(getattr(matmul, name + _SPLIT_K))
            previous, value = (previous, split_k), (False, split_k)
        settings.append((_setter(matmul, name), value, previous))
    return settings


# --- public API ---------------------------------------------------------------------------------


def read_flags(*, torch_module: Any = None) -> PrecisionFlags:
    """Snapshot the flags in force, reading only the generation :func:`detect_api` picks."""
    module = _torch(torch_module)
    backends = module.backends
    precisions = _read_new(module) if detect_api(torch_module=module) == _NEW_API else _read_legacy(module)
    return PrecisionFlags(
        **precisions,
        cudnn_enabled=bool(backends.cudnn.enabled),
        cudnn_benchmark=bool(backends.cudnn.benchmark),
        cudnn_deterministic=bool(backends.cudnn.deterministic),
        mkldnn_enabled=bool(backends.mkldnn.enabled),
        **_read_half_gemm(module),
    )


def _setter(holder: Any, attribute: str) -> Callable[[Any], None]:
    def set_value(value: Any) -> None:
        setattr(holder, attribute, value)

    return set_value


@contextmanager
def _applied(settings: list[tuple[Callable[[Any], None], Any, Any]]) -> Iterator[None]:
    """Apply (setter, value, previous) in order; on exit, even after an error, undo in reverse."""
    with ExitStack() as undo:
        for set_value, value, previous in settings:
            set_value(value)
            undo.callback(set_value, previous)
        yield


@contextmanager
def precision_lane(lane: str, *, torch_module: Any = None) -> Iterator[PrecisionFlags]:
    """Run the block under ``lane`` and yield the flags in force there.

    ``"as-shipped"`` changes nothing. ``"strict"`` sets cuda matmul, cuDNN conv and oneDNN
    matmul/conv to ``"ieee"`` (fp32_precision API), or ``allow_tf32 = False`` for cuBLAS and
    cuDNN and float32 matmul precision ``"highest"`` (legacy API); in both generations it also
    turns off cuBLAS reduced-precision reductions of float16/bfloat16 GEMMs and full float16
    accumulation, where this torch has those flags. Previous values come back on exit, also
    when the block raises.
    """
    if lane not in LANES:
        raise ValueError(f"lane must be one of {LANES}, got {lane!r}")
    module = _torch(torch_module)
    if lane == "as-shipped":
        settings = []
    elif detect_api(torch_module=module) == _NEW_API:
        settings = _strict_new(module) + _strict_half_gemm(module)
    else:
        settings = _strict_legacy(module) + _strict_half_gemm(module)
    with _applied(settings):
        yield read_flags(torch_module=module)


@contextmanager
def cudnn_mode(enabled: bool, benchmark: bool, *, torch_module: Any = None) -> Iterator[None]:
    """Set ``torch.backends.cudnn.enabled`` and ``.benchmark`` for the block, restoring them on exit.

    Assigns the two flags instead of using ``cudnn.flags()``, which in torch 2.13 also rewrites
    the legacy TF32 flag and ``deterministic`` (see the module docstring); precision flags are
    left alone.
    """
    cudnn = _torch(torch_module).backends.cudnn
    with _applied(
        [
            (_setter(cudnn, "enabled"), enabled, cudnn.enabled),
            (_setter(cudnn, "benchmark"), benchmark, cudnn.benchmark),
        ]
    ):
        yield
