"""pytest plugin for your own test suite, registered through the ``pytest11`` entry point: after
``pip install linconv`` every pytest run in that environment has it (``-p no:linconv`` turns it
off). It is light on purpose: importing it imports pytest only; torch and linconv.testing are
imported when a test asks for a fixture. It does not load the verification suite's plugins
(linconv/plugins/: options, Hypothesis profiles, run report), and its names cannot clash with
them (options start with ``--linconv-``, fixtures with ``linconv``).

- fixture ``linconv``: :func:`linconv.testing.assert_same_map` and
  :func:`~linconv.testing.assert_within_bound` (plus ``magnitude`` / ``reduction_length``), each
  check recorded for the run's summary;
- fixture ``linconv_device``: the test runs once per device of ``--linconv-devices``
  (default ``cpu``; ``all``: cpu, cuda, mps), an absent device skipped with the reason;
- ``--linconv-report PATH``: every check of the run as JSON (test, what, error, bound,
  error/bound), written atomically;
- a terminal summary line: checks, and the worst error/bound with its test.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pytest

# Each check travels on its test's report (user_properties), so that pytest-xdist workers' checks
# reach the controller, which summarises them.
_PROPERTY = "linconv_check"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("linconv-testing", "linconv: the error model in your own tests")
    group.addoption(
        "--linconv-devices",
        default=os.environ.get("LINCONV_TEST_DEVICES", "cpu"),
        help="devices the linconv_device fixture runs a test on: comma-separated (cpu, cuda, cuda:N, mps) "
        "or 'all'; an absent one is skipped with the reason. Env: LINCONV_TEST_DEVICES. Default: cpu",
    )
    group.addoption(
        "--linconv-report",
        default=None,
        metavar="PATH",
        help="write every linconv check of the run (test, comparison, error, bound, error/bound) as JSON",
    )


_DEVICES = pytest.StashKey[list]()


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Summary(config), "linconv-testing-summary")


def _devices(config: pytest.Config) -> list[str]:
    """The --linconv-devices list, parsed once (a bad one is a usage error: exit status 4)."""
    if _DEVICES not in config.stash:
        from linconv.lanes.devices import parse_devices

        try:
            # Users' suites skip an absent device (documented above): a CPU-only laptop runs the same
            # suite as a GPU runner. A device named twice is still refused (every test would run twice).
            config.stash[_DEVICES] = parse_devices(config.getoption("--linconv-devices"), skip_absent=True)
        except ValueError as exc:
            raise pytest.UsageError(f"--linconv-devices: {exc}") from None
    return config.stash[_DEVICES]


def pytest_collection(session: pytest.Session) -> None:
    _devices(session.config)  # before any test is collected, so a bad list stops the run at once


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "linconv_device" not in metafunc.fixturenames:
        return
    from linconv.lanes.devices import device_unavailable_reason

    params = []
    for device in _devices(metafunc.config):
        reason = device_unavailable_reason(device)
        params.append(pytest.param(device, id=device, marks=[pytest.mark.skip(reason=reason)] if reason else []))
    metafunc.parametrize("linconv_device", params)


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)  # JSON has no infinity


class Checks:
    """What the ``linconv`` fixture hands a test: the assertions of linconv.testing, recorded."""

    def __init__(self, node: pytest.Item) -> None:
        import linconv.testing as testing

        self._testing = testing
        self._node = node
        self.magnitude = testing.magnitude
        self.reduction_length = testing.reduction_length

    def _record(self, verdicts) -> None:
        for v in verdicts:
            self._add(
                {
                    "what": v.what,
                    "ratio": _number(v.ratio),
                    "error": _number(v.error),
                    "bound": _number(v.bound),
                    "reduction_length": v.reduction_length,
                    "dtype": v.dtype,
                    "problem": v.problem,
                }
            )

    def _add(self, record: dict[str, Any]) -> None:
        self._node.user_properties.append((_PROPERTY, {"test": self._node.nodeid, **record}))

    def assert_same_map(self, module_a, module_b, x, **kwargs):
        __tracebackhide__ = True
        try:
            verdicts = self._testing.assert_same_map(module_a, module_b, x, **kwargs)
        except AssertionError as exc:
            self._add({"what": "assert_same_map", "ratio": "inf", "failed": str(exc)})
            raise
        self._record(verdicts)
        return verdicts

    def assert_within_bound(self, actual, reference, **kwargs):
        __tracebackhide__ = True
        try:
            verdict = self._testing.assert_within_bound(actual, reference, **kwargs)
        except AssertionError as exc:
            self._add({"what": "assert_within_bound", "ratio": "inf", "failed": str(exc)})
            raise
        self._record([verdict])
        return verdict


@pytest.fixture
def linconv(request: pytest.FixtureRequest) -> Checks:
    """linconv.testing's assertions for this test; every check lands in the run's summary."""
    return Checks(request.node)


def _ratio(record: dict[str, Any]) -> float:
    return float(record["ratio"])


class _Summary:
    """Collects every check from the tests' reports and writes the summary and --linconv-report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.records += [value for name, value in report.user_properties if name == _PROPERTY]

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.records or hasattr(self.config, "workerinput"):
            return
        worst = max(self.records, key=_ratio)
        terminalreporter.write_sep("-", "linconv checks")
        terminalreporter.write_line(
            f"{len(self.records)} comparison(s) in {len({r['test'] for r in self.records})} test(s); "
            f"worst error/bound {_ratio(worst):.3g} ({worst['test']}: {worst['what']})"
        )
        path = self.config.getoption("--linconv-report")
        if path:
            from linconv.core.fileio import write_text_atomic

            write_text_atomic(path, json.dumps({"checks": self.records}, indent=1) + "\n")
            terminalreporter.write_line(f"wrote {path}")
