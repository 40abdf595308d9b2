"""Files that survive concurrency, interruption and hostile content.

- :func:`write_text_atomic` / :func:`atomic_writer`: a reader sees the old file or the new one,
  never half of one; the new file gets the permissions a plain ``open()`` would give it (or keeps
  the old file's).
- :func:`locked`: an exclusive lock on a directory for a read-modify-write of files in it
  (``fcntl.flock``; see the function for the platforms without it); :func:`file_lock` the same on
  a lock file of one's choosing (the known-bug cache).
- :func:`read_json`: one JSON file, refused with one :class:`JSONFileError` that says what is wrong
  when it is not a regular file, too large, not UTF-8, not JSON, nested too deeply, or holds
  duplicate keys, huge integers or non-finite numbers.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks in the standard library that fit (see locked())
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "MAX_DEPTH",
    "atomic_writer",
    "file_lock",
    "MAX_INT_DIGITS",
    "JSONFileError",
    "json_number",
    "locked",
    "output_problem",
    "read_json",
    "write_text_atomic",
]

# Deepest nesting of objects and lists a file may have. linconv's own files nest 6 levels at most;
# the limit keeps every recursive reader and writer (json, repr, the corpus's dumps) far from
# Python's recursion limit (1000 frames), which a 100k-deep file would otherwise hit.
MAX_DEPTH = 64
# Most digits of an integer literal: seeds are < 2**63 (19 digits), counts far smaller. Python
# refuses to parse more than 4300 digits with a ValueError that json.loads does not catch.
MAX_INT_DIGITS = 40


def _umask() -> int:
    """The process's umask, read without changing it where the OS allows (os.umask is set-and-get,
    which races with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_writer(path: str | os.PathLike[str], *, binary: bool = False) -> Iterator[IO[Any]]:
    """A handle on a temporary file beside ``path`` that, when the ``with`` block ends without an
    exception, is fsynced and renamed over ``path``; on an exception it is removed.

    The temporary file is created 0600 (tempfile), so before the rename it gets the mode of the
    file it replaces, or for a new file the mode ``open()`` would give: 0666 minus the umask."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_writer`)."""
    with atomic_writer(path) as handle:
        handle.write(text)
    return Path(path)


def output_problem(path: str | os.PathLike[str], *, append: bool = False) -> str:
    """Why a file cannot be written at ``path`` ("" when it can), found before a long run rather than
    after it: a directory in the way, a parent that is not a directory, or a directory that refuses
    a new file (tried for real: permission bits say nothing to root, or on a read-only mount)."""
    target = Path(path)
    if target.is_dir():
        return "is a directory, not a file"
    parent = target.parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                return f"cannot be created: {folder} is not a directory"
            break
    try:
        if append:
            with open(target, "a", encoding="utf-8"):
                pass
        else:
            parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=parent):
                pass
    except OSError as exc:
        return f"cannot be written ({exc.strerror or exc})"
    return ""


@contextmanager
def locked(directory: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive lock on ``directory`` (created if missing) for the ``with`` block.

    Every read-modify-write of files in the directory takes it (the regression corpus, the pending
    cases of a run, xdist workers included), so two writers never both read the old file and the
    second write loses the first's change. POSIX: ``flock`` on the directory itself, which leaves no
    lock file behind; where a file system refuses to lock a directory (some network file systems),
    ``flock`` on ``<directory>/.linconv.lock`` instead. Windows has no ``fcntl``: there the block
    runs unlocked, and concurrent writers to one directory can lose updates (docs/regressions.md).
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield folder
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        fd = os.open(folder / ".linconv.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
    try:
        yield folder
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class JSONFileError(ValueError):
    """A JSON file that cannot be used; ``problem`` says why (the caller names the file)."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path, self.problem = str(path), problem
        super().__init__(f"{self.path}: {problem}")


def _refuse_constant(name: str) -> Any:
    raise JSONFileError("", f"holds {name}, which JSON does not allow (a number must be finite)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf
        raise JSONFileError("", f"holds the number {text[:40]}, which overflows to infinity")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JSONFileError("", f"holds an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise JSONFileError("", f"holds the key {key[:40]!r} twice in one object")
        data[key] = value
    return data


def _depth(data: Any) -> int:
    """Nesting depth of lists and objects, without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend((item, level + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


def read_json(path: str | os.PathLike[str], *, max_bytes: int, allow_nonfinite: bool = False) -> Any:
    """The parsed content of the JSON file ``path``, or :class:`JSONFileError` saying what is wrong.

    Refused: anything but a regular file (a FIFO or ``/dev/zero`` would block or never end), more
    than ``max_bytes``, text that is not UTF-8 or not JSON, nesting deeper than :data:`MAX_DEPTH`,
    a key twice in one object, an integer longer than :data:`MAX_INT_DIGITS` digits, and unless
    ``allow_nonfinite`` the literals ``NaN`` / ``Infinity`` and numbers that overflow to infinity.
    """
    file = Path(path)
    try:
        info = file.stat()
    except FileNotFoundError:
        raise JSONFileError(file, "no such file") from None
    except OSError as exc:
        raise JSONFileError(file, f"cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise JSONFileError(file, "is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise JSONFileError(file, "is not a regular file (a FIFO, a device or a socket)")
    try:
        with open(file, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise JSONFileError(file, f"cannot be read ({exc.strerror})") from None
    if len(raw) > max_bytes:
        raise JSONFileError(file, f"is larger than {max_bytes:,} bytes, the most this file may have")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONFileError(file, f"is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    hooks: dict[str, Any] = {"object_pairs_hook": _unique_keys, "parse_int": _bounded_int}
    if not allow_nonfinite:
        hooks.update(parse_constant=_refuse_constant, parse_float=_finite_float)
    try:
        data = json.loads(text, **hooks)
    except JSONFileError as exc:
        raise JSONFileError(file, exc.problem) from None
    except json.JSONDecodeError as exc:
        raise JSONFileError(file, f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise JSONFileError(file, f"is nested too deeply (more than {MAX_DEPTH} levels)") from None
    if _depth(data) > MAX_DEPTH:
        raise JSONFileError(file, f"is nested too deeply (more than {MAX_DEPTH} levels)")
    return data


def json_number(value: float) -> float | str:
    """JSON has no infinity or NaN: a non-finite number is written as the string "inf" / "nan"."""
    return value if math.isfinite(value) else str(value)


@contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the block: processes
    that take the same lock run the block one at a time. POSIX ``flock``; where it does not exist
    (Windows) the block runs unlocked."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as handle:
        if fcntl is None:  # pragma: no cover - not POSIX
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
