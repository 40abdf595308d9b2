"""Regressions: every counterexample stored in the corpus (regressions/, see docs/regressions.md)
gives, on every selected device, what its entry expects — pass, or fail on the torch versions of a
known upstream bug."""

from __future__ import annotations

import pytest

from linconv import corpus
from linconv.corpus.replay import replay, xfail_reason
from linconv.plugins.regressions import regressions_dir


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    directory = regressions_dir(metafunc.config)
    if "corpus_file" in metafunc.fixturenames:
        files = corpus.corpus_files(directory)
        metafunc.parametrize("corpus_file", files, ids=[path.name for path in files])
    if "regression" in metafunc.fixturenames:
        entries, _ = corpus.load_corpus(directory)  # malformed files fail in test_corpus_file_is_valid
        params = []
        for entry in entries:
            # Non-strict: a known bug that stops failing shows as XPASS in the summary, with the reason.
            marks = [pytest.mark.xfail(reason=xfail_reason(entry), strict=False)] if entry.expected_to_fail() else []
            params.append(pytest.param(entry, id=f"{entry.id}-{entry.relation}", marks=marks))
        metafunc.parametrize("regression", params)


def test_corpus_file_is_valid(corpus_file):
    try:
        corpus.load_file(corpus_file)
        problem = ""
    except corpus.CorpusError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(problem, pytrace=False)


def test_regression_case(regression, device, record_property):
    record_property("linconv_regression", regression.id)
    outcome = replay(regression, device)
    if outcome.status == "skip":
        pytest.skip(outcome.message)
    if outcome.status in ("fail", "xfail"):
        pytest.fail(outcome.message, pytrace=False)
