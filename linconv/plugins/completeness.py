"""pytest plugin: whether a verification run finished, for the run report's ``completeness`` stamp
(linconv.runreport.completeness).

A verification run is one that collects tests taking the ``device`` parameter (the properties and
the replay of the corpus). As soon as one has collected its tests, a stub report stamped
``interrupted`` replaces the previous run's report: whatever ends this run early — Ctrl-C, -x,
SIGTERM, SIGKILL, a crash — what is left in the report directory is never an older report that
looks complete. Under pytest-xdist the first worker writes the stub (the controller collects
nothing) and the controller counts the tests that ran from every worker's reports. At the end
:func:`final_stamp` gives the report plugin the stamp it writes.

Not covered: a run interrupted before its collection finished leaves the previous report in place
(it cannot tell yet whether it is a verification run at all); that report is still the previous
run's own, complete or not as it says.
"""

from __future__ import annotations

from typing import Any

import pytest

from linconv.runreport.completeness import stamp

__all__ = ["final_stamp", "is_verification"]

_STATE = pytest.StashKey["_Completeness"]()


class _Completeness:
    def __init__(self) -> None:
        self.verification = False  # the run collected tests of the verification suite
        self.ran: set[str] = set()  # node ids that reached an outcome

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]):
        report = yield
        if is_verification(item):
            report.linconv_verification = True  # a plain attribute: it travels from an xdist worker
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if getattr(report, "linconv_verification", False):
            self.verification = True
        # a test's outcome: its call, or a setup that skipped or failed (no call follows)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.ran.add(report.nodeid)


def is_verification(item: pytest.Item) -> bool:
    """A test of the verification suite: it runs on a device (properties, corpus replay)."""
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "device" in callspec.params


def pytest_configure(config: pytest.Config) -> None:
    state = _Completeness()
    config.stash[_STATE] = state
    config.pluginmanager.register(state, "linconv-completeness-state")


def pytest_collection_finish(session: pytest.Session) -> None:
    """The tests are known: a verification run's report directory gets the stub, stamped interrupted."""
    state = session.config.stash.get(_STATE, None)
    if state is None or session.config.option.collectonly or not any(map(is_verification, session.items)):
        return
    state.verification = True
    worker = getattr(session.config, "workerinput", None)
    if worker is not None and worker.get("workerid") != "gw0":
        return  # one stub per run
    from linconv.plugins.report import write_stub

    write_stub(session.config, stamp(exit_status=None, collected=len(session.items), ran=0, checked=0))


def final_stamp(session: pytest.Session, *, checked: int) -> dict[str, Any] | None:
    """The stamp of this run at its end (``checked``: examples plus regression cases replayed), or
    None when it ran no verification test (e.g. ``pytest tests``: no report is written)."""
    state = session.config.stash.get(_STATE, None)
    if state is None or not state.verification:
        return None
    exit_status = session.exitstatus
    return stamp(
        exit_status=int(exit_status),
        collected=max(session.testscollected, len(state.ran)),
        ran=len(state.ran),
        checked=checked,
    )
