"""The corpus under concurrency and hostile files (docs/robustness.md, "Hostile input"): concurrent
adds keep every sighting, every bad file gets one error naming it while the others still load,
the schema refuses what would replay wrongly, files keep the usual permissions, and the
``regressions`` commands exit 2 with a message instead of a traceback. Each test failed on the
commit before these fixes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from linconv import corpus
from linconv.__main__ import main
from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.corpus import Regression
from linconv.known_bugs import KNOWN_BUGS

ROOT = Path(__file__).resolve().parent.parent
TINY = Case(ConvGeometry(1, 2, 3, (2, 2)), seed=7)
GOOD = Regression("pointwise", TINY)

_GEOMETRY_DEFAULTS = {"kernel": [1, 1], "stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1}
_GEOMETRY_DEFAULTS |= {"padding_mode": "zeros", "bias": True}
_CASE_DEFAULTS = {"dtype": "float32", "values": "normal", "memory_format": "contiguous", "input_view": "dense"}
_CASE_DEFAULTS |= {"head_features": 0, "seed": 0}


def _id(relation: str, case: dict) -> str:
    """The id a file with this relation and case must carry (the store's canonical hash, computed
    here from the raw JSON, as someone editing a file would): a hostile file passes the id check."""
    geometry = {k: v for k, v in case["geometry"].items() if _GEOMETRY_DEFAULTS.get(k, object()) != v}
    fields = {k: v for k, v in case.items() if k != "geometry" and _CASE_DEFAULTS.get(k, object()) != v}
    canonical = {"relation": relation, "case": {**fields, "geometry": geometry}}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:12]


def case_file(directory: Path, edit: Callable[[dict], None], *, name: str | None = None) -> Path:
    """A corpus file of the tiny pointwise case after ``edit``, with the id that matches it."""
    data = GOOD.to_dict()
    edit(data)
    data["id"] = _id(data["relation"], data["case"])
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or f"{data['id']}.json")
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def within(seconds: int, call: Callable[[], object]) -> object:
    """``call()``, or TimeoutError if it blocks longer than ``seconds`` (a FIFO, /dev/zero)."""

    def expire(signum, frame):
        raise TimeoutError(f"blocked for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        return call()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def cli(capsys, *argv) -> tuple[int, str, str]:
    try:
        status = main(["regressions", *map(str, argv)])
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


# --- concurrency ------------------------------------------------------------------------------


def test_concurrent_adds_of_one_case_keep_every_sighting(tmp_path, monkeypatch):
    """Eight writers add the same case at once, each with its own sighting; the write is slowed so
    that, without the lock, every writer reads the file before any has written it back."""
    original = corpus.store.write

    def slow_write(regression, directory):
        time.sleep(0.2)
        return original(regression, directory)

    monkeypatch.setattr(corpus.store, "write", slow_write)
    start = threading.Barrier(8)

    def add(i: int) -> None:
        start.wait()
        corpus.add(Regression("pointwise", TINY, found=({"sighting": i},)), tmp_path)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = corpus.load_file(tmp_path / f"{GOOD.id}.json")
    assert sorted(entry["sighting"] for entry in stored.found) == list(range(8))


def test_the_lock_falls_back_to_a_lock_file_where_a_directory_cannot_be_locked(tmp_path, monkeypatch):
    import fcntl

    from linconv.core import fileio

    real_flock = fcntl.flock

    def flock(fd, operation):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(9, "Bad file descriptor")  # what NFS answers for a read-only directory
        return real_flock(fd, operation)

    monkeypatch.setattr(fileio.fcntl, "flock", flock)
    corpus.add(GOOD, tmp_path)
    assert (tmp_path / ".linconv.lock").is_file()
    assert corpus.load_corpus(tmp_path) == ([GOOD], [])  # the lock file is not a case


# --- permissions --------------------------------------------------------------------------------


@pytest.fixture
def umask():
    def set_umask(mask: int) -> None:
        os.umask(mask)

    before = os.umask(0o022)
    os.umask(before)
    yield set_umask
    os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_get_the_mode_open_would_give_and_keep_an_existing_one(tmp_path, umask):
    from linconv.core.fileio import write_text_atomic

    umask(0o022)
    path, _ = corpus.add(GOOD, tmp_path / "corpus")
    assert _mode(path) == 0o644
    assert _mode(write_text_atomic(tmp_path / "verdict.md", "PASS\n")) == 0o644
    path.chmod(0o640)  # a team's choice for its corpus: an add keeps it
    corpus.add(Regression("pointwise", TINY, found=({"sighting": 1},)), tmp_path / "corpus")
    assert _mode(path) == 0o640
    umask(0o077)
    assert _mode(write_text_atomic(tmp_path / "private.md", "x\n")) == 0o600


# --- hostile files: one error each, the rest still load ---------------------------------------------

_SEED_FILE = "0850bcd7e82f.json"  # a case of the repository's corpus


def _deep(path: Path) -> None:
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")


def _digits(path: Path) -> None:
    path.write_text('{"schema_version": 2, "id": ' + "1" * 5000 + "}", encoding="utf-8")


def _raw_found(text: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        data = GOOD.to_dict()
        data["id"] = _id(data["relation"], data["case"])
        path.write_text(json.dumps(data).replace('"found": []', f'"found": [{text}]'), encoding="utf-8")

    return write


def _duplicate_key(path: Path) -> None:
    data = GOOD.to_dict()
    data["id"] = _id(data["relation"], data["case"])
    path.write_text(json.dumps(data).replace('"expect": "pass"', '"expect": "xfail", "expect": "pass"'))


HOSTILE = {
    "100k-deep JSON": (_deep, "is nested too deeply (more than 64 levels)"),
    "5000-digit integer": (_digits, "holds an integer of 5000 digits (at most 40)"),
    "NaN in found": (_raw_found('{"ratio": NaN}'), "holds NaN, which JSON does not allow (a number must be finite)"),
    "1e400 in found": (_raw_found('{"ratio": 1e400}'), "holds the number 1e400, which overflows to infinity"),
    "600-deep found": (
        _raw_found('{"x": ' + "[" * 600 + "]" * 600 + "}"),
        "is nested too deeply (more than 64 levels)",
    ),
    "a key twice": (_duplicate_key, "holds the key 'expect' twice in one object"),
    "not UTF-8": (lambda p: p.write_bytes(b'{"note": "\xff"}'), "is not UTF-8 text (byte 10: invalid start byte)"),
    "a FIFO": (lambda p: os.mkfifo(p), "is not a regular file (a FIFO, a device or a socket)"),
    "a link to /dev/zero": (
        lambda p: p.symlink_to("/dev/zero"),
        "is not a regular file (a FIFO, a device or a socket)",
    ),
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_file_is_one_error_and_the_rest_still_load(tmp_path, capsys, kind):
    make, problem = HOSTILE[kind]
    (tmp_path / _SEED_FILE).write_text((ROOT / "regressions" / _SEED_FILE).read_text())
    bad = tmp_path / "aaaaaaaaaaaa.json"
    make(bad)
    regressions, errors = within(5, lambda: corpus.load_corpus(tmp_path))
    assert [r.id for r in regressions] == [_SEED_FILE.removesuffix(".json")]
    assert [str(e) for e in errors] == [f"{bad}: {problem}"]
    status, out, err = within(5, lambda: cli(capsys, "list", "--dir", tmp_path))
    assert (status, err) == (1, f"error: {bad}: {problem}\n")
    assert "1 case(s) in" in out
    assert within(5, lambda: cli(capsys, "add", bad, "--dir", tmp_path / "other")) == (
        1,
        "",
        f"error: {bad}: {problem}\n",
    )


def test_pytest_collects_the_corpus_past_a_hostile_file(tmp_path):
    """One bad file fails its own test; the other cases are still replayed (not a collection error)."""
    import subprocess
    import sys

    (tmp_path / _SEED_FILE).write_text((ROOT / "regressions" / _SEED_FILE).read_text())
    _deep(tmp_path / "aaaaaaaaaaaa.json")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LINCONV_REPORT_DIR": str(tmp_path / "reports")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "properties/test_regressions.py", "--devices", "cpu", "-q", "-p",
         "no:cacheprovider", "--regressions-dir", str(tmp_path), "-o", "addopts="],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "1 failed, 2 passed" in proc.stdout, proc.stdout[-2000:]
    assert "is nested too deeply" in proc.stdout


# --- the schema refuses what would replay wrongly ---------------------------------------------


def _set(path: str, value) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        *parents, last = path.split(".")
        target = data
        for name in parents:
            target = target[name]
        target[last] = value

    return edit


def _full_kernel(data: dict) -> None:
    data["relation"] = "full_kernel"  # the tiny case has a 1x1 kernel on a 2x2 input: not full-kernel


SCHEMA = {
    '"bias": "false"': (_set("case.geometry.bias", "false"), "case.geometry: bias must be true or false, got 'false'"),
    '"seed": true': (_set("case.seed", True), "case: seed must be an int in [0, 2**63), got True"),
    '"head_features": true': (_set("case.head_features", True), "case: head_features must be an int >= 0, got True"),
    "a relation that cannot apply": (
        _full_kernel,
        "relation: 'full_kernel' does not apply to this case: it needs a kernel that covers the input "
        "(kernel == size, no padding, no dilation)",
    ),
    "batch 1e9": (
        _set("case.geometry.batch", 10**9),
        "case.geometry: its output tensor would have 12,000,000,000 elements, over the corpus budget of "
        "67,108,864 (linconv.core.config.LARGEST_MAX_NUMEL, the largest --max-numel a run may use)",
    ),
    "a 100000x100000 input": (
        _set("case.geometry.size", [100_000, 100_000]),
        "case.geometry: its output tensor would have 30,000,000,000 elements, over the corpus budget of "
        "67,108,864 (linconv.core.config.LARGEST_MAX_NUMEL, the largest --max-numel a run may use)",
    ),
    "a 1 MB note": (
        _set("note", "x" * 2**20),
        "note: has 1,048,576 characters; at most 10,000 are kept (say the rest in a linked issue)",
    ),
    "a 1 MB link": (
        _set("link", "https://" + "x" * 2**20),
        "link: has 1,048,584 characters; at most 2,000 are kept (say the rest in a linked issue)",
    ),
    "a 1 MB known_bug": (
        lambda d: d.update(expect="xfail", xfail_torch=None, known_bug="x" * 2**20),
        f"known_bug: must be one of {[bug.name for bug in KNOWN_BUGS]} or null, got '{'x' * 76}...",
    ),
    'xfail_torch ">=3,<2"': (
        lambda d: d.update(expect="xfail", xfail_torch=">=3,<2"),
        "xfail_torch: must contain at least one torch version, but '>=3,<2' contains none "
        "(expect is 'xfail' without a known_bug)",
    ),
    '"dtype": ["float32"]': (
        _set("case.dtype", ["float32"]),
        "case: dtype must be one of ('float32', 'float64', 'bfloat16', 'float16'), got ['float32']",
    ),
}


@pytest.mark.parametrize("kind", list(SCHEMA))
def test_the_schema_refuses(tmp_path, kind):
    edit, problem = SCHEMA[kind]
    path = case_file(tmp_path, edit)
    with pytest.raises(corpus.CorpusError) as info:
        corpus.load_file(path)
    assert str(info.value) == f"{path}: {problem}"


def test_case_refuses_booleans_as_ints():
    with pytest.raises(ValueError, match=r"^seed must be an int in \[0, 2\*\*63\), got True$"):
        Case(TINY.geometry, seed=True)
    with pytest.raises(ValueError, match=r"^head_features must be an int >= 0, got True$"):
        Case(TINY.geometry, head_features=True)


# --- the regressions commands -------------------------------------------------------------------


@pytest.fixture
def pending(tmp_path) -> Path:
    path, _ = corpus.add(GOOD, tmp_path / "pending")
    return path


def test_add_refuses_an_empty_range_a_long_note_and_a_long_link(capsys, pending, tmp_path):
    target = tmp_path / "corpus"
    assert cli(capsys, "add", pending, "--dir", target, "--xfail-torch", ">=3,<2") == (
        2,
        "",
        "error: --xfail-torch must contain at least one torch version, but '>=3,<2' contains none\n",
    )
    assert cli(capsys, "add", pending, "--dir", target, "--note", "x" * 10_001) == (
        2,
        "",
        "error: --note has 10,001 characters; at most 10,000 are kept\n",
    )
    assert cli(capsys, "add", pending, "--dir", target, "--link", "x" * 2_001) == (
        2,
        "",
        "error: --link has 2,001 characters; at most 2,000 are kept\n",
    )
    assert not target.exists()


def test_add_into_a_file_or_an_unwritable_directory_is_an_error(capsys, pending, tmp_path):
    assert cli(capsys, "add", pending, "--dir", pending) == (2, "", f"error: --dir {pending} is not a directory\n")
    unwritable = Path("/proc/linconv-corpus")  # refuses a new directory even to root
    status, out, err = cli(capsys, "add", pending, "--dir", unwritable)
    assert (status, out) == (2, "")
    assert err.startswith(f"error: cannot write into the corpus directory {unwritable}: ")


def test_add_of_a_merged_case_with_a_non_finite_sighting_is_refused_not_a_traceback(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    _raw_found('{"ratio": NaN}')(bad)
    status, _, err = cli(capsys, "add", bad, "--dir", tmp_path / "corpus")
    assert status == 1 and err == f"error: {bad}: holds NaN, which JSON does not allow (a number must be finite)\n"


@pytest.mark.parametrize(
    ("devices", "message"),
    [
        (
            "cuda",
            "error: --devices: cuda was asked for but is absent: CUDA is not available here "
            "(torch.cuda.is_available() is False). Name only present devices, use 'all' (absent ones are skipped), "
            "or pass --skip-absent-devices to skip it\n",
        ),
        (
            "cpu,cpu",
            "error: --devices: must name each device once (each would run every test again), got 'cpu' twice in "
            "'cpu,cpu'\n",
        ),
        ("", "error: --devices: must name at least one device (cpu, cuda, cuda:N, mps) or 'all', got ''\n"),
    ],
    ids=["absent", "twice", "none"],
)
def test_check_refuses_devices_that_would_replay_nothing_or_twice(capsys, devices, message):
    import torch

    if devices == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    assert cli(capsys, "check", "--devices", devices, "--dir", ROOT / "regressions") == (2, "", message)


def test_check_skips_an_absent_device_only_when_asked_and_never_replays_nothing(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    status, out, err = cli(capsys, "check", "--devices", "cuda", "--skip-absent-devices", "--dir", ROOT / "regressions")
    assert status == 2
    assert out.startswith("SKIP   cuda: CUDA is not available here")
    assert err == "error: --devices cuda: none of these devices is present here, nothing would be replayed\n"
