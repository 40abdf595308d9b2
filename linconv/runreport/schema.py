"""The run report's schema: one typed definition that documents the document and validates it.

A run report (``report.json``, docs/report.md) is written by the pytest plugin, merged by
``python -m linconv report A B --out M`` and judged by the gate. Its shape is the TypedDicts
below; :func:`validate` walks a parsed document against them and raises :class:`ReportError`
naming the file and the first field that is missing or of the wrong type. Optional keys are
the ``total=False`` halves (reports written before a key existed lack it); unknown keys are
allowed (adding keys keeps :data:`SCHEMA_VERSION`; renaming one or changing its meaning bumps it).
"""

from __future__ import annotations

import math
import os
import types
import typing
from typing import Annotated, Any, Literal, TypedDict, Union

from linconv.lanes.modes import DEVICE_MODES

__all__ = [
    "ALL_MODES",
    "COMPLETENESS",
    "OUTCOMES",
    "OUTCOME_RANK",
    "SCHEMA_VERSION",
    "Completeness",
    "Environment",
    "Machine",
    "RatioRow",
    "RejectedRow",
    "RelationEntry",
    "Report",
    "ReportError",
    "SampleRow",
    "TallyRow",
    "TimingRow",
    "tally_execution",
    "tally_mode",
    "validate",
    "validate_benchmarks",
]

SCHEMA_VERSION = 1

# Outcomes of a replayed regression case; worst first when several jobs or phases disagree.
OUTCOMES = ("passed", "failed", "xfailed", "xpassed", "skipped")
OUTCOME_RANK = {"failed": 3, "xpassed": 2, "xfailed": 2, "skipped": 1, "passed": 0}

# The mode of a tally row written before linconv kept precision modes apart, on a device that
# has several: its counts pool every mode (linconv.lanes.modes.DEVICE_MODES).
ALL_MODES = "all modes"

# Whether the run that wrote a report finished (Completeness.status): ``complete`` (every collected
# test ran), ``interrupted`` (Ctrl-C, -x, a crash, or still running: the stub a run writes when it
# starts), ``empty`` (it finished having checked nothing: every test skipped or deselected).
COMPLETENESS = ("complete", "interrupted", "empty")

# Annotations with a meaning beyond their Python type. Every number is finite.
RATIO = "ratio"  # a number >= 0, or the string "inf" / "nan" (JSON has no infinity)
SECONDS = "seconds"  # a number > 0
COUNT = "count"  # an int >= 0
SPREAD = "spread"  # a number >= 0
Ratio = Annotated[float, RATIO]
Seconds = Annotated[float, SECONDS]
Count = Annotated[int, COUNT]
Spread = Annotated[float, SPREAD]
Outcome = Literal["passed", "failed", "xfailed", "xpassed", "skipped"]


class ReportError(ValueError):
    """A report file that cannot be used: names the file and the field."""

    def __init__(self, path: str | os.PathLike[str], field: str, problem: str) -> None:
        self.path, self.field, self.problem = str(path), field, problem
        where = f"field '{field}' " if field else ""
        super().__init__(f"{path}: {where}{problem}")


class _Environment(TypedDict):
    torch: str
    python: str
    hypothesis_profile: str
    threads: int


class ExecutionConfig(TypedDict, total=False):
    """A compiled execution lane's configuration as it was in force (linconv.lanes.execution.read_config)."""

    lane: str
    torch_compile: dict[str, Any]
    inductor: dict[str, Any]
    dynamo: dict[str, Any]


class Environment(_Environment, total=False):
    platform: str
    cuda: str | None
    cudnn: int | None
    hypothesis: str
    timing_threads: int
    devices: dict[str, str]  # the devices that ran -> their names (reports before devices_absent: all asked for)
    devices_absent: dict[str, str]  # devices asked for but absent here -> why (absent in reports before it)
    precision_flags: dict[str, Any]
    dtypes: list[str]
    max_numel: int
    xdist_workers: int
    linconv_env: dict[str, str]
    execution_lanes: dict[str, ExecutionConfig]  # the compiled lanes that ran (absent: eager only)


class _Machine(TypedDict):
    fingerprint: str


class Machine(_Machine, total=False):
    cpu_model: str
    cpu_capability: str
    cpu_count: int
    gpus: list[str]
    threads: int


class _TallyRow(TypedDict):
    device: str
    dtype: str
    examples: Count
    violations: Count
    exact: Count
    worst_ratio: Ratio


class CompileCost(TypedDict, total=False):
    """What compiling cost in a compiled execution lane (linconv.lanes.execution.CompileStats)."""

    seconds: float  # dynamo, AOTAutograd and inductor, forward and backward graphs
    graphs: int  # graphs dynamo compiled (each recompile is one more)
    graph_breaks: int
    resets: int  # cache clears forced by the recompile limit


class TallyRow(_TallyRow, total=False):
    mode: str  # the precision mode (absent in reports before modes were kept apart: tally_mode)
    execution: str  # the execution lane (absent in reports before lanes: eager, tally_execution)
    # violations on cases whose inputs match a known upstream bug's signature, by bug name
    known_bug_violations: dict[str, Count]
    compile: CompileCost


class _Totals(TypedDict):
    examples: Count
    violations: Count
    worst_ratio: Ratio


class Totals(_Totals, total=False):
    exact: Count


class RelationRun(TypedDict, total=False):
    """Seconds the tests of one relation took, and where they went (None: not measured)."""

    seconds: float | None
    examples_per_s: float | None
    checked_s: float | None
    timing_s: float | None
    suite_s: float | None


class _RelationEntry(TypedDict):
    formulations: list[str]
    totals: Totals
    by_device_dtype: list[TallyRow]


class RelationEntry(_RelationEntry, total=False):
    statement: str
    timed: bool
    run: RelationRun


class _TimingRow(TypedDict):
    key: str
    relation: str
    formulation: str
    device: str
    mode: str
    dtype: str
    phase: str
    size_bucket: str
    median_s: float
    q1_s: float
    q3_s: float
    iqr_s: float
    count: Count


class TimingRow(_TimingRow, total=False):
    execution: str  # the execution lane (absent: eager)
    size_lo: int
    size_hi: int


class _RatioRow(TypedDict):
    key: str
    relation: str
    pair: str
    device: str
    mode: str
    dtype: str
    phase: str
    size_bucket: str
    median: float
    q1: float
    q3: float
    iqr: float
    count: Count


class RatioRow(_RatioRow, total=False):
    execution: str  # the execution lane (absent: eager)
    size_lo: int
    size_hi: int


class _SampleRow(TypedDict):
    relation: str
    device: str
    dtype: str
    size: int
    times: dict[str, dict[str, Seconds]]  # formulation -> phase -> seconds per call


class SampleRow(_SampleRow, total=False):
    mode: str
    execution: str  # the execution lane (absent: eager)
    pace_s: Seconds | None  # the pacer timed beside the example (linconv.timing.pace)


class RegressionRow(TypedDict):
    id: str
    relation: str
    device: str
    mode: str
    outcome: Outcome


class KnownBugRow(TypedDict):
    """A known upstream bug and whether its reproducer failed on this run's torch build and CPU."""

    name: str
    kind: str
    reproduced: bool


class RejectedRow(TypedDict):
    """Drawn cases a relation test rejected before checking them, for one reason: a known bug's inputs
    (avoided beforehand, or recognised by its error) or a dtype the device lacks."""

    relation: str
    device: str
    mode: str
    execution: str
    dtype: str
    reason: str
    cases: Count


class _Completeness(TypedDict):
    status: Literal["complete", "interrupted", "empty"]
    exit_status: int | None  # pytest's exit status; None: the run has not finished (or was killed)
    collected: Count  # tests collected (after deselection)
    ran: Count  # tests that reached an outcome (passed, failed, skipped, xfailed, xpassed)


class Completeness(_Completeness, total=False):
    reason: str  # why the status is not ``complete``, in words


class Shard(TypedDict, total=False):
    source: str
    digest: str  # sha256 of the shard's canonical JSON: the same run merged twice is refused
    completeness: Completeness
    created: str | None
    hypothesis_profile: str
    linconv_env: dict[str, str]
    xdist_workers: int
    machine_fingerprint: str
    wall_s: float | None
    devices: dict[str, str]
    devices_absent: dict[str, str]


class RunCosts(TypedDict, total=False):
    wall_s: float | None


class _Report(TypedDict):
    schema_version: int
    environment: Environment
    machine: Machine
    relations: dict[str, RelationEntry]
    timings: list[TimingRow]
    ratios: list[RatioRow]
    samples: list[SampleRow]


class Report(_Report, total=False):
    created: str
    completeness: Completeness  # whether the run finished (reports written before it lack it)
    run: RunCosts
    timing_errors: list[str]
    regressions: list[RegressionRow]  # the replayed corpus (absent in reports written before it)
    known_bugs: list[KnownBugRow]  # whether each known bug reproduced here (absent before it)
    rejected: list[RejectedRow]  # drawn cases rejected before checking, by reason (absent before it)
    shards: list[Shard]  # the reports a merged report was made from


def tally_mode(row: dict[str, Any]) -> str:
    """The precision mode of a tally row: its ``mode``; for a row written before modes were kept
    apart, ``default`` on a device with that one mode, else :data:`ALL_MODES` (its counts pool them)."""
    if "mode" in row:
        return str(row["mode"])
    modes = DEVICE_MODES.get(str(row["device"]).split(":")[0], ())
    return "default" if modes == ("default",) else ALL_MODES


def tally_execution(row: dict[str, Any]) -> str:
    """The execution lane of a tally, sample, timing or ratio row: its ``execution``; ``eager`` for a
    row written before linconv had execution lanes (every run was eager then)."""
    return str(row.get("execution", "eager"))


# --- the validator --------------------------------------------------------------------------

_NAMES = {str: "str", int: "int", float: "number", bool: "bool", list: "list", dict: "object"}


def _short(value: Any) -> str:
    """``repr(value)``, cut short: a hostile file's value may be megabytes long (or nested deeply)."""
    try:
        text = repr(value)
    except RecursionError:
        return f"a deeply nested {type(value).__name__}"
    return text if len(text) <= 80 else text[:77] + "..."


def _is_number(value: Any) -> bool:
    """A finite int or float: NaN would switch comparisons off, infinity break every sum."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check(value: Any, kind: Any, field: str, path: str) -> None:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Annotated:
        base, meaning = args[0], args[1]
        if meaning == RATIO and isinstance(value, str) and value in ("inf", "nan"):
            return
        if meaning == RATIO and _is_number(value) and value < 0:
            raise ReportError(path, field, f'must be a ratio >= 0 (or "inf" / "nan"), got {_short(value)}')
        if meaning == SECONDS and not (_is_number(value) and value > 0):
            raise ReportError(path, field, f"must be a positive number of seconds, got {_short(value)}")
        if meaning == SPREAD and _is_number(value) and value < 0:
            raise ReportError(path, field, f"must be a number >= 0, got {_short(value)}")
        if meaning == COUNT and isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise ReportError(path, field, f"must be a count >= 0, got {_short(value)}")
        _check(value, base, field, path)
        return
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return
        (kind,) = [a for a in args if a is not type(None)]
        _check(value, kind, field, path)
        return
    if origin is Literal:
        if value not in args:
            raise ReportError(path, field, f"must be one of {', '.join(map(str, args))}, got {_short(value)}")
        return
    if origin is list:
        if not isinstance(value, list):
            raise ReportError(path, field, f"must be list, got {_short(value)}")
        for i, item in enumerate(value):
            _check(item, args[0], f"{field}[{i}]", path)
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise ReportError(path, field or "(top level)", f"must be an object, got {_short(value)}")
        for key, item in value.items():
            _check(item, args[1], f"{field}.{key}" if field else str(key), path)
        return
    if typing.is_typeddict(kind):
        if not isinstance(value, dict):
            raise ReportError(path, field or "(top level)", f"must be an object, got {type(value).__name__}")
        for key, hint in typing.get_type_hints(kind, include_extras=True).items():  # in definition order
            name = f"{field}.{key}" if field else key
            if key in value:
                _check(value[key], hint, name, path)
            elif key in kind.__required_keys__:
                raise ReportError(path, name, "is missing")
        return
    if kind is Any:
        return
    if kind is float:
        ok = _is_number(value)
        if not ok and isinstance(value, float):
            raise ReportError(path, field, f"must be a finite number, got {_short(value)}")
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ReportError(path, field, f"must be {_NAMES.get(kind, kind.__name__)}, got {_short(value)}")


def validate(data: Any, path: str | os.PathLike[str] = "<report>") -> Report:
    """``data`` if it is a run report of this schema, else a ReportError naming the first bad field."""
    path = str(path)
    if not isinstance(data, dict):
        raise ReportError(path, "(top level)", f"must be an object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version is not None and isinstance(version, int) and not isinstance(version, bool):
        if version != SCHEMA_VERSION:
            raise ReportError(path, "schema_version", f"is {version}; this linconv reads version {SCHEMA_VERSION}")
    _check(data, Report, "", path)
    return data  # type: ignore[return-value]


# --- pytest-benchmark JSON (``--benchmark-json``), as far as the gate reads it ----------------


class BenchmarkStats(TypedDict):
    median: Seconds
    iqr: Spread
    rounds: Count


class BenchmarkEntry(TypedDict):
    fullname: str
    stats: BenchmarkStats


class BenchmarkFile(TypedDict):
    machine_info: dict[str, Any]
    benchmarks: list[BenchmarkEntry]


def validate_benchmarks(data: Any, path: str | os.PathLike[str] = "<benchmarks>") -> BenchmarkFile:
    """``data`` if it is a pytest-benchmark JSON with what the gate compares, else a ReportError."""
    _check(data, BenchmarkFile, "", str(path))
    return data  # type: ignore[return-value]
