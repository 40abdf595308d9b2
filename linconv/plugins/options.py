"""pytest wiring of the verification run: options, Hypothesis profiles, the device x precision-mode
(x execution lane x dtype, for relation properties) parameter, each test's example budget, an
injected fault, and the report header."""

from __future__ import annotations

import hashlib
import math
import os

import hypothesis.core as hypothesis_core
import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis.errors import Unsatisfiable

from linconv.core import config as run_config
from linconv.core.cases import DTYPES
from linconv.lanes.devices import SKIP_ABSENT_FLAG, device_unavailable_reason, parse_devices, supports_dtype
from linconv.lanes.execution import COMPILE_EXAMPLES, EAGER, execution_lane, lanes, parse_executions
from linconv.lanes.flags import read_flags
from linconv.lanes.modes import device_mode, modes_of, parse_modes
from linconv.lanes.time_limit import ENV as TIME_LIMIT_ENV
from linconv.lanes.time_limit import EXAMPLE_TIME_LIMIT, current_limit, limit_unavailable, set_example_time_limit
from linconv.plugins.session import SESSION
from linconv.relations import get as get_relation
from linconv.relations import lane_unavailable
from linconv.search.placement import placements
from linconv.search.profiles import load_profile, register_profiles

# Registered on import, so that --hypothesis-profile can name them; which one is loaded is decided
# in pytest_configure, where a bad name is a usage error and not an ImportError of conftest.py.
register_profiles()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("linconv")
    group.addoption(
        "--devices",
        default=os.environ.get("LINCONV_DEVICES", "all"),
        help="comma-separated devices to check (cpu, cuda, cuda:N, mps) or 'all' "
        "(cpu, plus cuda and mps, which skip with a reason when absent). A device named here must be present "
        f"(else a usage error; {SKIP_ABSENT_FLAG} skips it instead). Env: LINCONV_DEVICES. Default: all",
    )
    group.addoption(
        SKIP_ABSENT_FLAG,
        action="store_true",
        default=os.environ.get("LINCONV_SKIP_ABSENT_DEVICES", "") not in ("", "0"),
        help="skip a device named in --devices that is absent here, with the reason, instead of refusing to run "
        "(the run report then says the run checked nothing on it). Env: LINCONV_SKIP_ABSENT_DEVICES=1",
    )
    group.addoption(
        "--modes",
        default=os.environ.get("LINCONV_MODES", "all"),
        help="comma-separated precision modes to check (linconv.lanes.modes: default, as-shipped, strict, "
        "strict-no-cudnn, strict-cudnn-benchmark) or 'all'; a device is checked in the modes it has among them. "
        "Env: LINCONV_MODES. Default: all",
    )
    group.addoption(
        "--execution",
        default=os.environ.get("LINCONV_EXECUTION", EAGER),
        help="comma-separated execution lanes the relation properties run in (linconv.lanes.execution: "
        + ", ".join(lane.name for lane in lanes())
        + "), 'all' or 'all-compiled'; tests that are not relation properties (the corpus replay, round "
        "trips) run only when eager is among them. Env: LINCONV_EXECUTION. Default: eager",
    )
    group.addoption(
        "--compile-examples",
        default=os.environ.get("LINCONV_COMPILE_EXAMPLES"),
        metavar="N",
        help="most examples per relation property in each compiled execution lane (the profile's count "
        "when smaller), split over the property's dtype tests like the profile's budget, two per dtype "
        f"at least (the simplest case and one drawn). Env: LINCONV_COMPILE_EXAMPLES. Default: {COMPILE_EXAMPLES}",
    )
    group.addoption(
        "--compile-time-limit",
        default=os.environ.get(TIME_LIMIT_ENV),
        metavar="SECONDS",
        help="most seconds one example may take in a compiled execution lane (its compiles and runs): past "
        "it the example fails with its case instead of hanging the run on a compile that does not end "
        "(linconv.lanes.time_limit; main thread with SIGALRM only, 0: no limit). Env: "
        f"{TIME_LIMIT_ENV}. Default: {EXAMPLE_TIME_LIMIT:g}",
    )
    group.addoption(
        "--dtypes",
        default=None,
        help="comma-separated dtypes the strategies draw from (float32,float64,bfloat16,float16). "
        "Env: LINCONV_DTYPES. Default: all four",
    )
    group.addoption(
        "--max-numel",
        default=None,
        help=f"size budget: most elements of any tensor one example builds. Env: LINCONV_MAX_NUMEL. "
        f"Default: {run_config.DEFAULT_MAX_NUMEL}",
    )
    group.addoption(
        "--inject-fault",
        default=None,
        metavar="NAME",
        help="break one formulation of one relation for the whole run (python -m linconv faults --list "
        "names the faults; docs/faults.md): the properties must then fail",
    )
    group.addoption(
        "--inject-slowdown",
        default=os.environ.get("LINCONV_SLOWDOWN"),
        metavar="OP=FACTOR",
        help="make an op FACTOR times slower for the whole run, its results unchanged (conv, linear; e.g. "
        "conv=1.1,linear=2): the instrument behind the gate's power table (docs/gating.md). "
        "Env: LINCONV_SLOWDOWN",
    )


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Before Hypothesis's plugin loads --hypothesis-profile: an unknown name would be its INTERNALERROR.
    try:
        load_profile(config.getoption("hypothesis_profile", None))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    workers = int(getattr(config, "workerinput", {}).get("workercount", 0))
    if workers:
        # pytest-xdist: workers x threads must not exceed the cores, or OpenMP threads spin-wait
        # on descheduled peers (measured on 2 cores: 2 workers x 2 threads ran the ci profile in
        # 2 min 12 s, one process in 32 s; docs/parallel.md)
        torch.set_num_threads(min(torch.get_num_threads(), max(1, _cores() // workers)))
    try:
        if config.getoption("--dtypes") is not None:
            run_config.set_selected_dtypes(config.getoption("--dtypes"))
        if config.getoption("--max-numel") is not None:
            run_config.set_max_numel(config.getoption("--max-numel"))
        run_config.selected_dtypes()
        run_config.max_numel()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        config._linconv_devices = parse_devices(  # type: ignore[attr-defined]
            config.getoption("--devices"), skip_absent=config.getoption(SKIP_ABSENT_FLAG)
        )
    except ValueError as exc:
        raise pytest.UsageError(f"--devices: {exc}") from None
    try:
        config._linconv_modes = parse_modes(config.getoption("--modes"))  # type: ignore[attr-defined]
    except ValueError as exc:
        raise pytest.UsageError(f"--modes: {exc}") from None
    try:
        config._linconv_executions = parse_executions(config.getoption("--execution"))  # type: ignore[attr-defined]
    except ValueError as exc:
        raise pytest.UsageError(f"--execution / LINCONV_EXECUTION: {exc}") from None
    budget = config.getoption("--compile-examples") or str(COMPILE_EXAMPLES)
    if not budget.strip().isdigit() or int(budget) < 1:
        raise pytest.UsageError(f"--compile-examples / LINCONV_COMPILE_EXAMPLES must be an int >= 1, got {budget!r}")
    config._linconv_compile_examples = int(budget)  # type: ignore[attr-defined]
    limit = config.getoption("--compile-time-limit")
    try:
        set_example_time_limit(EXAMPLE_TIME_LIMIT if limit is None else float(limit))
    except ValueError:
        raise pytest.UsageError(
            f"--compile-time-limit / {TIME_LIMIT_ENV} must be seconds >= 0 (0: no limit), got {limit!r}"
        ) from None
    if config.getoption("--inject-fault"):
        from linconv.faults import get_fault

        try:
            fault = get_fault(config.getoption("--inject-fault"))
        except ValueError as exc:
            raise pytest.UsageError(f"--inject-fault: {exc}") from None
        SESSION.overrides[fault.relation] = fault.faulted_relation()
    if config.getoption("--inject-slowdown"):
        from linconv.faults import slowdown

        try:
            spec = slowdown.parse(config.getoption("--inject-slowdown"))
        except ValueError as exc:
            raise pytest.UsageError(f"--inject-slowdown / LINCONV_SLOWDOWN: {exc}") from None
        config._linconv_restore_speed = slowdown.install(spec)  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    SESSION.overrides.clear()
    restore = getattr(config, "_linconv_restore_speed", None)
    if restore is not None:
        restore()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Device x precision mode as one parameter pair: each its own test id and database key. A
    relation property also gets the execution lane (eager adds nothing to the id, a compiled lane
    its name) and the dtype it draws (:func:`property_dtypes`); a lane that cannot run the relation
    there is skipped with why, as is a relation none of whose dtypes the run selects."""
    if "device" not in metafunc.fixturenames:
        return
    relation = getattr(metafunc.function, "linconv_relation", None)
    config = metafunc.config
    executions = config._linconv_executions if relation else (EAGER,)  # type: ignore[attr-defined]
    selected = property_dtypes(relation) if relation else ()
    dtypes: tuple[str | None, ...] = selected or (None,)
    no_dtype = (
        relation
        and not selected
        and (
            f"relation {relation!r} draws {','.join(get_relation(relation).dtypes)} only, and the run selects "
            f"{','.join(run_config.selected_dtypes())} (--dtypes / LINCONV_DTYPES)"
        )
    )
    params = []
    for device in config._linconv_devices:  # type: ignore[attr-defined]
        reason = device_unavailable_reason(device)
        for mode in (m for m in modes_of(device) if m in config._linconv_modes):  # type: ignore[attr-defined]
            for execution in executions:
                why = reason or (relation and lane_unavailable(get_relation(relation), execution, device)) or no_dtype
                marks = [pytest.mark.skip(reason=why)] if why else []
                if not relation:
                    params.append(pytest.param(device, mode, id=f"{device}-{mode}", marks=marks))
                    continue
                suffix = "" if execution == EAGER else f"-{execution}"
                for dtype in dtypes if not why else (None,):  # a skipped test is skipped once
                    name = f"{device}-{mode}{suffix}" + (f"-{dtype}" if dtype else "")
                    held = why or not dtype or supports_dtype(device, DTYPES[dtype])
                    skip = marks if held else [pytest.mark.skip(reason=f"{device} has no {dtype}")]
                    params.append(pytest.param(device, mode, execution, dtype, id=name, marks=skip))
    if relation:
        metafunc.parametrize(
            ("device", "precision_mode", "execution", "drawn_dtype"),
            params,
            indirect=["precision_mode", "execution", "drawn_dtype"],
        )
    else:
        metafunc.parametrize(("device", "precision_mode"), params, indirect=["precision_mode"])


# Hypothesis's first generated example is always the simplest one (every choice at its minimum), the
# same under every seed: a test of one example would check that case only, run after run (three
# "thorough" compiled seeds of one example per dtype test drew identical cases, 2026-12-06). Two
# at least: the simplest and one drawn.
MIN_EXAMPLES_PER_TEST = 2


def example_budget(max_examples: int, tests: int, compile_examples: int | None = None) -> int:
    """Examples of one of a property's ``tests`` dtype tests: ``max_examples`` (its share of the
    profile) split evenly, and in a compiled lane at most ``compile_examples`` split likewise;
    :data:`MIN_EXAMPLES_PER_TEST` at least, unless ``max_examples`` is smaller."""
    budget = math.ceil(max_examples / tests)
    if compile_examples is not None:
        budget = min(budget, math.ceil(compile_examples / tests))
    return max(min(MIN_EXAMPLES_PER_TEST, max_examples), budget)


def property_dtypes(relation: str) -> tuple[str, ...]:
    """The dtypes relation ``relation``'s property has a test for: those it draws that the run selects
    (a negative control: all of its own, float32/float64, whatever the run selects: a control checks
    the suite, not a dtype). One test per dtype gives each dtype its share of the examples by
    construction (left to Hypothesis, a four-way choice came out 4 to 57 times in 100 examples:
    docs/calibration.md)."""
    record = get_relation(relation)
    if record.negative_control is not None:
        return record.dtypes
    return tuple(d for d in run_config.selected_dtypes() if d in record.dtypes)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without the eager lane among --execution, only relation properties run (in their lanes)."""
    if EAGER in getattr(config, "_linconv_executions", (EAGER,)):
        return
    keep = [item for item in items if getattr(getattr(item, "function", None), "linconv_relation", None)]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(autouse=True)
def execution(request: pytest.FixtureRequest):
    """The test's execution lane (linconv.lanes.execution): entered for the test (inductor and dynamo
    settings set, the compile cache cleared on entry and exit; autouse: every test runs in a lane,
    eager by default)."""
    lane = getattr(request, "param", EAGER)
    with execution_lane(lane) as config:
        SESSION.enter_lane(lane, config)
        try:
            yield lane
        finally:
            SESSION.leave_lane()


@pytest.fixture(autouse=True)
def drawn_dtype(request: pytest.FixtureRequest):
    """The one dtype a relation property's test draws (linconv.core.config.drawing_dtype; None for
    other tests: every draw chooses)."""
    dtype = getattr(request, "param", None)
    with run_config.drawing_dtype(dtype):
        yield dtype


@pytest.fixture(autouse=True)
def property_search(request: pytest.FixtureRequest, execution: str, drawn_dtype: str | None):
    """How Hypothesis searches in one relation property test (None for other tests):

    - its example budget: the property's (its share of the profile) split evenly over its dtype
      tests, and in a compiled lane --compile-examples split likewise; :data:`MIN_EXAMPLES_PER_TEST`
      at least (the profile's own count where smaller);
    - its own search: the tests of a property share one function, so Hypothesis would give them one
      database key and, derandomized (the ci profile) or under --hypothesis-seed, one random
      sequence: the dtype tests would draw the same geometries, layouts and values, differing in
      dtype only. Each test's node id joins its digest (database key, derandomized seed) and, under
      --hypothesis-seed S, its seed is derived from S and the node id (reproducible from both; not
      in a derandomized profile, where Hypothesis ignores the seed for every test);
    - filtering is allowed (HealthCheck.filter_too_much off): a dtype test may see most of its
      draws rejected (known bugs of that dtype); one whose every draw was rejected is skipped with
      the reasons (:func:`pytest_runtest_call`)."""
    test = getattr(request.node, "obj", None)
    relation = getattr(test, "linconv_relation", None)
    # Hypothesis reads these attributes of a @given test at each call (hypothesis.core: the settings,
    # the @seed, and the digest its pytest plugin sets for @pytest.mark.parametrize cases)
    original = getattr(test, "_hypothesis_internal_use_settings", None)
    if relation is None or original is None:
        yield None
        return
    inner = test.hypothesis.inner_test  # type: ignore[union-attr]
    saved = (getattr(inner, "_hypothesis_internal_add_digest", None), test._hypothesis_internal_use_seed)
    tests = max(1, len(property_dtypes(relation))) if drawn_dtype else 1
    compiled = request.config._linconv_compile_examples if execution != EAGER else None  # type: ignore[attr-defined]
    budget = example_budget(original.max_examples, tests, compiled)
    suppressed = (*original.suppress_health_check, HealthCheck.filter_too_much)
    test._hypothesis_internal_use_settings = settings(  # type: ignore[union-attr]
        original, max_examples=budget, suppress_health_check=suppressed
    )
    inner._hypothesis_internal_add_digest = request.node.nodeid.encode()
    forced = hypothesis_core.global_force_seed
    if forced is not None and saved[1] is None and not original.derandomize:  # derandomized: the digest decides
        digest = hashlib.sha256(f"{forced}:{request.node.nodeid}".encode()).digest()
        test._hypothesis_internal_use_seed = int.from_bytes(digest[:8], "big")  # type: ignore[union-attr]
    placements.reset()
    try:
        yield budget
    finally:
        test._hypothesis_internal_use_settings = original  # type: ignore[union-attr]
        test._hypothesis_internal_use_seed = saved[1]  # type: ignore[union-attr]
        if saved[0] is None:
            del inner._hypothesis_internal_add_digest
        else:
            inner._hypothesis_internal_add_digest = saved[0]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A relation property test whose every drawn case was rejected where it was placed (the device
    has no such dtype; a known bug covers every case of this dtype in this lane, as inductor
    freezing's float64 conv prepack does) checked no drawn case: it is skipped with the reasons and
    counts, never passed (its explicit examples, if any were checked, are said). Any other
    unsatisfiable test fails as Hypothesis reports it. Either way, a relation test's rejected cases
    go into the run report (``SESSION.rejected``, by reason)."""
    relation = getattr(getattr(item, "obj", None), "linconv_relation", None)
    try:
        return (yield)
    except Unsatisfiable:
        if relation is None or placements.placed or not placements.rejected:
            raise
        reasons = ", ".join(f"{why} ({n})" for why, n in placements.rejected.most_common())
        checked = (
            f"no drawn case checked (its {placements.explicit} explicit example(s) passed)"
            if placements.explicit
            else "nothing checked"
        )
        pytest.skip(f"relation {relation!r}: every case drawn in this test was rejected, {checked}: {reasons}")
    finally:
        if relation is not None:
            SESSION.record_rejections(relation, placements.where)
            placements.where.clear()  # counted once, whatever runs next before the next reset


@pytest.fixture(autouse=True)
def precision_mode(request: pytest.FixtureRequest):
    """The flags of the test's precision mode, set for the test and restored after it
    (autouse, so every test taking ``device`` gets it without naming it)."""
    mode = getattr(request, "param", "default")
    with device_mode(mode):
        SESSION.mode = mode  # the tallies of this test's examples are this mode's
        try:
            yield mode
        finally:
            SESSION.mode = "default"


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"linconv: torch {torch.__version__}, hypothesis profile {settings.get_current_profile_name()}"]
    cuda = torch.version.cuda or "none"
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else "none"
    lines.append(f"linconv: CUDA {cuda}, cuDNN {cudnn}, threads {torch.get_num_threads()}")
    for device in config._linconv_devices:  # type: ignore[attr-defined]
        reason = device_unavailable_reason(device)
        name = torch.cuda.get_device_name(device) if device.startswith("cuda") and not reason else device
        lines.append(f"linconv: device {device}: {reason or 'available (' + name + ')'}")
    lines.append(f"linconv: precision flags: {read_flags().describe()}")
    lines.append(f"linconv: dtypes {','.join(run_config.selected_dtypes())}; max numel {run_config.max_numel()}")
    executions = config._linconv_executions  # type: ignore[attr-defined]
    if executions != (EAGER,):
        budget = config._linconv_compile_examples  # type: ignore[attr-defined]
        lines.append(
            f"linconv: execution lanes {','.join(executions)}; at most {budget} examples per property in a "
            "compiled lane (two per dtype at least); "
            f"torch.compile {'present' if hasattr(torch, 'compile') else 'absent'}"
        )
        limit, why = current_limit(), limit_unavailable()
        lines.append(
            "linconv: time limit per compiled example: "
            + ("none" if not limit else f"{limit:g} s" + (f" (not enforced: {why})" if why else ""))
        )
    if config.getoption("--inject-fault"):
        lines.append(f"linconv: INJECTED FAULT {config.getoption('--inject-fault')}: the properties must fail")
    if config.getoption("--inject-slowdown"):
        lines.append(f"linconv: INJECTED SLOWDOWN {config.getoption('--inject-slowdown')}: timings are not torch's own")
    env = {k: v for k, v in sorted(os.environ.items()) if k.startswith("LINCONV_")}
    lines.append(f"linconv: environment {env or '(no LINCONV_* variables)'}")
    return lines
