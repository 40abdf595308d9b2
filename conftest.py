"""pytest wiring for linconv: options, Hypothesis profiles, the device parameter, report header."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, Verbosity, settings

from linconv import config as run_config
from linconv.devices import DEVICE_MODES, KNOWN_DEVICES, device_mode, device_unavailable_reason
from linconv.precision import read_flags

# pytest plugins of linconv's own (report, regression capture); each is one module in linconv/.
pytest_plugins: list[str] = ["linconv.regression_plugin", "linconv.report_plugin"]

# Hypothesis profiles. deadline=None everywhere: the first example on a device pays for lazy
# initialisation (oneDNN primitives, CUDA context), which is not the code under test.
_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("dev", max_examples=50, **_COMMON)
settings.register_profile("ci", max_examples=100, derandomize=True, print_blob=True, database=None, **_COMMON)
settings.register_profile("thorough", max_examples=1000, **_COMMON)
settings.register_profile("debug", max_examples=10, verbosity=Verbosity.verbose, **_COMMON)
settings.load_profile(os.environ.get("LINCONV_PROFILE", "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("linconv")
    group.addoption(
        "--devices",
        default=os.environ.get("LINCONV_DEVICES", "all"),
        help="comma-separated devices to check (cpu, cuda, cuda:N, mps) or 'all' "
        "(cpu, plus cuda and mps, which skip with a reason when absent). Env: LINCONV_DEVICES. Default: all",
    )
    group.addoption(
        "--dtypes",
        default=None,
        help="comma-separated dtypes the strategies draw from (float32,float64,bfloat16,float16). "
        "Env: LINCONV_DTYPES. Default: all four",
    )
    group.addoption(
        "--max-numel",
        default=None,
        help=f"size budget: most elements of any tensor one example builds. Env: LINCONV_MAX_NUMEL. "
        f"Default: {run_config.DEFAULT_MAX_NUMEL}",
    )
    group.addoption(
        "--inject-fault",
        default=None,
        metavar="NAME",
        help="break one formulation of one relation for the whole run (python -m linconv faults --list "
        "names the faults; docs/faults.md): the properties must then fail",
    )


def _selected_devices(text: str) -> list[str]:
    if text.strip() == "all":
        return list(KNOWN_DEVICES)
    devices = [d.strip() for d in text.split(",") if d.strip()]
    if not devices:
        raise pytest.UsageError(f"--devices must name at least one device or 'all', got {text!r}")
    for device in devices:
        try:
            device_unavailable_reason(device)
        except ValueError as exc:
            raise pytest.UsageError(f"--devices: {exc}") from None
    return devices


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def pytest_configure(config: pytest.Config) -> None:
    workers = int(getattr(config, "workerinput", {}).get("workercount", 0))
    if workers:
        # pytest-xdist: workers x threads must not exceed the cores, or OpenMP threads spin-wait
        # on descheduled peers (measured on 2 cores: 2 workers x 2 threads ran the ci profile in
        # 2 min 12 s, one process in 32 s; docs/parallel.md)
        torch.set_num_threads(min(torch.get_num_threads(), max(1, _cores() // workers)))
    try:
        if config.getoption("--dtypes"):
            run_config.set_selected_dtypes(config.getoption("--dtypes"))
        if config.getoption("--max-numel"):
            run_config.set_max_numel(config.getoption("--max-numel"))
        run_config.selected_dtypes()
        run_config.max_numel()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    config._linconv_devices = _selected_devices(config.getoption("--devices"))  # type: ignore[attr-defined]
    if config.getoption("--inject-fault"):
        from linconv.faults import get_fault, inject

        try:
            fault = get_fault(config.getoption("--inject-fault"))
        except ValueError as exc:
            raise pytest.UsageError(f"--inject-fault: {exc}") from None
        config._linconv_restore = inject(fault)  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    restore = getattr(config, "_linconv_restore", None)
    if restore:
        restore()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Device x precision mode as one parameter pair: each its own test id and database key."""
    if "device" not in metafunc.fixturenames:
        return
    params = []
    for device in metafunc.config._linconv_devices:  # type: ignore[attr-defined]
        reason = device_unavailable_reason(device)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        for mode in DEVICE_MODES[device.split(":")[0]]:
            params.append(pytest.param(device, mode, id=f"{device}-{mode}", marks=marks))
    metafunc.parametrize(("device", "precision_mode"), params, indirect=["precision_mode"])


@pytest.fixture(autouse=True)
def precision_mode(request: pytest.FixtureRequest):
    """The flags of the test's precision mode, set for the test and restored after it
    (autouse, so every test taking ``device`` gets it without naming it)."""
    mode = getattr(request, "param", "default")
    with device_mode(mode):
        yield mode


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"linconv: torch {torch.__version__}, hypothesis profile {settings.get_current_profile_name()}"]
    cuda = torch.version.cuda or "none"
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else "none"
    lines.append(f"linconv: CUDA {cuda}, cuDNN {cudnn}, threads {torch.get_num_threads()}")
    for device in config._linconv_devices:  # type: ignore[attr-defined]
        reason = device_unavailable_reason(device)
        name = torch.cuda.get_device_name(device) if device.startswith("cuda") and not reason else device
        lines.append(f"linconv: device {device}: {reason or 'available (' + name + ')'}")
    lines.append(f"linconv: precision flags: {read_flags().describe()}")
    lines.append(f"linconv: dtypes {','.join(run_config.selected_dtypes())}; max numel {run_config.max_numel()}")
    if config.getoption("--inject-fault"):
        lines.append(f"linconv: INJECTED FAULT {config.getoption('--inject-fault')}: the properties must fail")
    env = {k: v for k, v in sorted(os.environ.items()) if k.startswith("LINCONV_")}
    lines.append(f"linconv: environment {env or '(no LINCONV_* variables)'}")
    return lines
