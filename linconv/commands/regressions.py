"""``python -m linconv regressions``: add, list, show and check the regression corpus."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from linconv import corpus
from linconv.lanes.devices import SKIP_ABSENT_FLAG

DESCRIPTION = """\
Keep counterexamples as regression cases. A failing property writes its shrunk case to
reports/pending-regressions/<id>.json and prints the command that adds it; every pytest run
replays the corpus (properties/test_regressions.py). Schema and workflow: docs/regressions.md."""

DIR_HELP = "the corpus directory (default: $LINCONV_REGRESSIONS_DIR, else ./regressions)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "regressions",
        help="keep counterexamples as regression cases: add, list, show, check",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", type=Path, default=None, help=DIR_HELP)

    add = actions.add_parser(
        "add",
        parents=[common],
        help="add pending case files to the corpus (a case already there is merged)",
        description="Add pending case files (or corpus files, to change their note, link or expectation) to the "
        "corpus as <id>.json. A case already in the corpus is merged: its sightings are joined, and the "
        "options given here replace its note, link and expectation.",
    )
    add.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="pending case file(s), e.g. reports/pending-regressions/<id>.json",
    )
    add.add_argument("--note", help="why this case matters (replaces the stored note)")
    add.add_argument("--link", help="an issue or PR URL (replaces the stored link)")
    expectation = add.add_mutually_exclusive_group()
    expectation.add_argument(
        "--xfail-torch",
        metavar="RANGE",
        help='expect a failure on the torch versions in RANGE, a known upstream bug (e.g. ">=2.1,<2.4")',
    )
    expectation.add_argument(
        "--known-bug",
        metavar="NAME",
        help="expect a failure wherever known upstream bug NAME reproduces (a linconv/known_bugs entry; "
        "decided by its reproducer on each torch build and CPU, as the properties decide what to avoid)",
    )
    expectation.add_argument(
        "--expect-pass",
        action="store_true",
        help="expect a pass on every torch version again (drops an xfail range or known bug)",
    )
    add.set_defaults(func=_add)

    listing = actions.add_parser(
        "list",
        parents=[common],
        help="a table of the corpus",
        description="One line per case: id, relation, expectation, case and note. Malformed files are named "
        "on stderr (exit status 1).",
    )
    listing.set_defaults(func=_list)

    show = actions.add_parser(
        "show",
        parents=[common],
        help="one case as JSON, with a reproduction snippet",
        description="Print a case file and a Python snippet that re-checks the case.",
    )
    show.add_argument("id", metavar="ID", help="a case id (a unique prefix is enough)")
    show.set_defaults(func=_show)

    check = actions.add_parser(
        "check",
        parents=[common],
        help="replay the corpus without pytest; exit 1 on any failure",
        description="Replay every case (or the given ids) on the given devices, in each precision mode the "
        "device is checked under. Exit status 1 if a case fails, a file is malformed or an id is unknown.",
    )
    check.add_argument("ids", nargs="*", metavar="ID", help="case ids or unique prefixes (default: all)")
    check.add_argument(
        "--devices",
        default="all",
        help="comma-separated devices (cpu, cuda, cuda:N, mps) or 'all': cpu plus cuda and mps where present "
        "(default: all). A device named here must be present (exit status 2 otherwise)",
    )
    check.add_argument(
        SKIP_ABSENT_FLAG,
        action="store_true",
        help="skip a device named in --devices that is absent here instead of refusing (exit status 2 when no "
        "device is left)",
    )
    check.set_defaults(func=_check)

    migrate = actions.add_parser(
        "migrate",
        parents=[common],
        help="rewrite files of an older schema version in the current one",
        description="Rewrite every corpus file written by an older linconv (schema version below "
        f"{corpus.SCHEMA_VERSION}) in the current schema, under its current id (the old file is removed; a "
        "case already stored under the new id is merged). Files of the current version are left alone.",
    )
    migrate.set_defaults(func=_migrate)


def _directory(args: argparse.Namespace) -> Path:
    return args.dir if args.dir is not None else corpus.default_directory()


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _existing_directory(args: argparse.Namespace) -> Path | None:
    """The corpus directory to read, or None after saying why it cannot be read (a mistyped
    --dir must not look like an empty corpus)."""
    directory = _directory(args)
    if directory.is_dir():
        return directory
    where = "--dir" if args.dir is not None else "the corpus directory ($LINCONV_REGRESSIONS_DIR, else ./regressions)"
    problem = "is not a directory" if directory.exists() else "does not exist"
    _error(f"{where} {directory} {problem}")
    return None


def _add_changes(args: argparse.Namespace) -> dict[str, object] | None:
    """What --note, --link, --xfail-torch, --known-bug and --expect-pass change, or None after naming a bad one."""
    changes: dict[str, object] = {}
    for option, name, limit in (("--note", "note", corpus.MAX_NOTE_LENGTH), ("--link", "link", corpus.MAX_LINK_LENGTH)):
        value = getattr(args, name)
        if value is not None and len(value) > limit:
            _error(f"{option} has {len(value):,} characters; at most {limit:,} are kept")
            return None
        if value is not None:
            changes[name] = value
    if args.xfail_torch is not None:
        try:
            corpus.validate_torch_range(args.xfail_torch)
        except ValueError as exc:
            _error(f"--xfail-torch {exc}")
            return None
        changes.update(expect="xfail", xfail_torch=args.xfail_torch, known_bug=None)
    if args.known_bug is not None:
        from linconv.known_bugs import get_bug

        try:
            get_bug(args.known_bug)
        except ValueError as exc:
            _error(f"--known-bug: {exc}")
            return None
        changes.update(expect="xfail", xfail_torch=None, known_bug=args.known_bug)
    if args.expect_pass:
        changes.update(expect="pass", xfail_torch=None, known_bug=None)
    return changes


def _add(args: argparse.Namespace) -> int:
    directory = _directory(args)
    changes = _add_changes(args)
    if changes is None:
        return 2
    if directory.exists() and not directory.is_dir():
        _error(f"--dir {directory} is not a directory")
        return 2
    status = 0
    for path in args.files:
        try:
            incoming = corpus.load_file(path, check_name=False)
            # read, merge and write under the directory's lock: concurrent adds keep every sighting
            written, regression, merged = corpus.put(incoming, directory, changes=changes)
        except corpus.CorpusError as exc:
            _error(str(exc))
            status = 1
            continue
        except OSError as exc:
            _error(f"cannot write into the corpus directory {directory}: {exc.strerror or exc}")
            return 2
        verb = "merged into" if merged else "added"
        expect = regression.expect + (f" on torch {regression.xfail_torch}" if regression.xfail_torch else "")
        expect += f" where known bug {regression.known_bug} reproduces" if regression.known_bug else ""
        print(f"{verb} {written} ({regression.relation}; expect {expect})")
    return status


def _migrate(args: argparse.Namespace) -> int:
    directory = _existing_directory(args)
    if directory is None:
        return 2
    status, moved = 0, 0
    for path in corpus.corpus_files(directory):
        try:
            regression = corpus.load_file(path)
        except corpus.CorpusError as exc:
            _error(str(exc))
            status = 1
            continue
        if path.name == f"{regression.id}.json":
            continue
        try:
            written, merged = corpus.add(regression, directory)
            path.unlink()
        except OSError as exc:
            _error(f"cannot rewrite {path} in {directory}: {exc.strerror or exc}")
            return 2
        moved += 1
        print(f"{path.name} -> {written.name}" + (" (merged)" if merged else ""))
    print(f"{moved} file(s) rewritten in schema version {corpus.SCHEMA_VERSION} in {directory}")
    return status


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def _list(args: argparse.Namespace) -> int:
    directory = _existing_directory(args)
    if directory is None:
        return 2
    regressions, errors = corpus.load_corpus(directory)
    rows = [("ID", "RELATION", "EXPECT", "CASE", "NOTE")]
    for r in regressions:
        expect = r.expect if r.expect != "xfail" else f"xfail {r.xfail_torch or r.known_bug}"
        note = (r.note or "").splitlines()[0] if r.note else ""
        rows.append((r.id, r.relation, expect, r.case.describe(), note[:60] + ("..." if len(note) > 60 else "")))
    print("\n".join(_table(rows)))
    print(f"{len(regressions)} case(s) in {directory}")
    for exc in errors:
        _error(str(exc))
    return 1 if errors else 0


def _show(args: argparse.Namespace) -> int:
    directory = _existing_directory(args)
    if directory is None:
        return 2
    try:
        path = corpus.find(directory, args.id)
        regression = corpus.load_file(path)
    except (LookupError, corpus.CorpusError) as exc:
        _error(str(exc))
        return 1
    print(f"# {path}")
    print(path.read_text(encoding="utf-8").rstrip())
    print("\n# reproduce (raises RelationViolation when the relation does not hold):")
    print(regression.reproduction())
    print(f"\n# replay on every device: python -m linconv regressions check {regression.id}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from linconv.corpus.replay import replay
    from linconv.lanes.devices import device_unavailable_reason, parse_devices
    from linconv.lanes.modes import device_mode, modes_of

    directory = _existing_directory(args)
    if directory is None:
        return 2
    try:
        devices = parse_devices(args.devices, skip_absent=args.skip_absent_devices)
    except ValueError as exc:
        _error(f"--devices: {exc}")
        return 2
    problems = 0
    if args.ids:
        regressions = []
        for prefix in args.ids:
            try:
                regressions.append(corpus.load_file(corpus.find(directory, prefix)))
            except (LookupError, corpus.CorpusError) as exc:
                _error(str(exc))
                problems += 1
    else:
        regressions, errors = corpus.load_corpus(directory)
        for exc in errors:
            _error(str(exc))
        problems += len(errors)

    start = time.perf_counter()
    counts: Counter[str] = Counter()
    present = []
    for device in devices:
        reason = device_unavailable_reason(device)
        if reason:
            print(f"SKIP   {device}: {reason}")
        else:
            present.append(device)
    if not present:  # only with --skip-absent-devices: 'all' always has the cpu
        _error(f"--devices {args.devices}: none of these devices is present here, nothing would be replayed")
        return 2
    for regression in regressions:
        for device in present:
            for mode in modes_of(device):
                with device_mode(mode):
                    outcome = replay(regression, device)
                counts[outcome.status] += 1
                where = device if mode == "default" else f"{device}-{mode}"
                print(f"{outcome.status.upper():5}  {regression.id}  {regression.relation:<22} {where}")
                if outcome.status != "pass":
                    print("       " + outcome.message.replace("\n", "\n       "))
    summary = ", ".join(f"{n} {status}ed" if status != "skip" else f"{n} skipped" for status, n in counts.items())
    print(
        f"{summary or 'nothing replayed'} in {time.perf_counter() - start:.2f}s ({len(regressions)} case(s), "
        f"devices: {', '.join(present) or 'none present'})"
    )
    if problems:
        print(f"{problems} file(s) or id(s) could not be used", file=sys.stderr)
    return 1 if counts["fail"] or problems else 0
