"""Whether the run behind a report finished: the report's ``completeness`` stamp, and the refusal
of a report that is not known to be whole.

A run that stopped early (Ctrl-C, ``-x``, a crash) or checked nothing answers a smaller question
than the one asked; merged or gated as if whole, 3 examples would pass against a baseline of 50.
So the pytest plugin stamps every report (:func:`stamp`), writes a stub stamped ``interrupted``
as soon as a verification run has collected its tests (a killed run leaves that, not the previous
run's report), and merge and gate refuse anything but ``complete`` (:func:`require_complete`)
unless told to take it anyway.
"""

from __future__ import annotations

import os
from typing import Any

from linconv.runreport.schema import ReportError

__all__ = ["describe", "merged_stamp", "require_complete", "stamp"]

# pytest's exit statuses (pytest.ExitCode), spelled out so this layer needs no pytest.
_INTERRUPTED, _INTERNAL_ERROR, _NO_TESTS = 2, 3, 5


def stamp(*, exit_status: int | None, collected: int, ran: int, checked: int) -> dict[str, Any]:
    """The stamp of a run: ``exit_status`` None for a run that has not finished; ``collected`` and
    ``ran`` count tests; ``checked`` counts what was verified (property examples plus regression
    cases replayed, skips excluded)."""
    counts = {"exit_status": exit_status, "collected": collected, "ran": ran}
    if exit_status is None:
        reason = (
            "the run started and did not finish: still running, or killed (SIGTERM, SIGKILL, a crash) before "
            "it could write its report"
        )
    elif exit_status == _INTERRUPTED:
        reason = f"interrupted (Ctrl-C / SIGINT) after {ran} of {collected} tests"
    elif exit_status == _INTERNAL_ERROR:
        reason = f"pytest stopped with an internal error after {ran} of {collected} tests"
    elif ran < collected:
        reason = f"stopped after {ran} of {collected} tests (-x, --maxfail, or a worker that crashed)"
    elif checked == 0 or exit_status == _NO_TESTS:
        return {
            "status": "empty",
            **counts,
            "reason": f"nothing was checked: no property example and no regression case ran ({collected} tests "
            "collected; every one skipped or deselected)",
        }
    else:
        return {"status": "complete", **counts}
    return {"status": "interrupted", **counts, "reason": reason}


def describe(completeness: dict[str, Any] | None) -> str:
    """One line: what the stamp says."""
    if completeness is None:
        return "no completeness stamp (written by a linconv before reports recorded whether the run finished)"
    status = completeness["status"]
    ran = f"{completeness['ran']} of {completeness['collected']} tests ran"
    exit_status = completeness.get("exit_status")
    tail = f"{ran}, exit status {exit_status if exit_status is not None else 'none (not finished)'}"
    reason = completeness.get("reason")
    return f"{status}: {reason} ({tail})" if reason else f"{status} ({tail})"


def require_complete(report: dict[str, Any], path: str | os.PathLike[str], *, flag: str) -> None:
    """ReportError naming ``path`` unless the report is stamped ``complete``; ``flag`` is the option
    that takes it anyway."""
    completeness = report.get("completeness")
    if completeness is None:
        raise ReportError(
            path,
            "completeness",
            "is missing: the report does not say whether its run finished (written by a linconv before reports "
            f"recorded it); re-run it, or pass {flag} to use it anyway",
        )
    if completeness["status"] != "complete":
        raise ReportError(
            path, "completeness.status", f"is {describe(completeness)}; re-run it, or pass {flag} to use it anyway"
        )


def merged_stamp(stamps: list[dict[str, Any] | None]) -> dict[str, Any]:
    """The stamp of several jobs' reports merged: complete only when every one is."""
    known = [s for s in stamps if s is not None]
    counts = {
        "exit_status": None
        if len(known) < len(stamps) or any(s.get("exit_status") is None for s in known)
        else max(s["exit_status"] for s in known),
        "collected": sum(s["collected"] for s in known),
        "ran": sum(s["ran"] for s in known),
    }
    statuses = [s["status"] if s is not None else "unknown" for s in stamps]
    if all(status == "complete" for status in statuses):
        return {"status": "complete", **counts}
    if all(status == "empty" for status in statuses):
        return {"status": "empty", **counts, "reason": "every merged report checked nothing"}
    shown = [f"shard {i + 1}: {status}" for i, status in enumerate(statuses) if status != "complete"]
    return {"status": "interrupted", **counts, "reason": "merged from incomplete reports (" + "; ".join(shown) + ")"}
