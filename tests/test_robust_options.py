"""Options, devices, profiles, calibration and converters given nonsense (docs/robustness.md): a
usage error naming the option, or a ValueError naming the argument and the size, never a traceback,
an INTERNALERROR or a run that silently checks nothing (or everything twice). Each test failed on
the commit before these fixes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from linconv.__main__ import main
from linconv.lanes.devices import parse_devices

ROOT = Path(__file__).resolve().parent.parent
NO_CUDA = "CUDA is not available here (torch.cuda.is_available() is False)"


def collect(*option: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "properties/test_init.py",
         *option],
        capture_output=True, text=True, cwd=ROOT, timeout=120, env=environment,
    )  # fmt: skip


USAGE_ERRORS = {
    "--devices cuda (absent)": (
        ["--devices", "cuda"],
        {},
        f"--devices: cuda was asked for but is absent: {NO_CUDA}. Name only present devices, use 'all' (absent ones "
        "are skipped), or pass --skip-absent-devices to skip it",
    ),
    "--devices cpu,cpu": (
        ["--devices", "cpu,cpu"],
        {},
        "--devices: must name each device once (each would run every test again), got 'cpu' twice in 'cpu,cpu'",
    ),
    '--dtypes ""': (
        ["--dtypes", ""],
        {},
        "dtypes must be a comma-separated subset of float32,float64,bfloat16,float16, got ''",
    ),
    "--max-numel 10**20": (
        ["--max-numel", str(10**20)],
        {},
        f"max numel (LINCONV_MAX_NUMEL / --max-numel) must be an int in [4096, 67108864], got '{10**20}'",
    ),
    "LINCONV_COMPILE_TIME_LIMIT=-1": (
        [],
        {"LINCONV_COMPILE_TIME_LIMIT": "-1"},
        "--compile-time-limit / LINCONV_COMPILE_TIME_LIMIT must be seconds >= 0 (0: no limit), got '-1'",
    ),
    "--compile-time-limit soon": (
        ["--compile-time-limit", "soon"],
        {},
        "--compile-time-limit / LINCONV_COMPILE_TIME_LIMIT must be seconds >= 0 (0: no limit), got 'soon'",
    ),
    "LINCONV_PROFILE=nope": (
        [],
        {"LINCONV_PROFILE": "nope"},
        "LINCONV_PROFILE must name a registered Hypothesis profile (dev, ci, thorough, debug, or one a plugin "
        "registers), got 'nope'",
    ),
    "--hypothesis-profile nope": (
        ["--hypothesis-profile", "nope"],
        {},
        "--hypothesis-profile must name a registered Hypothesis profile (dev, ci, thorough, debug, or one a plugin "
        "registers), got 'nope'",
    ),
}


@pytest.mark.parametrize("kind", list(USAGE_ERRORS))
def test_a_bad_option_is_a_usage_error_naming_it(kind):
    option, env, message = USAGE_ERRORS[kind]
    if "cuda" in kind and torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    proc = collect(*option, env=env)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]  # pytest's usage error
    assert f"ERROR: {message}\n" in proc.stderr
    assert "Traceback" not in proc.stderr and "INTERNALERROR" not in proc.stdout + proc.stderr


def test_an_absent_device_is_skipped_when_asked():
    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    proc = collect("--devices", "cpu,cuda", "--skip-absent-devices")
    assert (
        proc.returncode == 0 and "8 tests collected" in proc.stdout
    )  # cpu-default in four dtypes, cuda skipped per mode


def test_the_same_cuda_device_twice_is_refused():
    with pytest.raises(ValueError, match=r"got 'cuda' and 'cuda:0', the same device in 'cuda,cuda:0'$"):
        parse_devices("cuda,cuda:0", skip_absent=True)
    assert parse_devices("cpu,cuda:1,cuda:0", skip_absent=True) == ["cpu", "cuda:1", "cuda:0"]


def cli(capsys, *argv) -> tuple[int, str, str]:
    status = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def test_calibrate_refuses_an_absent_device_and_unwritable_outputs_before_running(capsys, tmp_path):
    common = ["calibrate", "--examples", "1", "--relations", "pointwise"]
    if not torch.cuda.is_available():
        assert cli(capsys, *common, "--device", "cuda") == (2, "", f"calibrate: --device cuda: {NO_CUDA}\n")
    assert cli(capsys, *common, "--samples", tmp_path) == (
        2,
        "",
        f"calibrate: --samples {tmp_path} is a directory, not a file\n",
    )
    status, out, err = cli(capsys, *common, "--json", "/proc/calibration.json")
    assert (status, out) == (2, "") and err.startswith("calibrate: --json /proc/calibration.json cannot be written (")


# --- converters ------------------------------------------------------------------------------------


def test_fusing_complex_modules_is_refused_not_silently_real():
    from linconv.converters import fuse_linear_after_conv

    conv, linear = nn.Conv2d(2, 3, 2, dtype=torch.complex64), nn.Linear(3, 2, dtype=torch.complex64)
    with pytest.raises(ValueError) as info:
        fuse_linear_after_conv(conv, linear, (2, 2))
    assert str(info.value) == (
        "fuse_linear_after_conv: conv.weight.dtype must be a real floating-point dtype (float16, bfloat16, "
        "float32, float64), got torch.complex64"
    )


@pytest.mark.parametrize("name", ["conv1x1_to_linear", "full_kernel_conv_to_linear", "conv_to_dense_linear"])
def test_every_converter_refuses_complex_and_integer_parameters(name):
    from linconv import converters

    args = {"conv_to_dense_linear": ((2, 2),)}.get(name, ())
    for dtype in (torch.complex64, torch.int64):
        conv = nn.Conv2d(2, 3, 1 if name == "conv1x1_to_linear" else 2, bias=False)
        conv.weight = nn.Parameter(torch.ones_like(conv.weight, dtype=dtype), requires_grad=False)
        with pytest.raises(ValueError, match=rf"^{name}: conv\.weight\.dtype must be a real floating-point dtype"):
            getattr(converters, name)(conv, *args)


def test_a_dense_matrix_over_the_budget_is_a_value_error_naming_its_size():
    from linconv.converters import conv_to_dense_linear, dense_conv_weight, fuse_linear_after_conv

    conv = nn.Conv2d(16, 16, 3, padding=1)
    with pytest.raises(ValueError) as info:
        conv_to_dense_linear(conv, (64, 64))
    assert str(info.value) == (
        "conv_to_dense_linear: the dense matrix would have 65,536 x 65,536 = 4,294,967,296 entries (17.2 GB in "
        "float32), over max_numel = 268,435,456 (DENSE_MAX_NUMEL); pass a larger max_numel to build it"
    )
    with pytest.raises(ValueError, match=r"^fuse_linear_after_conv: the dense matrix would have 65,536 x 65,536 = "):
        fuse_linear_after_conv(conv, nn.Linear(16 * 64 * 64, 2), (64, 64))
    from linconv.converters import conv_geometry

    with pytest.raises(ValueError, match=r"^dense_conv_weight: the dense matrix would have 256 x 256 = 65,536 entries"):
        dense_conv_weight(conv.weight, conv_geometry(conv, (4, 4)), max_numel=1000)
    assert conv_to_dense_linear(conv, (4, 4), max_numel=65_536).weight.shape == (256, 256)


def test_a_dtype_test_draws_only_its_dtype_and_refuses_one_its_strategy_cannot_draw():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from linconv.core import config
    from strategies import dtypes

    seen: set[str] = set()

    @settings(max_examples=20, database=None)
    @given(st.tuples(dtypes(), dtypes(allowed=("float16", "float64"))))
    def draw(pair):
        seen.update(pair)

    with config.drawing_dtype("float16"):
        draw()
    assert seen == {"float16"}
    with config.drawing_dtype("bfloat16"), pytest.raises(ValueError, match="not 'bfloat16'"):
        draw()
    with pytest.raises(ValueError, match="dtype must be one of"):
        with config.drawing_dtype("float8"):
            pass


def test_a_dtype_test_gets_its_share_and_never_only_the_simplest_example():
    from linconv.plugins.options import example_budget

    assert example_budget(100, 4) == 25 and example_budget(50, 4) == 13  # the profile's share, split
    assert example_budget(1000, 4, compile_examples=10) == 3  # a compiled lane's budget, split
    # Hypothesis's first example is the simplest, under every seed: one drawn at least
    assert example_budget(100, 4, compile_examples=2) == 2 and example_budget(10, 4, compile_examples=1) == 2
    assert example_budget(1, 4) == 1  # a profile of one example keeps it
