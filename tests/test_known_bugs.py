"""Which cases the properties steer away from: a crash marked avoid_everywhere on every CPU, every
other known bug exactly where its reproducer fails (elsewhere the property must report it); the
reproductions are cached per torch build and CPU; corpus cases tied to a bug follow the same answer."""

from __future__ import annotations

from dataclasses import replace

import torch

from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.known_bugs import KNOWN_BUGS, avoided_bug, known_crash, matching_bug, present
from linconv.relations import run_relation

# the case thorough seed 1 shrank to (docs/robustness.md)
AMX_CASE = Case(ConvGeometry(1, 1, 1, (6, 7), (2, 4), (1, 2), (0, 0), (1, 2), 1, "zeros", False), dtype="bfloat16")
CRASH_CASE = Case(ConvGeometry(2, 3, 27, (12, 6), (1, 1), (2, 2)), dtype="float32", memory_format="channels_last")


def _bug(name: str):
    return next(k for k in KNOWN_BUGS if k.name == name)


def test_wrong_result_signature_is_narrow() -> None:
    bug = _bug("onednn-amx-bf16-conv-fwd-strided-single-column")
    assert bug.matches(AMX_CASE)
    for other in (
        Case(AMX_CASE.geometry, dtype="float16"),
        Case(AMX_CASE.geometry, dtype="float32"),
        Case(ConvGeometry(1, 1, 1, (6, 7), (2, 4), (1, 1), (0, 0), (1, 2)), dtype="bfloat16"),  # stride_w 1
        Case(ConvGeometry(1, 1, 1, (6, 9), (2, 4), (1, 2), (0, 0), (1, 1)), dtype="bfloat16"),  # 3 output columns
        Case(ConvGeometry(1, 1, 1, (2, 7), (2, 4), (1, 2), (0, 0), (1, 2)), dtype="bfloat16"),  # one output row
    ):
        assert not bug.matches(other), other


def test_wrong_results_are_avoided_exactly_where_they_reproduce() -> None:
    bug = _bug("onednn-amx-bf16-conv-fwd-strided-single-column")
    assert avoided_bug(AMX_CASE, lambda b: False) is None  # absent: the property must judge these inputs
    assert avoided_bug(AMX_CASE, lambda b: b is bug) is bug  # present, on any torch: avoided
    assert avoided_bug(Case(AMX_CASE.geometry, dtype="float32"), lambda b: True) is None  # outside the signature
    assert known_crash(AMX_CASE, lambda b: True) is None  # a wrong result, not a crash: corpus replays still run it
    assert matching_bug(AMX_CASE) is bug


def test_crashes_are_avoided_on_every_cpu_and_torch() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        crash = known_crash(CRASH_CASE, lambda b: False)  # even where its reproducer does not crash
        assert crash is not None and crash.kind == "crash" and crash.avoid_everywhere
        assert avoided_bug(CRASH_CASE, lambda b: False) is crash
    finally:
        torch.set_num_threads(threads)


def test_padding_only_tap_signature() -> None:
    bug = _bug("onednn-amx-bf16-conv-bwd-padding-only-tap")
    seed_one = ConvGeometry(1, 1, 1, (1, 1), (1, 2), (1, 2), (0, 1))  # tap 0 reads only padding
    assert bug.matches(Case(seed_one, dtype="bfloat16"))
    assert not bug.matches(Case(seed_one, dtype="float32"))
    assert not bug.matches(Case(ConvGeometry(1, 1, 1, (1, 3), (1, 2), (1, 2), (0, 1)), dtype="bfloat16"))
    # replicate padding is applied by linconv before the conv: the conv itself sees no padding
    replicate = ConvGeometry(1, 1, 1, (2, 2), (1, 2), (1, 2), (0, 1), padding_mode="replicate")
    assert not bug.matches(Case(replicate, dtype="bfloat16"))


GROUPED_CASE = Case(
    ConvGeometry(1, 4, 4, (3, 3), (2, 2), groups=2),
    dtype="float64",
    memory_format="channels_last",
    input_view="size1_strides",
)


def test_grouped_size1_strides_signature() -> None:
    bug = _bug("grouped-conv-bwd-weight-size1-strides-channels-last")
    assert bug.matches(GROUPED_CASE)
    assert not bug.matches(Case(GROUPED_CASE.geometry, dtype="float32", memory_format="channels_last",
                                input_view="size1_strides"))  # fmt: skip
    assert not bug.matches(Case(GROUPED_CASE.geometry, dtype="float64", memory_format="channels_last"))
    depthwise = ConvGeometry(1, 4, 4, (3, 3), (2, 2), groups=4)  # one input channel per group: right
    assert not bug.matches(Case(depthwise, dtype="float64", memory_format="channels_last", input_view="size1_strides"))


def test_reference_runs_on_the_canonical_layout() -> None:
    """The float64 reference is computed from contiguous copies: a layout bug shows in the formulation
    that runs the unusual layout (conv2d), not in the ones that agree with the mathematics."""
    result = run_relation("general_conv", GROUPED_CASE)
    wrong = {(c.formulation, c.tensor) for c in result.violations}
    if present(_bug("grouped-conv-bwd-weight-size1-strides-channels-last")):
        assert wrong == {("conv2d", "grad weight")}
    else:
        assert not wrong
    for c in result.comparisons:
        if c.formulation in ("unfold_matmul", "dense_linear"):
            assert c.ok, c.describe()


def test_reproductions_are_cached_per_build_and_cpu(tmp_path, monkeypatch) -> None:
    from linconv.known_bugs import reproduce

    monkeypatch.setenv("LINCONV_CACHE_DIR", str(tmp_path))
    calls = []
    monkeypatch.setattr(reproduce, "_run", lambda bug: calls.append(bug.name) or reproduce.Reproduction(
        bug.name, bug.name.startswith("grouped"), 1 if bug.name.startswith("grouped") else 0, 0.1, ""))  # fmt: skip
    reproduce.reproductions.cache_clear()
    try:
        first = reproduce.reproductions()
        assert sorted(calls) == sorted(b.name for b in KNOWN_BUGS)
        (cached,) = tmp_path.glob("known-bugs-*.json")
        reproduce.reproductions.cache_clear()
        assert reproduce.reproductions() == first and len(calls) == len(KNOWN_BUGS)  # read back, not rerun
        cached.write_text("{not json")  # a cache it cannot use: run them again
        reproduce.reproductions.cache_clear()
        assert reproduce.reproductions() == first and len(calls) == 2 * len(KNOWN_BUGS)
    finally:
        reproduce.reproductions.cache_clear()


def test_a_corpus_case_tied_to_a_known_bug_follows_the_reproduction(monkeypatch) -> None:
    from linconv import known_bugs
    from linconv.corpus import Regression

    tied = Regression(
        "general_conv", GROUPED_CASE, "xfail", known_bug="grouped-conv-bwd-weight-size1-strides-channels-last"
    )
    monkeypatch.setattr(known_bugs, "present", lambda bug: True)
    assert tied.expected_to_fail()
    monkeypatch.setattr(known_bugs, "present", lambda bug: False)
    assert not tied.expected_to_fail()
    assert not Regression("general_conv", GROUPED_CASE).expected_to_fail()


def test_grouped_channels_last_size1_strided_weight_signature() -> None:
    bug = _bug("grouped-conv-channels-last-size1-strided-weight")
    seed_one = ConvGeometry(1, 4, 2, (1, 1, 2), (1, 1, 2), groups=2)  # thorough seed 1's shrunk conv3d
    found = Case(seed_one, dtype="float32", memory_format="channels_last", param_layout="size1_strides")
    assert bug.matches(found)
    assert not bug.matches(replace(found, dtype="float64"))
    assert not bug.matches(replace(found, param_layout="dense"))
    assert not bug.matches(replace(found, memory_format="contiguous"))
    assert not bug.matches(replace(found, geometry=ConvGeometry(1, 4, 2, (1, 1, 2), (1, 1, 2))))  # groups 1
    no_size1 = ConvGeometry(1, 4, 4, (3, 3, 3), (2, 2, 2), groups=2)  # no size-1 weight dimension
    assert not bug.matches(replace(found, geometry=no_size1))


def test_bf16_strided_dilated_1x1_signature() -> None:
    bug = _bug("bf16-strided-dilated-1x1-conv-bwd-input-channels-last")
    seed_five = ConvGeometry(1, 16, 1, (10, 6), (1, 1), (1, 2), dilation=(1, 2))
    found = Case(seed_five, dtype="bfloat16", memory_format="channels_last")
    assert bug.matches(found)
    assert not bug.matches(replace(found, dtype="float32"))
    assert not bug.matches(replace(found, memory_format="contiguous"))
    assert not bug.matches(replace(found, geometry=ConvGeometry(1, 16, 1, (10, 6), (1, 1), (1, 2))))  # no dilation


def test_bf16_conv3d_kernel_over_input_signature() -> None:
    bug = _bug("bf16-conv3d-bwd-weight-kernel-over-input-channels-last")
    seed_three = ConvGeometry(1, 2, 1, (3, 1, 1), (5, 1, 1), padding="same")
    found = Case(seed_three, dtype="bfloat16", memory_format="channels_last")
    assert bug.matches(found)
    assert not bug.matches(replace(found, dtype="float32"))
    assert not bug.matches(replace(found, memory_format="contiguous"))
    assert not bug.matches(replace(found, geometry=ConvGeometry(1, 2, 1, (5, 1, 1), (5, 1, 1), padding="same")))
    assert not bug.matches(replace(found, geometry=ConvGeometry(1, 2, 1, (3, 1), (5, 1), padding="same")))  # conv2d


def test_bf16_grouped_one_channel_strided_column_signature() -> None:
    bug = _bug("bf16-grouped-conv-one-channel-strided-column-channels-last")
    seed_four = ConvGeometry(1, 2, 4, (3, 4), (2, 4), (1, 2), padding="valid", groups=2)
    found = Case(seed_four, dtype="bfloat16", memory_format="channels_last")
    assert bug.matches(found)
    assert not bug.matches(replace(found, dtype="float32"))
    assert not bug.matches(replace(found, memory_format="contiguous"))
    assert not bug.matches(
        replace(found, geometry=ConvGeometry(1, 2, 4, (3, 8), (2, 4), (1, 2), groups=2))
    )  # 3 columns
    assert not bug.matches(
        replace(found, geometry=ConvGeometry(1, 4, 4, (3, 4), (2, 4), (1, 2), groups=2))
    )  # 2 a group


def test_sliced_weight_one_channel_strided_column_signature() -> None:
    bug = _bug("conv-sliced-weight-one-channel-strided-column-channels-last")
    ci_case = ConvGeometry(1, 1, 1, (1, 6, 5), (1, 4, 4), (1, 1, 2), padding="valid")
    found = Case(ci_case, memory_format="channels_last", param_layout="sliced")
    assert bug.matches(found) and bug.matches(replace(found, dtype="bfloat16"))
    assert not bug.matches(replace(found, dtype="float64"))
    assert not bug.matches(replace(found, param_layout="dense"))
    assert not bug.matches(replace(found, geometry=ConvGeometry(1, 1, 1, (1, 6, 7), (1, 4, 4), (1, 1, 2))))  # 2 columns
