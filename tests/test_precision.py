"""linconv.precision reads the flags of one torch API generation, pins lanes and restores them exactly."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from linconv.errormodel.rounding import input_unit_roundoff
from linconv.lanes.flags import (
    LANES,
    PrecisionFlags,
    cudnn_mode,
    detect_api,
    precision_lane,
    read_flags,
)

# The op-level flags the strict lane sets, as dotted paths under torch.backends.
OP_FLAGS = ("cuda.matmul", "cudnn.conv", "mkldnn.matmul", "mkldnn.conv")
# Every fp32_precision getter torch 2.13 has, for before/after comparisons on the real torch.
ALL_FP32_FLAGS = ("", "cudnn", "mkldnn", *OP_FLAGS, "cudnn.rnn", "mkldnn.rnn")
TF32, BF16 = 2.0**-10, 2.0**-8  # TF32: the truncation bound, see linconv.precision


# --- fakes ------------------------------------------------------------------------------------


class MixedAPIError(RuntimeError):
    pass


class _Node:
    """An attribute namespace whose leaves read and write a FakeTorch's state."""

    def __init__(self, fake: FakeTorch, path: str, children: dict[str, _Node]) -> None:
        object.__setattr__(self, "_fake", fake)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_children", children)

    def _leaf(self, name: str) -> str:
        key = f"{self._path}.{name}" if self._path else name
        if key not in self._fake.leaves:
            raise AttributeError(key)
        return key

    def __getattr__(self, name: str) -> Any:
        if name in self._children:
            return self._children[name]
        return self._fake.get(self._leaf(name))

    def __setattr__(self, name: str, value: Any) -> None:
        self._fake.set(self._leaf(name), value)


# Raw fp32_precision flags: dotted path -> (backend, path of the backend's "all" flag). The
# generic flag is "fp32_precision" at the root.
_FAKE_FP32 = {
    "cudnn.fp32_precision": ("cuda", None),
    "cuda.matmul.fp32_precision": ("cuda", "cudnn.fp32_precision"),
    "cudnn.conv.fp32_precision": ("cuda", "cudnn.fp32_precision"),
    "mkldnn.fp32_precision": ("mkldnn", None),
    "mkldnn.matmul.fp32_precision": ("mkldnn", "mkldnn.fp32_precision"),
    "mkldnn.conv.fp32_precision": ("mkldnn", "mkldnn.fp32_precision"),
}
_LEGACY_LEAVES = ("cuda.matmul.allow_tf32", "cudnn.allow_tf32", "float32_matmul_precision")
_NEUTRAL_LEAVES = ("cudnn.enabled", "cudnn.benchmark", "cudnn.deterministic", "mkldnn.enabled")
# cuBLAS half-GEMM flags: in both generations (torch >= 1.12 / 1.13 / 2.7), outside the mixing check.
_REDUCTIONS = (
    "cuda.matmul.allow_fp16_reduced_precision_reduction",
    "cuda.matmul.allow_bf16_reduced_precision_reduction",
)
_SPLIT_K_LEAVES = tuple(leaf + "_split_k" for leaf in _REDUCTIONS)
_FP16_ACCUMULATION = "cuda.matmul.allow_fp16_accumulation"
# How a fake torch holds them: "split_k" as torch >= 2.10 (pytorch#164766: a bool or an
# (allow_reduced_precision, allow_split_k) tuple, and _split_k getters), "bool" as older torch,
# "absent" as a torch without them.
HALF_GEMM_KINDS = ("split_k", "bool", "absent")


class FakeTorch:
    """Stands in for ``torch`` as linconv.precision uses it, for either API generation.

    ``api="fp32_precision"`` has both generations, as torch 2.13 does; touching a legacy flag
    after any fp32_precision flag was set raises, as torch does once the two disagree.
    ``resolving_getters=False`` returns raw values, to check that the module resolves "none"
    itself. ``api="allow_tf32"`` has only the legacy flags, as torch < 2.9. ``broken`` names
    leaves whose setter raises. ``half_gemm`` (HALF_GEMM_KINDS) says how the cuBLAS half-GEMM
    flags exist. Every access is logged in ``log`` as (leaf, "get"/"set").
    """

    def __init__(
        self,
        api: str,
        *,
        resolving_getters: bool = True,
        broken: tuple[str, ...] = (),
        half_gemm: str = "split_k",
    ) -> None:
        self.api = api
        self.half_gemm = half_gemm
        self.resolving_getters = resolving_getters
        self.broken = broken
        self.log: list[tuple[str, str]] = []
        self.new_api_set = False
        self.state: dict[str, Any] = {
            "cuda.matmul.allow_tf32": False,
            "cudnn.allow_tf32": True,
            "float32_matmul_precision": "highest",
            "cudnn.enabled": True,
            "cudnn.benchmark": False,
            "cudnn.deterministic": False,
            "mkldnn.enabled": True,
        }
        self.leaves = set(_LEGACY_LEAVES) | set(_NEUTRAL_LEAVES)
        if half_gemm != "absent":
            # torch's defaults: reductions allowed (split-K too), no full float16 accumulation;
            # held as (allow_reduced_precision, allow_split_k), as ATen's CuBLASReductionOption
            self.state |= dict.fromkeys(_REDUCTIONS, (True, True)) | {_FP16_ACCUMULATION: False}
            self.leaves |= {*_REDUCTIONS, _FP16_ACCUMULATION}
            if half_gemm == "split_k":
                self.leaves |= set(_SPLIT_K_LEAVES)
        if api == "fp32_precision":
            self.state |= {"fp32_precision": "none", **dict.fromkeys(_FAKE_FP32, "none")}
            self.state["cudnn.conv.fp32_precision"] = "tf32"
            self.leaves |= {"fp32_precision", *_FAKE_FP32}

        def node(path: str, **children: _Node) -> _Node:
            return _Node(self, path, children)

        self.backends = node(
            "",
            cuda=node("cuda", matmul=node("cuda.matmul")),
            cudnn=node("cudnn", conv=node("cudnn.conv")),
            mkldnn=node("mkldnn", matmul=node("mkldnn.matmul"), conv=node("mkldnn.conv")),
        )

    def raw(self) -> dict[str, Any]:
        return dict(self.state)

    def touched(self, leaves: tuple[str, ...] | set[str]) -> list[tuple[str, str]]:
        return [entry for entry in self.log if entry[0] in leaves]

    def get_float32_matmul_precision(self) -> str:
        return self.get("float32_matmul_precision")

    def set_float32_matmul_precision(self, value: str) -> None:
        self.set("float32_matmul_precision", value)

    def _check_generation(self, key: str) -> None:
        if key in _LEGACY_LEAVES and self.new_api_set:
            raise MixedAPIError(f"{key}: you have used mix of the legacy and new APIs")

    def get(self, key: str) -> Any:
        self.log.append((key, "get"))
        self._check_generation(key)
        if key == "cuda.matmul.allow_tf32":
            return self.state["float32_matmul_precision"] != "highest"
        if key in _REDUCTIONS:
            return self.state[key][0]
        if key in _SPLIT_K_LEAVES:
            return self.state[key.removesuffix("_split_k")][1]
        if key in _FAKE_FP32 and self.resolving_getters:
            backend, parent = _FAKE_FP32[key]
            chain = [self.state[key], self.state[parent] if parent else "none", self.state["fp32_precision"]]
            value = next((v for v in chain if v != "none"), "none")
            return "none" if backend == "cuda" and value == "bf16" else value
        return self.state[key]

    def set(self, key: str, value: Any) -> None:
        self.log.append((key, "set"))
        self._check_generation(key)
        if key in self.broken:
            raise RuntimeError(f"cannot set {key}")
        if key.endswith("fp32_precision"):
            if value not in ("ieee", "tf32", "bf16", "none"):
                raise RuntimeError(f"Unknown precision: {value}")
            if key in _FAKE_FP32 and _FAKE_FP32[key][0] == "cuda" and value == "bf16":
                raise RuntimeError("backend 'cuda' does not support precision 'bf16'")
            self.new_api_set = True
        if key == "cuda.matmul.allow_tf32":
            key, value = "float32_matmul_precision", "high" if value else "highest"
        if key in _REDUCTIONS:
            value = self._reduction_option(value)
        elif key in _SPLIT_K_LEAVES:
            raise AttributeError(f"{key} has no setter")
        self.state[key] = value

    def _reduction_option(self, value: Any) -> tuple[bool, bool]:
        """torch's cuBLASModule._parse_reduction_setting and the Context check, as the fake's
        generation has them: a bool keeps split-K allowed; only torch >= 2.10 takes a tuple."""
        if isinstance(value, bool):
            return value, True
        if self.half_gemm != "split_k" or not isinstance(value, tuple):
            raise TypeError(f"expects a bool, got {type(value).__name__}")
        allow, split_k = value
        if allow and not split_k:
            raise RuntimeError("allow_splitk=False is not supported when reduced precision reductions are enabled")
        return allow, split_k


NEW_FLAG_LEAVES = {"fp32_precision", *_FAKE_FP32}
FAKE_KINDS = ["fp32_precision-resolving", "fp32_precision-raw", "allow_tf32"]


def make_fake(kind: str, **kwargs: Any) -> FakeTorch:
    """A fake of one generation; the half-GEMM flags as that generation's torch had them unless
    ``half_gemm`` says otherwise (torch < 2.9 had no split-K getters)."""
    if kind == "allow_tf32":
        return FakeTorch("allow_tf32", **{"half_gemm": "bool", **kwargs})
    return FakeTorch("fp32_precision", resolving_getters=kind.endswith("resolving"), **kwargs)


def assert_one_generation(fake: FakeTorch) -> None:
    """The fake was only ever touched through its own generation's flags."""
    other = set(_LEGACY_LEAVES) if fake.api == "fp32_precision" else NEW_FLAG_LEAVES
    assert fake.touched(other) == []


# --- the fake itself --------------------------------------------------------------------------


def test_fake_raises_when_legacy_flag_is_touched_after_a_new_one_was_set():
    fake = FakeTorch("fp32_precision")
    assert fake.backends.cudnn.allow_tf32 is True
    fake.backends.cudnn.conv.fp32_precision = "ieee"
    with pytest.raises(MixedAPIError):
        _ = fake.backends.cudnn.allow_tf32
    with pytest.raises(MixedAPIError):
        fake.get_float32_matmul_precision()


def test_legacy_fake_has_no_fp32_precision_flags():
    fake = FakeTorch("allow_tf32")
    with pytest.raises(AttributeError):
        _ = fake.backends.cuda.matmul.fp32_precision


# --- reading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", FAKE_KINDS)
def test_read_flags_reads_only_its_own_generation(kind):
    fake = make_fake(kind)
    flags = read_flags(torch_module=fake)
    assert detect_api(torch_module=fake) == fake.api == flags.api
    assert (flags.cuda_matmul, flags.cudnn_conv, flags.mkldnn_matmul, flags.mkldnn_conv) == (
        "ieee",
        "tf32",
        "ieee",
        "ieee",
    )
    assert (flags.cudnn_enabled, flags.cudnn_benchmark, flags.cudnn_deterministic, flags.mkldnn_enabled) == (
        True,
        False,
        False,
        True,
    )
    assert flags.float32_matmul_precision == (None if fake.api == "fp32_precision" else "highest")
    # torch's defaults: half GEMMs may reduce in half precision; no full float16 accumulation
    assert (
        flags.cuda_fp16_reduced_precision_reduction,
        flags.cuda_bf16_reduced_precision_reduction,
        flags.cuda_fp16_accumulation,
    ) == (True, True, False)
    assert_one_generation(fake)


@pytest.mark.parametrize("kind", FAKE_KINDS)
@pytest.mark.parametrize("half_gemm", HALF_GEMM_KINDS)
def test_read_flags_records_the_half_gemm_flags_or_none_where_torch_has_none(kind, half_gemm):
    fake = make_fake(kind, half_gemm=half_gemm)
    if half_gemm != "absent":
        fake.state["cuda.matmul.allow_bf16_reduced_precision_reduction"] = (False, True)
        fake.state[_FP16_ACCUMULATION] = True
    flags = read_flags(torch_module=fake)
    expected = (None, None, None) if half_gemm == "absent" else (True, False, True)
    assert (
        flags.cuda_fp16_reduced_precision_reduction,
        flags.cuda_bf16_reduced_precision_reduction,
        flags.cuda_fp16_accumulation,
    ) == expected
    assert flags.api == fake.api
    assert_one_generation(fake)


@pytest.mark.parametrize("resolving", [True, False], ids=["resolving", "raw"])
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, ("ieee", "tf32", "ieee", "ieee")),
        ({"fp32_precision": "tf32"}, ("tf32", "tf32", "tf32", "tf32")),
        # "cuda" has no bf16 mode: an inherited bf16 reads as "none", i.e. IEEE.
        ({"fp32_precision": "bf16"}, ("ieee", "tf32", "bf16", "bf16")),
        ({"cudnn.fp32_precision": "ieee", "cudnn.conv.fp32_precision": "none"}, ("ieee", "ieee", "ieee", "ieee")),
        ({"cudnn.fp32_precision": "tf32", "fp32_precision": "ieee"}, ("tf32", "tf32", "ieee", "ieee")),
        (
            {"mkldnn.fp32_precision": "bf16", "mkldnn.conv.fp32_precision": "ieee", "fp32_precision": "tf32"},
            ("tf32", "tf32", "bf16", "ieee"),
        ),
        ({"cuda.matmul.fp32_precision": "tf32", "cudnn.conv.fp32_precision": "ieee"}, ("tf32", "ieee", "ieee", "ieee")),
    ],
)
def test_read_flags_resolves_none_through_backend_then_generic(resolving, raw, expected):
    fake = FakeTorch("fp32_precision", resolving_getters=resolving)
    fake.state |= raw
    flags = read_flags(torch_module=fake)
    assert (flags.cuda_matmul, flags.cudnn_conv, flags.mkldnn_matmul, flags.mkldnn_conv) == expected


@pytest.mark.parametrize(
    ("matmul_precision", "cudnn_allow_tf32", "expected"),
    [
        ("highest", True, ("ieee", "tf32", "ieee", "ieee")),
        ("high", False, ("tf32", "ieee", "tf32", "ieee")),
        ("medium", True, ("tf32", "tf32", "bf16", "ieee")),
    ],
)
def test_read_flags_legacy_translation(matmul_precision, cudnn_allow_tf32, expected):
    fake = FakeTorch("allow_tf32")
    fake.state |= {"float32_matmul_precision": matmul_precision, "cudnn.allow_tf32": cudnn_allow_tf32}
    flags = read_flags(torch_module=fake)
    assert (flags.cuda_matmul, flags.cudnn_conv, flags.mkldnn_matmul, flags.mkldnn_conv) == expected
    assert flags.float32_matmul_precision == matmul_precision


def test_flags_serialise_to_json_and_describe_in_one_line():
    flags = read_flags(torch_module=FakeTorch("allow_tf32"))
    assert json.loads(json.dumps(flags.to_dict())) == flags.to_dict()
    assert PrecisionFlags(**flags.to_dict()) == flags
    assert flags.describe() == (
        "allow_tf32: cuda.matmul=ieee cudnn.conv=tf32 mkldnn.matmul=ieee mkldnn.conv=ieee "
        "float32_matmul_precision=highest; cudnn=on benchmark=off deterministic=off mkldnn=on; "
        "cuBLAS half reductions: fp16=on bf16=on fp16-accumulation=off"
    )
    new = read_flags(torch_module=FakeTorch("fp32_precision", half_gemm="absent"))
    assert new.describe() == (
        "fp32_precision: cuda.matmul=ieee cudnn.conv=tf32 mkldnn.matmul=ieee mkldnn.conv=ieee; "
        "cudnn=on benchmark=off deterministic=off mkldnn=on; "
        "cuBLAS half reductions: fp16=n/a bf16=n/a fp16-accumulation=n/a"
    )
    # a snapshot written before the half-GEMM flags were recorded still reads back
    older = {k: v for k, v in flags.to_dict().items() if "fp16" not in k and "bf16" not in k}
    assert PrecisionFlags(**older).cuda_fp16_reduced_precision_reduction is None


# --- lanes on fakes ---------------------------------------------------------------------------


def test_unknown_lane_is_rejected_with_the_choices():
    message = "lane must be one of ('as-shipped', 'strict'), got 'fast'"
    fake = FakeTorch("fp32_precision")
    with pytest.raises(ValueError, match=re.escape(message)), precision_lane("fast", torch_module=fake):
        pass
    assert fake.log == []
    assert LANES == ("as-shipped", "strict")


@pytest.mark.parametrize("kind", FAKE_KINDS)
def test_as_shipped_lane_writes_nothing(kind):
    fake = make_fake(kind)
    with precision_lane("as-shipped", torch_module=fake) as flags:
        assert flags == read_flags(torch_module=fake)
    assert [entry for entry in fake.log if entry[1] == "set"] == []


@pytest.mark.parametrize("kind", FAKE_KINDS)
def test_strict_lane_is_ieee_inside_and_restores_raw_state(kind):
    fake = make_fake(kind)
    before = fake.raw()
    with precision_lane("strict", torch_module=fake) as flags:
        assert (flags.cuda_matmul, flags.cudnn_conv, flags.mkldnn_matmul, flags.mkldnn_conv) == ("ieee",) * 4
        assert flags == read_flags(torch_module=fake)
    assert fake.raw() == before
    assert_one_generation(fake)


@pytest.mark.parametrize("kind", FAKE_KINDS)
@pytest.mark.parametrize("half_gemm", HALF_GEMM_KINDS)
def test_strict_lane_turns_half_precision_reductions_off_and_restores_them(kind, half_gemm):
    fake = make_fake(kind, half_gemm=half_gemm)
    before = fake.raw()
    with precision_lane("strict", torch_module=fake) as flags:
        off = None if half_gemm == "absent" else False
        assert (
            flags.cuda_fp16_reduced_precision_reduction,
            flags.cuda_bf16_reduced_precision_reduction,
            flags.cuda_fp16_accumulation,
        ) == (off, off, off)
        if half_gemm != "absent":
            # split-K itself stays allowed: it reorders float32 sums; the storage-dtype adds are off
            assert fake.state[_REDUCTIONS[0]] == fake.state[_REDUCTIONS[1]] == (False, True)
    assert fake.raw() == before
    assert_one_generation(fake)


def test_strict_lane_writes_the_split_k_tuple_so_that_split_k_off_stays_off():
    # (False, False) is "no reduced precision, no split-K" (batch-invariant setups use it). A
    # plain False would read back as (False, True): the lane writes the tuple instead.
    fake = FakeTorch("fp32_precision", half_gemm="split_k")
    fake.state[_REDUCTIONS[0]] = (False, False)
    before = fake.raw()
    with precision_lane("strict", torch_module=fake):
        assert fake.state[_REDUCTIONS[0]] == (False, False)
        assert fake.state[_REDUCTIONS[1]] == (False, True)
    assert fake.raw() == before


def test_strict_lane_on_torch_before_2_10_writes_plain_bools():
    fake = FakeTorch("fp32_precision", half_gemm="bool")  # a tuple would raise TypeError here
    with precision_lane("strict", torch_module=fake) as flags:
        assert flags.cuda_fp16_reduced_precision_reduction is False
    assert fake.state[_REDUCTIONS[0]] == (True, True)


@pytest.mark.parametrize("kind", FAKE_KINDS)
def test_strict_lane_restores_on_exception(kind):
    fake = make_fake(kind)
    before = fake.raw()
    with pytest.raises(KeyError, match="boom"), precision_lane("strict", torch_module=fake):
        raise KeyError("boom")
    assert fake.raw() == before


@pytest.mark.parametrize(
    ("kind", "broken"),
    [("fp32_precision-resolving", "mkldnn.matmul.fp32_precision"), ("allow_tf32", "cuda.matmul.allow_tf32")],
)
def test_strict_lane_undoes_partial_entry(kind, broken):
    fake = make_fake(kind, broken=(broken,))
    before = fake.raw()
    with (
        pytest.raises(RuntimeError, match=f"cannot set {re.escape(broken)}"),
        precision_lane("strict", torch_module=fake),
    ):
        pytest.fail("the block must not run")
    assert fake.raw() == before


def test_legacy_strict_lane_brings_back_medium_matmul_precision():
    fake = FakeTorch("allow_tf32")
    fake.state |= {"float32_matmul_precision": "medium", "cudnn.allow_tf32": True}
    with precision_lane("strict", torch_module=fake) as flags:
        assert fake.state["float32_matmul_precision"] == "highest"
        assert fake.state["cudnn.allow_tf32"] is False
        assert flags.float32_matmul_precision == "highest"
    assert fake.state["float32_matmul_precision"] == "medium"
    assert fake.state["cudnn.allow_tf32"] is True


@pytest.mark.parametrize("resolving", [True, False], ids=["resolving", "raw"])
@pytest.mark.parametrize(
    "raw",
    [
        {"fp32_precision": "tf32"},
        {"fp32_precision": "bf16"},
        {"cudnn.fp32_precision": "tf32", "mkldnn.fp32_precision": "bf16"},
        # What the legacy `cudnn.allow_tf32 = False` leaves behind on torch 2.13: conv inherits.
        {"cudnn.conv.fp32_precision": "none"},
        {"cuda.matmul.fp32_precision": "ieee", "mkldnn.conv.fp32_precision": "tf32"},
    ],
)
def test_strict_lane_keeps_inheritance(resolving, raw):
    fake = FakeTorch("fp32_precision", resolving_getters=resolving)
    fake.state |= raw
    before = fake.raw()
    with precision_lane("strict", torch_module=fake):
        pass
    assert fake.raw() == before


def test_strict_lane_reads_back_identically_when_raw_values_are_ambiguous():
    # An explicit flag equal to what it would inherit looks like "none" through torch 2.13's
    # resolving getters; the lane writes back "none", which reads the same.
    fake = FakeTorch("fp32_precision")
    fake.state |= {"fp32_precision": "tf32", "cuda.matmul.fp32_precision": "tf32"}
    shown = {key: fake.get(key) for key in _FAKE_FP32}
    with precision_lane("strict", torch_module=fake):
        pass
    assert {key: fake.get(key) for key in _FAKE_FP32} == shown


@pytest.mark.parametrize("kind", FAKE_KINDS)
def test_cudnn_mode_sets_and_restores_only_enabled_and_benchmark(kind):
    fake = make_fake(kind)
    before = fake.raw()
    with pytest.raises(KeyError), cudnn_mode(enabled=False, benchmark=True, torch_module=fake):
        assert (fake.state["cudnn.enabled"], fake.state["cudnn.benchmark"]) == (False, True)
        raise KeyError("boom")
    assert fake.raw() == before
    assert {leaf for leaf, _ in fake.log} == {"cudnn.enabled", "cudnn.benchmark"}


# --- the error model --------------------------------------------------------------------------

SHIPPED = PrecisionFlags(
    api="fp32_precision",
    cuda_matmul="ieee",
    cudnn_conv="tf32",
    mkldnn_matmul="ieee",
    mkldnn_conv="ieee",
    cudnn_enabled=True,
    cudnn_benchmark=False,
    cudnn_deterministic=False,
    mkldnn_enabled=True,
)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # (cuda conv, cuda matmul, cpu conv, cpu matmul); mps is never rounded.
        ({}, (TF32, 0.0, 0.0, 0.0)),
        ({"cudnn_conv": "ieee"}, (0.0, 0.0, 0.0, 0.0)),
        ({"cudnn_enabled": False}, (0.0, 0.0, 0.0, 0.0)),
        # A conv that misses cuDNN runs as im2col + cuBLAS GEMM, which follows the matmul flag.
        ({"cuda_matmul": "tf32", "cudnn_conv": "ieee"}, (TF32, TF32, 0.0, 0.0)),
        ({"mkldnn_conv": "tf32"}, (TF32, 0.0, TF32, 0.0)),
        ({"mkldnn_conv": "tf32", "mkldnn_enabled": False}, (TF32, 0.0, 0.0, 0.0)),
        ({"mkldnn_matmul": "bf16"}, (TF32, 0.0, BF16, BF16)),
        ({"mkldnn_matmul": "tf32", "mkldnn_conv": "bf16"}, (TF32, 0.0, BF16, TF32)),
    ],
)
def test_input_unit_roundoff_table(changes, expected):
    flags = replace(SHIPPED, **changes)
    got = tuple(input_unit_roundoff(device, op, flags) for device in ("cuda", "cpu") for op in ("conv", "matmul"))
    assert got == expected
    assert input_unit_roundoff("mps", "conv", flags) == input_unit_roundoff("mps", "matmul", flags) == 0.0


@pytest.mark.parametrize(
    ("device_type", "op", "message"),
    [
        ("xpu", "conv", "device_type must be one of ('cpu', 'cuda', 'mps'), got 'xpu'"),
        ("cuda", "linear", "op must be one of ('conv', 'matmul'), got 'linear'"),
    ],
)
def test_input_unit_roundoff_rejects_bad_arguments(device_type, op, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        input_unit_roundoff(device_type, op, SHIPPED)


# --- the installed torch ----------------------------------------------------------------------


def _fp32_getters() -> dict[str, str]:
    values = {}
    for path in ALL_FP32_FLAGS:
        holder = torch.backends
        for part in filter(None, path.split(".")):
            holder = getattr(holder, part)
        values[path or "generic"] = holder.fp32_precision
    return values


@contextmanager
def _restoring_generic() -> Iterator[None]:
    previous = torch.backends.fp32_precision
    try:
        yield
    finally:
        torch.backends.fp32_precision = previous


needs_fp32_precision = pytest.mark.skipif(
    not hasattr(torch.backends, "fp32_precision"), reason="torch < 2.9 has no fp32_precision flags"
)


@needs_fp32_precision
def test_real_torch_strict_lane_sets_and_restores_every_flag():
    before, flags_before = _fp32_getters(), read_flags()
    with precision_lane("strict") as flags:
        inside = _fp32_getters()
        assert all(inside[name] == "ieee" for name in OP_FLAGS)
        assert flags == replace(
            flags_before,
            cuda_matmul="ieee",
            cudnn_conv="ieee",
            mkldnn_matmul="ieee",
            mkldnn_conv="ieee",
            cuda_fp16_reduced_precision_reduction=False,
            cuda_bf16_reduced_precision_reduction=False,
            cuda_fp16_accumulation=False,
        )
        # Under strict, torch raises on a legacy read; read_flags must not have made one.
        assert read_flags() == flags
    assert _fp32_getters() == before
    assert read_flags() == flags_before


@needs_fp32_precision
def test_real_torch_strict_lane_restores_on_exception():
    before = _fp32_getters()
    with pytest.raises(KeyError), precision_lane("strict"):
        raise KeyError("boom")
    assert _fp32_getters() == before


@needs_fp32_precision
def test_real_torch_as_shipped_lane_changes_nothing():
    before = _fp32_getters()
    with precision_lane("as-shipped") as flags:
        assert _fp32_getters() == before
    assert flags == read_flags()


@needs_fp32_precision
def test_real_torch_strict_lane_leaves_inheriting_flags_inheriting():
    with _restoring_generic():
        torch.backends.fp32_precision = "tf32"
        with precision_lane("strict"):
            pass
        torch.backends.fp32_precision = "ieee"
        after = _fp32_getters()
    # cuda.matmul and the oneDNN flags inherit again; cuDNN conv keeps the TF32 torch ships it with.
    assert (after["cuda.matmul"], after["mkldnn.matmul"], after["mkldnn.conv"], after["cudnn.conv"]) == (
        "ieee",
        "ieee",
        "ieee",
        "tf32",
    )


@needs_fp32_precision
def test_real_torch_cudnn_mode_restores_and_keeps_the_strict_lane():
    before = (torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark)
    with precision_lane("strict"):
        with cudnn_mode(enabled=not before[0], benchmark=not before[1]):
            assert (torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark) == (not before[0], not before[1])
            # cudnn.flags() would have put cuDNN conv back to TF32 here (or raised on entry).
            assert torch.backends.cudnn.conv.fp32_precision == "ieee"
        assert (torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark) == before


@pytest.mark.skipif(
    not hasattr(torch.backends.cuda.matmul, "allow_fp16_reduced_precision_reduction_split_k"),
    reason="torch < 2.10 has no split-K control of reduced-precision reductions",
)
def test_real_torch_strict_lane_turns_half_reductions_off_and_keeps_split_k_as_it_was():
    matmul = torch.backends.cuda.matmul
    before = (matmul.allow_fp16_reduced_precision_reduction, matmul.allow_fp16_reduced_precision_reduction_split_k)
    bf16_before = matmul.allow_bf16_reduced_precision_reduction
    try:
        matmul.allow_fp16_reduced_precision_reduction = (False, False)
        with precision_lane("strict") as flags:
            assert flags.cuda_fp16_reduced_precision_reduction is False
            assert flags.cuda_bf16_reduced_precision_reduction is False
            assert matmul.allow_fp16_reduced_precision_reduction_split_k is False
        assert (
            matmul.allow_fp16_reduced_precision_reduction,
            matmul.allow_fp16_reduced_precision_reduction_split_k,
        ) == (False, False)
        assert matmul.allow_bf16_reduced_precision_reduction == bf16_before
    finally:
        matmul.allow_fp16_reduced_precision_reduction = before


# A fresh interpreter, so the defaults are torch's and the mixing check starts clean.
_FRESH_TORCH_PROBE = """
import json, torch
from linconv.lanes.flags import read_flags
out = {"flags": read_flags().to_dict()}
torch.backends.cudnn.conv.fp32_precision = "ieee"
try:
    torch.backends.cudnn.allow_tf32
except RuntimeError:
    out["legacy_read_after_new_write"] = "RuntimeError"
print(json.dumps(out))
"""


@needs_fp32_precision
def test_fresh_torch_ships_tf32_conv_and_ieee_matmul_and_forbids_mixing():
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_TORCH_PROBE],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    out = json.loads(result.stdout)
    assert out["flags"] == {
        "api": "fp32_precision",
        "cuda_matmul": "ieee",
        "cudnn_conv": "tf32",
        "mkldnn_matmul": "ieee",
        "mkldnn_conv": "ieee",
        "cudnn_enabled": True,
        "cudnn_benchmark": False,
        "cudnn_deterministic": False,
        "mkldnn_enabled": True,
        "float32_matmul_precision": None,
        "cuda_fp16_reduced_precision_reduction": True,
        "cuda_bf16_reduced_precision_reduction": True,
        "cuda_fp16_accumulation": False,
    }
    assert out["legacy_read_after_new_write"] == "RuntimeError"
