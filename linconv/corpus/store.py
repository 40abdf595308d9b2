"""The regression corpus: counterexamples kept as data, one readable JSON file per case.

A file ``regressions/<id>.json`` holds one :class:`Regression`: a relation, a case (without a
device: it is replayed on every selected device), what a replay must give (``pass``, or ``xfail``
for a range of torch versions with a known upstream bug), an optional note and link, and where
the case was found. The id is the first 12 hex digits of the sha256 of the canonical JSON of
relation + case, so the same counterexample found twice lands in the same file (the two are
merged) and two branches adding different cases never touch the same file. The schema is
documented in docs/regressions.md; :data:`SCHEMA_VERSION` changes when it does. Files of an
older version are still read (:mod:`linconv.corpus.legacy`), and
``python -m linconv regressions migrate`` rewrites them.

Reading validates every field and raises :class:`CorpusError` naming the file and the field
(a hostile file too: too large, too deep, not UTF-8, huge integers, NaN); :func:`load_corpus`
collects those errors instead of stopping, so one bad file does not hide the other cases. Every
read-modify-write of a corpus directory holds its lock (:func:`linconv.core.fileio.locked`), so
concurrent adds of one case (the CLI, or xdist workers capturing it) keep every sighting.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from linconv.core.cases import Case
from linconv.core.config import LARGEST_MAX_NUMEL
from linconv.core.fileio import JSONFileError, locked, read_json, write_text_atomic
from linconv.core.geometry import ConvGeometry
from linconv.corpus import legacy

__all__ = [
    "EXPECTATIONS",
    "MAX_FILE_BYTES",
    "MAX_LINK_LENGTH",
    "MAX_NOTE_LENGTH",
    "SCHEMA_VERSION",
    "CorpusError",
    "Regression",
    "add",
    "case_id",
    "corpus_files",
    "default_directory",
    "dumps",
    "find",
    "known_relations",
    "load_corpus",
    "load_file",
    "put",
    "torch_in_range",
    "validate_torch_range",
    "write",
]

# 2: N-d geometry (``size`` instead of ``height`` / ``width``); version 1 is read and converted.
SCHEMA_VERSION = 2
ID_LENGTH = 12
EXPECTATIONS = ("pass", "xfail")

_FIELDS = ("schema_version", "id", "relation", "expect", "xfail_torch", "known_bug", "note", "link", "case", "found")
_REQUIRED = ("schema_version", "id", "relation", "expect", "case")
_GEOMETRY_FIELDS = tuple(ConvGeometry.__dataclass_fields__)
_GEOMETRY_REQUIRED = ("batch", "in_channels", "out_channels", "size")
_ID_PATTERN = re.compile(rf"[0-9a-f]{{{ID_LENGTH}}}")
# A note says why a case matters in a paragraph (the longest seeded note has 371 characters); a
# link is one URL (browsers stop near 2,000 characters). A file holds one case and its sightings
# (about 1 KB each): 16 MiB is thousands of sightings, and bounds what one read may allocate.
MAX_NOTE_LENGTH = 10_000
MAX_LINK_LENGTH = 2_000
MAX_FILE_BYTES = 16 * 2**20


class CorpusError(ValueError):
    """A corpus or pending file that cannot be used: which file, which field, what is wrong."""

    def __init__(self, path: str | os.PathLike[str], field: str, problem: str) -> None:
        self.path = str(path)
        self.field = field
        self.problem = problem
        super().__init__(f"{self.path}: {field}: {problem}" if field else f"{self.path}: {problem}")


def default_directory() -> Path:
    """The corpus: ``$LINCONV_REGRESSIONS_DIR``, else ``regressions`` in the working directory."""
    return Path(os.environ.get("LINCONV_REGRESSIONS_DIR") or "regressions")


def known_relations() -> tuple[str, ...]:
    from linconv.relations import names

    return names()


# --- ids and versions ---------------------------------------------------------------------


def _case_data(case: Case) -> dict[str, Any]:
    data = case.to_dict()
    del data["device"]
    return data


def case_id(relation: str, case: Case) -> str:
    """First 12 hex digits of the sha256 of the canonical JSON of relation + case: sorted keys, no
    spaces, ASCII, and only the fields that differ from their defaults (device never)."""
    return _digest({"relation": relation, "case": case.minimal_dict()})


def _digest(canonical: dict[str, Any]) -> str:
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:ID_LENGTH]


def validate_torch_range(text: object) -> SpecifierSet:
    """A torch version range in PEP 440 specifier syntax, e.g. ``">=2.1,<2.4"``, that contains at
    least one version (``">=3,<2"`` would mark a case xfail on no torch at all)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f'must be a version range like ">=2.1,<2.4", got {_short(text)}')
    try:
        specifiers = SpecifierSet(text)
    except InvalidSpecifier:
        raise ValueError(f'must be a version range like ">=2.1,<2.4", got {_short(text)}') from None
    if not _satisfiable(specifiers):
        raise ValueError(f"must contain at least one torch version, but {text!r} contains none")
    return specifiers


def _satisfiable(specifiers: SpecifierSet) -> bool:
    """Whether some version lies in ``specifiers``. A range is an intersection of intervals whose
    ends are the versions it names, so trying each named version and versions just above and below
    it in every release component finds one inside any non-empty range of release versions
    (``===`` and epochs are taken on trust)."""
    probes = [Version("0"), Version("999999")]
    for spec in specifiers:
        try:
            version = Version(spec.version.removesuffix(".*"))
        except InvalidVersion:  # '===' arbitrary equality: any string; do not second-guess it
            return True
        if version.epoch:
            return True
        release = list(version.release)
        probes += [version, _version([*release, 0, 1]), _version([*release, 1])]
        for i, part in enumerate(release):
            probes.append(_version([*release[:i], part + 1]))
            if part > 0:
                probes.append(_version([*release[:i], part - 1, 999999]))
    return any(specifiers.contains(v, prereleases=True) for v in probes)


def _version(release: list[int]) -> Version:
    return Version(".".join(map(str, release)))


def torch_in_range(text: str, version: str | None = None) -> bool:
    """Whether ``version`` (default: the torch running) lies in the range; local labels such as
    ``+cpu`` are ignored and pre-releases count (a nightly is inside ``>=2.1``)."""
    try:
        parsed = Version(version or torch.__version__)
    except InvalidVersion:
        return False
    return validate_torch_range(text).contains(parsed, prereleases=True)


# --- the record -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Regression:
    """One stored counterexample. ``case`` is kept on the CPU; replays move it to each device."""

    relation: str
    case: Case
    expect: str = "pass"
    xfail_torch: str | None = None
    note: str | None = None
    link: str | None = None
    found: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    known_bug: str | None = None  # a linconv.known_bugs entry: expected to fail where it reproduces

    def __post_init__(self) -> None:
        for name, limit in (("note", MAX_NOTE_LENGTH), ("link", MAX_LINK_LENGTH)):
            problem = _text_problem(getattr(self, name), limit)
            if problem:
                raise ValueError(f"{name} {problem}")
        if self.case.device != "cpu":
            object.__setattr__(self, "case", self.case.on("cpu"))

    @property
    def id(self) -> str:
        return case_id(self.relation, self.case)

    @property
    def negative_control(self) -> bool:
        from linconv.relations import get

        return get(self.relation).negative_control is not None

    def expected_to_fail(self, torch_version: str | None = None) -> bool:
        """xfail, and its known bug reproduces on this torch build and CPU (the same answer the
        properties use to avoid the bug), or the torch running (or ``torch_version``) lies in its range."""
        if self.expect != "xfail":
            return False
        if self.known_bug is not None:
            from linconv.known_bugs import get_bug, present

            return present(get_bug(self.known_bug))
        return torch_in_range(self.xfail_torch or "", torch_version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "id": self.id,
            "relation": self.relation,
            "expect": self.expect,
            "xfail_torch": self.xfail_torch,
            "known_bug": self.known_bug,
            "note": self.note,
            "link": self.link,
            "case": _case_data(self.case),
            "found": list(self.found),
        }

    def to_json(self) -> str:
        return dumps(self.to_dict()) + "\n"

    def merged(self, other: Regression) -> Regression:
        """This record plus ``other``'s sightings; its note and link fill only what is missing."""
        if other.id != self.id:
            raise ValueError(f"cannot merge regression {other.id} into {self.id}: different cases")
        found = list(self.found) + [entry for entry in other.found if entry not in self.found]
        return replace(self, note=self.note or other.note, link=self.link or other.link, found=tuple(found))

    def reproduction(self) -> str:
        return self.case.reproduction(self.relation)

    @classmethod
    def from_dict(cls, data: object, *, source: str | os.PathLike[str] = "<data>") -> Regression:
        """Validate ``data`` (a parsed JSON file) field by field; errors name ``source`` and the field."""
        if not isinstance(data, dict):
            raise CorpusError(source, "", f"must be a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise CorpusError(source, unknown[0], f"unknown field (known: {', '.join(_FIELDS)})")
        for name in _REQUIRED:
            if name not in data:
                raise CorpusError(source, name, "missing")

        version = data["schema_version"]
        if not _is_int(version):
            raise CorpusError(source, "schema_version", f"must be an int, got {_short(version)}")
        if version not in legacy.READABLE:
            raise CorpusError(source, "schema_version", f"is {version}, this linconv reads versions {legacy.READABLE}")
        relation = data["relation"]
        if relation not in known_relations():
            raise CorpusError(source, "relation", f"must be one of {known_relations()}, got {_short(relation)}")
        expect = data["expect"]
        if expect not in EXPECTATIONS:
            raise CorpusError(source, "expect", f"must be one of {EXPECTATIONS}, got {_short(expect)}")
        xfail_torch, known_bug = data.get("xfail_torch"), data.get("known_bug")
        if known_bug is not None:
            from linconv.known_bugs import KNOWN_BUGS

            names = [bug.name for bug in KNOWN_BUGS]
            if known_bug not in names:  # a list or a 1 MB string is named shortly, like any value here
                raise CorpusError(source, "known_bug", f"must be one of {names} or null, got {_short(known_bug)}")
        if expect == "xfail" and known_bug is None:
            try:
                validate_torch_range(xfail_torch)
            except ValueError as exc:
                raise CorpusError(source, "xfail_torch", f"{exc} (expect is 'xfail' without a known_bug)") from None
        elif expect == "xfail" and xfail_torch is not None:
            raise CorpusError(source, "xfail_torch", "must be null when known_bug decides the expectation")
        elif expect == "pass" and (xfail_torch is not None or known_bug is not None):
            field, value = ("xfail_torch", xfail_torch) if xfail_torch is not None else ("known_bug", known_bug)
            raise CorpusError(source, field, f"must be null when expect is 'pass', got {_short(value)}")
        for name, limit in (("note", MAX_NOTE_LENGTH), ("link", MAX_LINK_LENGTH)):
            problem = _text_problem(data.get(name), limit)
            if problem:
                raise CorpusError(source, name, problem)
        found = data.get("found", [])
        if not isinstance(found, list) or not all(isinstance(entry, dict) for entry in found):
            raise CorpusError(source, "found", f"must be a list of objects, got {_short(found)}")

        case_data = data["case"]
        if version < SCHEMA_VERSION:
            case_data = legacy.upgrade_case(case_data)
        case = _case_from(case_data, source)
        _check_case_fits(relation, case, source)
        regression = cls(
            relation=relation,
            case=case,
            expect=expect,
            xfail_torch=xfail_torch,
            known_bug=known_bug,
            note=data.get("note"),
            link=data.get("link"),
            found=tuple(found),
        )
        stored = data["id"]
        if not isinstance(stored, str) or not _ID_PATTERN.fullmatch(stored):
            raise CorpusError(source, "id", f"must be {ID_LENGTH} lowercase hex digits, got {_short(stored)}")
        expected = regression.id if version == SCHEMA_VERSION else _digest(legacy.canonical(relation, data["case"]))
        if stored != expected:
            raise CorpusError(
                source,
                "id",
                f"{stored!r} does not match the content: sha256 of relation + case gives {expected!r} "
                "(was the case edited? then the id, and the file name, must change with it)",
            )
        return regression


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text_problem(value: object, limit: int) -> str:
    """Why ``value`` cannot be a note or link ("" when it can): a string of at most ``limit``
    characters, or null."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return f"must be a string or null, got {_short(value)}"
    if len(value) > limit:
        return f"has {len(value):,} characters; at most {limit:,} are kept (say the rest in a linked issue)"
    return ""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_case_fits(relation: str, case: Case, source) -> None:
    """The relation applies to the case (else a replay fails with a shape error, not a verdict), and
    every tensor the case builds fits the corpus budget (else a replay exhausts memory)."""
    from linconv.relations import get

    why = get(relation).applies_to(case)
    if why:
        raise CorpusError(source, "relation", f"{relation!r} does not apply to this case: {why}")
    name, numel = max(case.tensor_sizes().items(), key=lambda item: item[1])
    if numel > LARGEST_MAX_NUMEL:
        raise CorpusError(
            source,
            "case.geometry",
            f"its {name} tensor would have {numel:,} elements, over the corpus budget of {LARGEST_MAX_NUMEL:,} "
            "(linconv.core.config.LARGEST_MAX_NUMEL, the largest --max-numel a run may use)",
        )


def _check_keys(data: object, where: str, known: tuple[str, ...], required: tuple[str, ...], source) -> dict:
    if not isinstance(data, dict):
        raise CorpusError(source, where, f"must be an object, got {_short(data)}")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise CorpusError(source, f"{where}.{unknown[0]}", f"unknown field (known: {', '.join(known)})")
    for name in required:
        if name not in data:
            raise CorpusError(source, f"{where}.{name}", "missing")
    return data


def _case_from(data: object, source) -> Case:
    if isinstance(data, dict) and "device" in data:
        raise CorpusError(
            source, "case.device", "not stored: a regression case is replayed on every selected device; remove it"
        )
    known = [f for f in Case.__dataclass_fields__ if f != "device"]
    fields = dict(_check_keys(data, "case", tuple(known), ("geometry",), source))
    _check_keys(fields["geometry"], "case.geometry", _GEOMETRY_FIELDS, _GEOMETRY_REQUIRED, source)
    try:
        fields["geometry"] = ConvGeometry.from_dict(fields["geometry"])
    except (TypeError, ValueError) as exc:
        raise CorpusError(source, "case.geometry", str(exc)) from None
    try:
        return Case(**fields)
    except (TypeError, ValueError) as exc:
        raise CorpusError(source, "case", str(exc)) from None


# --- files ----------------------------------------------------------------------------------


def dumps(data: Any, level: int = 0) -> str:
    """JSON indented by two spaces, with short lists of numbers kept on one line (``[3, 3]``)."""
    pad = "  " * (level + 1)
    if isinstance(data, dict) and data:
        items = [f"{pad}{json.dumps(key)}: {dumps(value, level + 1)}" for key, value in data.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    if isinstance(data, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in data):
        return "[\n" + ",\n".join(pad + dumps(v, level + 1) for v in data) + "\n" + "  " * level + "]"
    return json.dumps(data, ensure_ascii=False, allow_nan=False)


def load_file(path: str | os.PathLike[str], *, check_name: bool = True) -> Regression:
    """Read and validate one file; with ``check_name`` its name must be ``<id>.json``."""
    path = Path(path)
    try:
        data = read_json(path, max_bytes=MAX_FILE_BYTES)
    except JSONFileError as exc:
        raise CorpusError(path, "", exc.problem) from None
    regression = Regression.from_dict(data, source=path)
    stored = data["id"]  # the version-1 id for a file of that version
    if check_name and path.name != f"{stored}.json":
        raise CorpusError(path, "id", f"the file must be named after its id: {stored}.json")
    return regression


def corpus_files(directory: str | os.PathLike[str]) -> list[Path]:
    directory = Path(directory)
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def load_corpus(directory: str | os.PathLike[str]) -> tuple[list[Regression], list[CorpusError]]:
    """Every case in ``directory``, and an error for each file that could not be used."""
    regressions, errors = [], []
    for path in corpus_files(directory):
        try:
            regressions.append(load_file(path))
        except CorpusError as exc:
            errors.append(exc)
    return regressions, errors


def write(regression: Regression, directory: str | os.PathLike[str]) -> Path:
    """Write ``regression`` as ``<directory>/<id>.json`` atomically (a reader never sees half a file)."""
    return write_text_atomic(Path(directory) / f"{regression.id}.json", regression.to_json())


def put(
    regression: Regression, directory: str | os.PathLike[str], *, changes: dict[str, Any] | None = None
) -> tuple[Path, Regression, bool]:
    """Store ``regression`` in ``directory``, merged into the file of the same id if there is one,
    then with ``changes`` (note, link, expect, xfail_torch) applied. The read, merge and write hold
    the directory's lock, so concurrent writers never lose each other's sightings. Returns the
    path, what was written and whether a merge happened. CorpusError: the stored file is unusable;
    ValueError: a change is invalid; OSError: the directory cannot be written."""
    with locked(directory):
        path = Path(directory) / f"{regression.id}.json"
        merged = path.exists()
        if merged:
            regression = load_file(path).merged(regression)
        if changes:
            regression = replace(regression, **changes)
        return write(regression, directory), regression, merged


def add(regression: Regression, directory: str | os.PathLike[str]) -> tuple[Path, bool]:
    """Store ``regression`` in ``directory``, merged into the file of the same id if there is one
    (under the directory's lock, see :func:`put`). Returns the path and whether a merge happened."""
    path, _, merged = put(regression, directory)
    return path, merged


def find(directory: str | os.PathLike[str], id_prefix: str) -> Path:
    """The file whose id is ``id_prefix`` or starts with it (unique prefix)."""
    matches = [p for p in corpus_files(directory) if p.stem.startswith(id_prefix)] if id_prefix else []
    if len(matches) != 1:
        what = "no case" if not matches else f"{len(matches)} cases ({', '.join(p.stem for p in matches)})"
        raise LookupError(f"{what} in {directory} with an id starting {id_prefix!r}")
    return matches[0]
