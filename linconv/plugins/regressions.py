"""pytest plugin: keep every counterexample a property finds, and say how to add it to the corpus.

When a Hypothesis property fails, the report of its final failure carries the shrunk example
(linconv.capture); this plugin writes it as a pending case file, ``<capture dir>/<id>.json``, or
with ``--record-regressions`` straight into the corpus, and the terminal summary prints the one
command that adds the pending files to the corpus. File paths travel in the reports'
``user_properties``, so the summary also works under pytest-xdist.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from linconv import corpus
from linconv.corpus import capture

_PROPERTY = "linconv_captured_regression"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("linconv")
    group.addoption(
        "--regressions-dir",
        default=None,
        help="the regression corpus, replayed by properties/test_regressions.py. "
        "Env: LINCONV_REGRESSIONS_DIR. Default: regressions/ under the rootdir",
    )
    group.addoption(
        "--capture-dir",
        default=None,
        help="where a failing property writes its shrunk counterexample as a pending case file. "
        "Env: LINCONV_CAPTURE_DIR. Default: reports/pending-regressions/ under the rootdir",
    )
    group.addoption(
        "--record-regressions",
        action="store_true",
        default=False,
        help="write counterexamples straight into the regression corpus instead of the capture dir",
    )


def regressions_dir(config: pytest.Config) -> Path:
    chosen = config.getoption("--regressions-dir") or os.environ.get("LINCONV_REGRESSIONS_DIR")
    return Path(chosen) if chosen else config.rootpath / "regressions"


def capture_dir(config: pytest.Config) -> Path:
    chosen = config.getoption("--capture-dir") or os.environ.get("LINCONV_CAPTURE_DIR")
    return Path(chosen) if chosen else config.rootpath / "reports" / "pending-regressions"


def pytest_report_header(config: pytest.Config) -> str:
    directory = regressions_dir(config)
    target = directory if config.getoption("--record-regressions") else capture_dir(config)
    return (
        f"linconv: regression corpus {_shown(directory)} ({len(corpus.corpus_files(directory))} files); "
        f"counterexamples go to {_shown(target)}"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Summary(config), "linconv-regression-summary")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if call.when != "call" or not report.failed or call.excinfo is None:
        return report
    # Only the random search: a failing replay of the corpus is already in the corpus.
    if not getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
        return report
    record = item.config.getoption("--record-regressions")
    target = regressions_dir(item.config) if record else capture_dir(item.config)
    params = getattr(getattr(item, "callspec", None), "params", {})
    for failure in capture.failures_in(call.excinfo.value):
        regression = failure.regression(test=item.nodeid, precision_mode=str(params.get("precision_mode", "")))
        try:
            path, _ = corpus.add(regression, target)
        except (corpus.CorpusError, OSError) as exc:  # e.g. a corrupt file with the same id already there
            report.sections.append(("linconv: counterexample not kept", str(exc)))
            continue
        report.user_properties.append((_PROPERTY, (str(path), regression.relation, "record" if record else "pending")))
    return report


def _shown(path: str | Path) -> str:
    """Relative to the working directory when inside it, else absolute: what to paste into a shell."""
    absolute = Path(path).resolve()
    try:
        return str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(absolute)


class _Summary:
    """Collects the captured files from the reports (also those of xdist workers) and prints them."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.captured: dict[tuple[str, str, str, str], None] = {}  # (path, relation, kind, nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == _PROPERTY:
                path, relation, kind = value
                self.captured[(path, relation, kind, report.nodeid)] = None

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.captured:
            return
        tr = terminalreporter
        tr.write_sep("-", "linconv: counterexamples kept")
        pending: dict[str, None] = {}
        for path, relation, kind, nodeid in self.captured:
            tr.write_line(f"{relation} {Path(path).stem}  <- {nodeid}")
            tr.write_line(f"    {_shown(path)}")
            if kind == "pending":
                pending[_shown(path)] = None
        corpus_dir = regressions_dir(self.config)
        if not pending:
            tr.write_line(f"recorded into {_shown(corpus_dir)}: review and commit them")
            return
        command = ["python", "-m", "linconv", "regressions", "add", *pending]
        if corpus_dir.resolve() != corpus.default_directory().resolve():
            command += ["--dir", _shown(corpus_dir)]
        tr.write_line("add them to the regression corpus (replayed on every run) with:")
        tr.write_line("    " + shlex.join(command))
