"""The public API for users' own tests (linconv.testing) and the pytest plugin (linconv.pytest_plugin):
each assertion passes on equal maps and fails, with a readable message, on a one-term error, a
shape slip or an activation; the plugin works in a user's suite on its own, stays light, and loads
beside the verification suite's plugins without a clash."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from linconv.converters import conv1x1_to_linear, full_kernel_conv_to_linear, fuse_linear_after_conv
from linconv.testing import assert_same_map, assert_within_bound, magnitude, precision_for, reduction_length

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def head():
    torch.manual_seed(0)
    conv = nn.Conv2d(512, 5, 4)
    return conv, full_kernel_conv_to_linear(conv), torch.randn(1, 512, 4, 4)


class Squeezed(nn.Module):
    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).squeeze()


def test_a_conv_head_and_its_linear_are_the_same_map(head):
    conv, linear, x = head
    verdicts = assert_same_map(nn.Sequential(conv, nn.Flatten()), nn.Sequential(nn.Flatten(), linear), x)
    assert [v.reduction_length for v in verdicts] == [8192, 8192]
    assert all(0 < v.ratio < 1 for v in verdicts)


def test_one_dropped_input_channel_is_outside_the_bound(head):
    conv, linear, x = head
    with torch.no_grad():
        linear.weight[:, -16:] = 0  # input channel 511: 16 of 8192 terms
    with pytest.raises(AssertionError, match=r"module_b \(float32\) vs module_a in float64: OUTSIDE the error bound"):
        assert_same_map(nn.Sequential(conv, nn.Flatten()), nn.Sequential(nn.Flatten(), linear), x)


def test_squeeze_at_batch_one_is_a_different_shape(head):
    conv, _, x = head
    with pytest.raises(AssertionError, match=r"shape \(5,\) differs from the reference's \(1, 5\)"):
        assert_same_map(nn.Sequential(conv, nn.Flatten()), Squeezed(conv), x)


def test_conv_then_linear_is_one_linear_and_with_a_relu_between_it_is_not():
    torch.manual_seed(1)
    conv, linear = nn.Conv2d(64, 32, 4), nn.Linear(32, 10)
    fused = nn.Sequential(nn.Flatten(), fuse_linear_after_conv(conv, linear, (4, 4)))
    x = torch.randn(2, 64, 4, 4)
    assert_same_map(nn.Sequential(conv, nn.Flatten(), linear), fused, x)
    with pytest.raises(AssertionError, match="OUTSIDE the error bound"):
        assert_same_map(nn.Sequential(conv, nn.ReLU(), nn.Flatten(), linear), fused, x)


def test_a_module_with_other_parameters_is_refused():
    conv = nn.Conv2d(3, 4, 1)
    with pytest.raises(ValueError, match=r"module_a\.1 \(BatchNorm2d\) has \['weight', 'bias'\]; fold it"):
        assert_same_map(nn.Sequential(conv, nn.BatchNorm2d(4)), conv, torch.randn(1, 3, 2, 2))
    with pytest.raises(TypeError, match=r"module_b must be a torch\.nn\.Module, got function"):
        assert_same_map(conv, lambda x: x, torch.randn(1, 3, 2, 2))

    class Closure(nn.Module):  # uses conv without holding it: its float64 copy cannot be made
        def forward(self, x):
            return conv(x)

    with pytest.raises(ValueError, match=r"module_b: running it in float64 .* must be a registered submodule"):
        assert_same_map(conv, Closure(), torch.randn(1, 3, 2, 2))


def test_the_pointwise_difference_people_ask_about_is_rounding():
    """pytorch/pytorch#156154: conv1x1 and linear differ at ~5e-7; inside the bound, by how much."""
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 32, 1)
    linear = conv1x1_to_linear(conv)
    x = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        y_conv, y_linear = conv(x), linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    m, k = magnitude(conv, x), reduction_length(conv, x)
    # bit-identical or not (it depends on the kernels and threads), the difference is rounding
    verdict = assert_within_bound(y_linear, y_conv, magnitude=m, reduction_length=k)
    assert k == 64 and verdict.ratio < 1
    exact = conv.double()(x.double())
    assert assert_within_bound(y_linear, exact, magnitude=m, reduction_length=k).bound < verdict.bound


def test_within_bound_fails_on_one_dropped_term_and_names_it():
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 32, 1, bias=False)
    x = torch.randn(1, 64, 4, 4)
    exact = conv.double()(x.double())
    conv.float()
    with torch.no_grad():
        off = conv(x) - conv.weight[:, -1].view(1, 32, 1, 1) * x[:, -1:]  # input channel 63 dropped
    with pytest.raises(AssertionError, match=r"actual: OUTSIDE the error bound: worst at index .*K=64, float32"):
        assert_within_bound(off, exact, magnitude=magnitude(conv, x), reduction_length=64)


def test_the_bound_is_the_suites_for_the_device_half_precision_gemms_on_cuda_included():
    """As the properties' formulations get it (errormodel.rounding): on CUDA a float16 GEMM may add
    split-K partial sums in float16 (torch's default flags), which the CPU never does."""
    assert precision_for(torch.float16, "cuda", reduction_length=4096).u_part > 0
    assert precision_for(torch.float16, "cpu", reduction_length=4096).u_part == 0
    assert precision_for(torch.float32, "cuda", reduction_length=4096).u_part == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"reduction_length": 0}, ValueError, "reduction_length must be an int >= 1"),
        ({"reduction_length": 2, "magnitude": torch.ones(3)}, ValueError, "magnitude must have the reference's shape"),
    ],
)
def test_within_bound_refuses_bad_arguments(kwargs, error, message):
    args = {"magnitude": torch.ones(2), "reduction_length": 2, **kwargs}
    with pytest.raises(error, match=message):
        assert_within_bound(torch.ones(2), torch.ones(2), **args)


# --- the plugin ------------------------------------------------------------------------------------

USER_TEST = """
import torch
from torch import nn
from linconv.converters import full_kernel_conv_to_linear


def test_conv_head_is_a_linear(linconv, linconv_device):
    torch.manual_seed(0)
    conv = nn.Conv2d(512, 5, 4).to(linconv_device)
    head = nn.Sequential(nn.Flatten(), full_kernel_conv_to_linear(conv))
    x = torch.randn(1, 512, 4, 4, device=linconv_device)
    linconv.assert_same_map(nn.Sequential(conv, nn.Flatten()), head, x)


def test_squeeze_is_not(linconv):
    class Squeezed(nn.Sequential):
        def forward(self, x):
            return super().forward(x).squeeze()
    conv = nn.Conv2d(8, 3, 2)
    linconv.assert_same_map(nn.Sequential(conv, nn.Flatten()), Squeezed(conv), torch.randn(1, 8, 2, 2))
"""


def _pytest(directory: Path, *args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # Autoload off: the run sees exactly the plugins named, whether or not linconv is installed
    # here (tox installs it, and its entry point would load the plugin a second time under "linconv").
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "linconv.pytest_plugin", "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        cwd=directory,
        env=env,
        timeout=300,
    )


def readme_example() -> str:
    """The ten-line example of a user's test in the README."""
    section = (ROOT / "README.md").read_text().split("## Your own tests", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_plugin_gives_a_users_suite_its_fixtures_summary_and_report(tmp_path):
    (tmp_path / "test_user.py").write_text(USER_TEST)
    (tmp_path / "test_readme.py").write_text(readme_example())
    proc = _pytest(tmp_path, "-q", "--linconv-devices", "cpu,cuda", "--linconv-report", "checks.json", "-rs")
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert re.search(r"1 failed, 2 passed, 1 skipped|1 failed, 3 passed", out), out  # cuda skipped where absent
    assert "shape (3,) differs from the reference's (1, 3)" in out
    assert "linconv checks" in out and "worst error/bound inf (test_user.py::test_squeeze_is_not" in out
    checks = json.loads((tmp_path / "checks.json").read_text())["checks"]
    passed = [c for c in checks if c["test"].startswith("test_user.py::test_conv_head_is_a_linear[cpu]")]
    assert len(passed) == 2 and all(0 <= c["ratio"] < 1 for c in passed)
    readme = [c for c in checks if c["test"] == "test_readme.py::test_my_conv_head_is_a_linear"]
    assert [c["reduction_length"] for c in readme] == [25_088, 25_088]  # the README's "K = 25,088"


def test_the_plugin_loads_beside_the_verification_suites_plugins(tmp_path):
    (tmp_path / "conftest.py").write_text(
        'pytest_plugins = ["linconv.plugins.options", "linconv.plugins.regressions", "linconv.plugins.report"]\n'
    )
    (tmp_path / "test_both.py").write_text(
        textwrap.dedent("""
        import torch
        from torch import nn

        def test_both(device, linconv, linconv_device):
            conv = nn.Conv2d(4, 2, 1)
            linconv.assert_same_map(conv, conv, torch.randn(1, 4, 3, 3))
            assert device == linconv_device == "cpu"
    """)
    )
    proc = _pytest(
        tmp_path,
        "-q",
        "--devices",
        "cpu",
        "--linconv-devices",
        "cpu",
        "--report-dir",
        "r",
        env_extra={"LINCONV_TIMING": "off"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout and "linconv checks" in proc.stdout


def test_the_plugin_is_light_and_registered_as_an_entry_point():
    code = "import sys, linconv.pytest_plugin; print(sorted(m for m in ('torch', 'hypothesis') if m in sys.modules))"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'\[project\.entry-points\.pytest11\]\nlinconv = "linconv\.pytest_plugin"', pyproject)


def test_a_bad_device_list_is_a_usage_error(tmp_path):
    (tmp_path / "test_user.py").write_text(USER_TEST)
    proc = _pytest(tmp_path, "-q", "--linconv-devices", "tpu")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--linconv-devices: device must be one of" in proc.stderr
