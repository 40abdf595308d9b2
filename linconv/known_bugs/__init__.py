"""Known upstream bugs: inputs that crash the process or that torch computes wrongly.

A crash cannot be caught by the property that hits it: it kills pytest, the report and the
capture of the case with it. A known wrong result would fail every run that draws it and hide
whatever else the search would find. So the properties steer clear of a bug's signature exactly
where the bug is present — where its reproducer fails, on any torch build and CPU
(:mod:`~linconv.known_bugs.reproduce`) — and a crash marked ``avoid_everywhere`` everywhere (a
crash that a reproducer does not always trigger would still end the whole run). Elsewhere the
properties judge those inputs like any other, so a bug that reappears is reported.

- :mod:`~linconv.known_bugs.catalogue`: the bugs, their signatures and reproducers;
- :mod:`~linconv.known_bugs.reproduce`: running the reproducers, cached per build and CPU.

Imports :mod:`linconv.core` only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from linconv.core.cases import Case
from linconv.known_bugs.catalogue import KNOWN_BUGS, KnownBug, cpu_flags, get_bug
from linconv.known_bugs.reproduce import Reproduction, reproductions, run_reproducer

__all__ = [
    "KNOWN_BUGS",
    "KnownBug",
    "Reproduction",
    "avoided_bug",
    "cpu_flags",
    "get_bug",
    "known_crash",
    "known_error",
    "matching_bug",
    "present",
    "reproductions",
    "run_reproducer",
    "status_rows",
]

Presence = Callable[[KnownBug], bool]


def present(bug: KnownBug) -> bool:
    """Whether ``bug`` reproduces on this torch build and CPU."""
    return reproductions()[bug.name].reproduced


def _avoided(bug: KnownBug, is_present: Presence) -> bool:
    return (bug.kind == "crash" and bug.avoid_everywhere) or is_present(bug)


def known_crash(
    case: Case, is_present: Presence = present, execution: str = "eager", relation: str | None = None
) -> KnownBug | None:
    """The known crash ``case`` could trigger in this process (in execution lane ``execution``),
    if any: where it reproduces, or anywhere for a crash marked ``avoid_everywhere``."""
    return next(
        (b for b in _signatures(case, execution, relation) if b.kind == "crash" and _avoided(b, is_present)), None
    )


def known_error(
    error: BaseException, is_present: Presence = present, execution: str = "eager", relation: str | None = None
) -> KnownBug | None:
    """The known bug recognised by what it raised (``KnownBug.error`` matched by ``"TypeName: message"``)
    in execution lane ``execution``, present here; None for any other error, which the property
    reports as ever."""
    text = f"{type(error).__name__}: {error}"
    return next(
        (
            b
            for b in KNOWN_BUGS
            if b.error and b.shows_in(execution, relation) and re.search(b.error, text) and _avoided(b, is_present)
        ),
        None,
    )


def avoided_bug(
    case: Case, is_present: Presence = present, execution: str = "eager", relation: str | None = None
) -> KnownBug | None:
    """The known bug the properties steer ``case`` of ``relation`` away from in execution lane ``execution``: one
    whose signature it matches and which is present here (or a crash avoided everywhere). The
    signature is checked first, so a run that never draws a signature never waits for a reproducer."""
    return next((b for b in _signatures(case, execution, relation) if _avoided(b, is_present)), None)


def matching_bug(case: Case, execution: str = "eager", relation: str | None = None) -> KnownBug | None:
    """The known bug whose signature ``case`` matches in execution lane ``execution``, present here
    or not (for reports: a violation on such a case may be that bug, reappearing)."""
    return next(_signatures(case, execution, relation), None)


def _signatures(case: Case, execution: str, relation: str | None) -> Iterator[KnownBug]:
    """The known bugs whose signature ``case`` of ``relation`` matches in lane ``execution``, in catalogue order
    (the lane and relation first: cheap, and some signatures build a tensor)."""
    return (b for b in KNOWN_BUGS if b.shows_in(execution, relation) and b.matches(case))


def status_rows() -> list[dict[str, object]]:
    """Every known bug and whether it reproduced here: the run report's ``known_bugs`` section."""
    found = reproductions()
    return [
        {
            "name": bug.name,
            "kind": bug.kind,
            "link": bug.link,
            "reproduced": found[bug.name].reproduced,
            "returncode": found[bug.name].returncode,
            "avoided": "everywhere (crash)" if bug.kind == "crash" and bug.avoid_everywhere
            else ("here (reproduced)" if found[bug.name].reproduced else "no"),
        }
        for bug in KNOWN_BUGS
    ]  # fmt: skip
