"""pytest plugin: time every formulation inside the property run and write the run report.

Installs a :class:`linconv.timing.Recorder` as ``SESSION.observer``, attributes each test's time
to the relation whose examples it ran, and at the end writes report.json, report.md and
report.png into the report directory and closes the terminal output with a short table. Under
pytest-xdist each worker sends its tallies, samples and costs to the controller
(``workeroutput``), which merges them into one report. The outcome of every regression case replayed
(properties/test_regressions.py) goes into the report's ``regressions`` section; the controller
sees the test reports of all workers, so it collects them itself. The report carries the
completeness stamp of :mod:`linconv.plugins.completeness`, which also has :func:`write_stub` write
an empty report stamped interrupted as soon as a verification run has collected its tests.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from linconv.known_bugs import status_rows as known_bug_rows
from linconv.plugins.completeness import final_stamp
from linconv.plugins.session import SESSION
from linconv.runreport import (
    OUTCOME_RANK,
    build_report,
    environment,
    machine_identity,
    merge_rejected,
    merge_tallies,
    rejected_rows,
    summary_lines,
    tally_rows,
)
from linconv.runreport import write_report as write_report_files
from linconv.timing import DEFAULT_EVERY, Recorder

_STATE = pytest.StashKey["_ReportState"]()
_WORKER_KEY = "linconv_report"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("linconv")
    group.addoption(
        "--report-dir",
        default=None,
        help="where the run report goes (report.json, report.md, report.png). Env: LINCONV_REPORT_DIR. "
        "Default: reports/ under the rootdir",
    )
    group.addoption(
        "--timing",
        default=None,
        help="time each formulation's forward and backward: N times one example in N of each relation and "
        f"device (1: every example), 'on' means {DEFAULT_EVERY}, 'off' none; the check runs on every example "
        "either way. Env: LINCONV_TIMING. Default: on",
    )


def _timing_every(text: str) -> int:
    """0 for off, else time one example in N."""
    text = text.strip().lower()
    if text == "on":
        return DEFAULT_EVERY
    if text == "off":
        return 0
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise pytest.UsageError(f"--timing / LINCONV_TIMING must be 'on', 'off' or an int N >= 1, got {text!r}")


class _ReportState:
    def __init__(self, every: int, directory: Path) -> None:
        self.recorder = Recorder(every=max(every, 1))
        self.timing = every > 0
        self.directory = directory
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = defaultdict(float)  # test time per relation
        self.worker_payloads: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self.regressions: dict[tuple[str, str, str, str], str] = {}  # (id, relation, device, mode) -> outcome

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        case = getattr(report, "linconv_regression", None)
        if not case or (report.when != "call" and report.passed):
            return
        key = (str(case[0]), str(case[1]), str(case[2]), str(case[3]))
        outcome = _outcome(report)
        if OUTCOME_RANK[outcome] >= OUTCOME_RANK[self.regressions.get(key, "passed")]:
            self.regressions[key] = outcome

    def payload(self) -> dict[str, Any]:
        return {
            "tallies": tally_rows(SESSION.tallies),
            "rejected": rejected_rows(SESSION.rejected),
            "recorder": self.recorder.to_dict(),
            "seconds": dict(self.seconds),
            "execution_lanes": dict(SESSION.execution_configs),
        }


def pytest_configure(config: pytest.Config) -> None:
    timing = config.getoption("--timing") or os.environ.get("LINCONV_TIMING", "on")
    directory = config.getoption("--report-dir") or os.environ.get("LINCONV_REPORT_DIR")
    state = _ReportState(_timing_every(timing), Path(directory) if directory else config.rootpath / "reports")
    config.stash[_STATE] = state
    config.pluginmanager.register(state, "linconv-report-state")
    if state.timing:
        SESSION.observer = state.recorder


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None and SESSION.observer is state.recorder:
        SESSION.observer = None


def _examples() -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for (relation, *_), tally in SESSION.tallies.items():
        counts[relation] += tally.examples
    return counts


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    state = item.config.stash.get(_STATE, None)
    if state is None:
        yield
        return
    callspec = getattr(item, "callspec", None)
    state.recorder.mode = str(callspec.params.get("precision_mode", "default")) if callspec else "default"
    state.recorder.execution = str(callspec.params.get("execution", "eager")) if callspec else "eager"
    before = _examples()
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    ran = [r for r, n in _examples().items() if n > before.get(r, 0)]
    for relation in ran:  # one relation per property test; several would share its time
        state.seconds[relation] += seconds / len(ran)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Tag the reports of a regression replay with its case: a plain attribute, which travels with the
    report from an xdist worker to the controller, and which a skip at setup (no device) has too."""
    report = yield
    params = getattr(getattr(item, "callspec", None), "params", {})
    regression = params.get("regression")
    if regression is not None and hasattr(regression, "relation"):
        device, mode = str(params.get("device", "")), str(params.get("precision_mode", "default"))
        report.linconv_regression = [regression.id, regression.relation, device, mode]
    return report


def _outcome(report: pytest.TestReport) -> str:
    if report.failed:
        return "failed"
    if hasattr(report, "wasxfail"):
        return "xpassed" if report.passed else "xfailed"
    return "skipped" if report.skipped else "passed"


def _regression_rows(outcomes: dict[tuple[str, str, str, str], str]) -> list[dict[str, str]]:
    names = ("id", "relation", "device", "mode")
    return [{**dict(zip(names, key, strict=True)), "outcome": outcomes[key]} for key in sorted(outcomes)]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: a worker finished; keep what it recorded."""
    payload = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    if payload:
        node.config.stash[_STATE].worker_payloads.append(json.loads(payload))


def _environment(config: pytest.Config, state: _ReportState, workers: int) -> dict[str, Any]:
    from hypothesis import settings

    return environment(
        devices=getattr(config, "_linconv_devices", ["cpu"]),
        profile=settings.get_current_profile_name(),
        workers=workers,
        threads_timed=state.recorder.threads,
    )


def write_stub(config: pytest.Config, completeness: dict[str, Any]) -> None:
    """Replace the report in the report directory by an empty one with ``completeness`` (stamped
    interrupted): what a run that never finishes leaves (linconv.plugins.completeness)."""
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    workers = int(getattr(config, "workerinput", {}).get("workercount", 0))
    report = build_report(
        tallies=[],
        samples=[],
        environment=_environment(config, state, workers),
        machine=machine_identity(state.recorder.threads),
    )
    report["regressions"] = []
    report["completeness"] = completeness
    try:
        write_report_files(report, state.directory, plot=False)
    except OSError:
        pass  # the final report says so (pytest_sessionfinish) if the directory stays unwritable


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    if hasattr(config, "workerinput"):  # an xdist worker: the controller writes the report
        config.workeroutput[_WORKER_KEY] = json.dumps(state.payload())
        return
    payloads = [state.payload(), *state.worker_payloads]
    recorder = Recorder()
    seconds: dict[str, float] = defaultdict(float)
    for payload in payloads:
        recorder.merge(payload["recorder"])
        for relation, value in payload["seconds"].items():
            seconds[relation] += value
    tallies = merge_tallies(row for payload in payloads for row in payload["tallies"])
    replayed = sum(outcome != "skipped" for outcome in state.regressions.values())
    completeness = final_stamp(session, checked=sum(row["examples"] for row in tallies) + replayed)
    if completeness is None and not tallies and not recorder.samples:
        return  # no verification test ran (e.g. `pytest tests`): leave any earlier report alone

    costs = {r: {"seconds": s, **recorder.cost.get(r, {})} for r, s in seconds.items()}
    report = build_report(
        tallies=tallies,
        samples=recorder.samples,
        environment=_environment(config, state, len(state.worker_payloads)),
        machine=machine_identity(state.recorder.threads),
        run={"wall_s": time.perf_counter() - state.started, "relations": costs},
        timing_errors=recorder.errors,
    )
    lanes = {name: cfg for payload in payloads for name, cfg in payload.get("execution_lanes", {}).items()}
    if lanes:
        report["environment"]["execution_lanes"] = lanes
    report["regressions"] = _regression_rows(state.regressions)
    report["known_bugs"] = known_bug_rows()
    report["rejected"] = merge_rejected(row for payload in payloads for row in payload.get("rejected", []))
    if completeness is not None:
        report["completeness"] = completeness
    try:
        written = write_report_files(report, state.directory)
    except OSError as exc:
        state.lines = [f"could not write the run report into {state.directory}: {exc}"]
        return
    state.lines = [*summary_lines(report), "", *(f"report: {line}" for line in written)]
    if not state.timing:
        state.lines.append("timing was off (--timing off / LINCONV_TIMING=off)")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None or not state.lines:
        return
    terminalreporter.write_sep("=", "linconv run report")
    for line in state.lines:
        terminalreporter.write_line(line)
