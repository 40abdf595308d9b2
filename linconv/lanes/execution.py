"""Execution lanes: how a formulation runs — eagerly, or compiled by ``torch.compile`` (inductor) in
one of the configurations teams ship.

A lane is one :class:`ExecutionLane` record, registered once here (:func:`register_lane`); every
consumer (the pytest parameter, the session, calibration, the fault search, the report, the gate)
reads the registry. A lane changes how formulations run, never what they must equal: the float64
reference always runs eagerly (linconv.relations.execution applies a lane to a relation).

What each compiled lane changes, and what it does to the arithmetic, is docs/compile.md. In short,
inductor may reorder and fuse sums, keep fused intermediates in float32 where eager rounds them
to float16/bfloat16 (``emulate_precision_casts`` is off by default), decompose ops into its own
loops (``unfold``, padding, small matmuls), lower a 1x1 conv to a matmul, and, when freezing,
fold the parameters into constants and hand oneDNN prepacked weights.

The compile cache is bounded and never hides a fallback: each compiled lane sets dynamo's
``recompile_limit`` (the per-code cache size) to :data:`RECOMPILE_LIMIT` with
``fail_on_recompile_limit_hit``, so a function that would silently run eagerly once its cache is
full raises instead; :func:`compile_formulation` then clears the cache (:func:`reset_compiler`,
counted) and compiles again. Entering and leaving a lane clears the cache too, so one lane's
compiled code never serves another. Inductor and dynamo settings are read, set and restored by
one context manager, :func:`execution_lane`, which yields the configuration in force.

Imports :mod:`linconv.core` only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from linconv.core.cases import PARAM_NAMES, Params

__all__ = [
    "COMPILE_EXAMPLES",
    "EAGER",
    "active_lane",
    "RECOMPILE_LIMIT",
    "CompileStats",
    "ExecutionLane",
    "compile_formulation",
    "compile_stats",
    "describe_config",
    "execution_lane",
    "get_lane",
    "lane_names",
    "lanes",
    "parse_executions",
    "read_config",
    "register_lane",
    "reset_compiler",
]

EAGER = "eager"

# Most examples a relation property (or a fault search) runs in one compiled execution lane: each
# example compiles its formulations (a new geometry, dtype or layout is a new graph), which costs
# seconds where the check costs milliseconds (docs/compile.md, "Cost"). pytest --compile-examples
# (LINCONV_COMPILE_EXAMPLES) overrides it for a run.
COMPILE_EXAMPLES = 10

# Compiled graphs dynamo keeps per code object before it must recompile from scratch. Every
# formulation compiles through one module class (_AsModule), so they share one code object, and
# every example draws a new geometry (stride, padding, kernel, groups are constants of the graph),
# dtype and layout: a relation with 3 formulations adds up to 6 entries per example (the checked
# graph with autograd, the inference graph its timing runs). torch's default of 8 is reached
# within two examples; 64 keeps guard checks short (they are scanned in order) and the compiled
# kernels in memory bounded. When it is reached the cache is cleared and counted
# (CompileStats.resets), never silently bypassed.
RECOMPILE_LIMIT = 64

# Inductor and dynamo settings that decide what compiled code computes, recorded with every
# compiled result (the report, failure messages) beside each lane's own overrides.
_RECORDED_INDUCTOR = (
    "freezing",
    "max_autotune",
    "max_autotune_gemm",
    "max_autotune_gemm_backends",
    "coordinate_descent_tuning",
    "conv_1x1_as_mm",
    "emulate_precision_casts",
    "fallback_random",
    "split_reductions",
    "epilogue_fusion",
    "layout_optimization",
    "keep_output_stride",
    "cpp.simdlen",
    "fx_graph_cache",
)
_RECORDED_DYNAMO = ("recompile_limit", "fail_on_recompile_limit_hit", "automatic_dynamic_shapes",
                    "assume_static_by_default", "suppress_errors")  # fmt: skip


@dataclass(frozen=True)
class ExecutionLane:
    """One way to run formulations.

    ``compile_options``: keyword arguments of ``torch.compile`` (``dynamic``, ``mode``); ``inductor``:
    ``torch._inductor.config`` overrides (keys as ``config.patch`` takes them); ``freeze``: the
    parameters are module attributes the compiler may fold into constants, so the lane runs
    inference only (forward, under ``torch.no_grad()``); ``devices``: the device kinds it applies
    to (empty: all); ``changes``: what it changes, in words (docs/compile.md, failure messages)."""

    name: str
    changes: str
    compiled: bool = True
    compile_options: Mapping[str, Any] = field(default_factory=dict)
    inductor: Mapping[str, Any] = field(default_factory=dict)
    freeze: bool = False
    devices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or not all(part.isalnum() for part in self.name.split("-")):
            raise ValueError(f"lane name must be words joined by '-', got {self.name!r}")

    @property
    def forward_only(self) -> bool:
        return self.freeze

    def unavailable_reason(self, device: str) -> str | None:
        """None when the lane can run on ``device`` with this torch, else why not."""
        kind = device.split(":")[0]
        if self.devices and kind not in self.devices:
            return f"execution lane {self.name!r} applies to {', '.join(self.devices)} only, not {kind}"
        if not self.compiled:
            return None
        if not hasattr(torch, "compile"):
            return f"torch {torch.__version__} has no torch.compile"
        missing = [key for key in self.inductor if not _has_config(key)]
        if missing:
            return f"torch {torch.__version__}'s inductor has no config {', '.join(missing)}"
        return None

    def describe(self) -> str:
        if not self.compiled:
            return self.name
        options = ", ".join(f"{k}={v!r}" for k, v in self.compile_options.items()) or "defaults"
        overrides = ", ".join(f"{k}={v!r}" for k, v in self.inductor.items()) or "none"
        return f"{self.name} (torch.compile({options}); inductor overrides: {overrides})"


_LANES: dict[str, ExecutionLane] = {}


def register_lane(lane: ExecutionLane) -> ExecutionLane:
    if lane.name in _LANES:
        raise ValueError(f"execution lane {lane.name!r} is registered twice")
    _LANES[lane.name] = lane
    return lane


def lanes() -> tuple[ExecutionLane, ...]:
    return tuple(_LANES.values())


def lane_names() -> tuple[str, ...]:
    return tuple(_LANES)


def get_lane(name: str) -> ExecutionLane:
    try:
        return _LANES[name]
    except KeyError:
        raise ValueError(f"execution lane must be one of {lane_names()}, got {name!r}") from None


def parse_executions(text: str) -> tuple[str, ...]:
    """A comma-separated list of execution lanes, ``all`` (every lane) or ``all-compiled`` (every
    compiled lane). ValueError names an unknown lane or an empty list."""
    text = text.strip()
    if text == "all":
        return lane_names()
    if text == "all-compiled":
        return tuple(lane.name for lane in lanes() if lane.compiled)
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise ValueError(f"must name at least one execution lane {lane_names()}, 'all' or 'all-compiled', got {text!r}")
    for name in names:
        get_lane(name)
    return names


# --- the lanes ----------------------------------------------------------------------------------
# One entry each. Ordered simplest first (the eager lane is the suite's default).

register_lane(ExecutionLane(EAGER, "nothing: each formulation runs op by op (ATen kernels)", compiled=False))
register_lane(
    ExecutionLane(
        "compiled",
        "torch.compile with its defaults: dynamo traces the formulation, AOTAutograd makes the forward and "
        "backward graphs, inductor fuses pointwise work and reductions into generated C++ (CPU) or Triton "
        "(CUDA) and calls ATen/oneDNN/cuBLAS for convs and matmuls; a second shape recompiles with dynamic sizes",
    )
)
register_lane(
    ExecutionLane(
        "compiled-dynamic",
        "torch.compile(dynamic=True): sizes are symbolic from the first compile, so one graph serves every "
        "batch, channel count and spatial size (kernels with symbolic loop bounds)",
        compile_options={"dynamic": True},
    )
)
register_lane(
    ExecutionLane(
        "compiled-freezing",
        "inductor freezing (inference): parameters are folded into constants, weights prepacked for oneDNN "
        "and constant subgraphs (the Linear's block-diagonal weight, permutes) precomputed; forward only",
        inductor={"freezing": True},
        freeze=True,
        devices=("cpu",),
    )
)
register_lane(
    ExecutionLane(
        "compiled-autotune",
        "torch.compile(mode='max-autotune-no-cudagraphs'): inductor benchmarks GEMM/conv choices (ATen, its "
        "C++ GEMM templates on the CPU, Triton templates on CUDA) and takes the fastest; coordinate-descent tuning",
        compile_options={"mode": "max-autotune-no-cudagraphs"},
    )
)
register_lane(
    ExecutionLane(
        "compiled-conv1x1-mm",
        "inductor's conv_1x1_as_mm: a 1x1 conv with stride 1, no padding and one group becomes a matmul "
        "(permute, mm/addmm, permute back); other convs are unchanged",
        inductor={"conv_1x1_as_mm": True},
    )
)


# --- configuration: read, set, restore ---------------------------------------------------------


def _has_config(key: str) -> bool:
    import torch._inductor.config as inductor_config

    return key in inductor_config.get_config_copy()


def read_config(name: str) -> dict[str, Any]:
    """The configuration of lane ``name`` in force now: its torch.compile options, the inductor
    settings that decide what compiled code computes (and the lane's overrides), dynamo's cache settings."""
    lane = get_lane(name)
    import torch._dynamo.config as dynamo_config
    import torch._inductor.config as inductor_config

    current = inductor_config.get_config_copy()
    keys = dict.fromkeys([*_RECORDED_INDUCTOR, *lane.inductor])
    return {
        "lane": lane.name,
        "torch_compile": {key: value for key, value in lane.compile_options.items()},
        "inductor": {key: current[key] for key in keys if key in current},
        "dynamo": {key: getattr(dynamo_config, key) for key in _RECORDED_DYNAMO if hasattr(dynamo_config, key)},
    }


@contextmanager
def execution_lane(name: str) -> Iterator[dict[str, Any]]:
    """Run the block in execution lane ``name`` and yield the configuration in force there
    (``{}`` for the eager lane).

    For a compiled lane: the compile cache is cleared on entry and on exit (one lane's compiled
    code never serves another), the lane's inductor overrides and linconv's dynamo settings
    (:data:`RECOMPILE_LIMIT`, ``fail_on_recompile_limit_hit``, ``suppress_errors=False``) are set,
    and every previous value comes back on exit, also when the block raises. ValueError names an
    unknown lane; RuntimeError says why a lane cannot run with this torch."""
    lane = get_lane(name)
    if not lane.compiled:
        _ACTIVE.append(lane.name)
        try:
            yield {}
        finally:
            _ACTIVE.pop()
        return
    why = lane.unavailable_reason("cpu" if not lane.devices else lane.devices[0])
    if why:
        raise RuntimeError(why)
    import torch._dynamo.config as dynamo_config
    import torch._inductor.config as inductor_config

    dynamo = {"recompile_limit": RECOMPILE_LIMIT, "fail_on_recompile_limit_hit": True, "suppress_errors": False}
    dynamo = {key: value for key, value in dynamo.items() if hasattr(dynamo_config, key)}
    reset_compiler(count=False)
    with ExitStack() as stack:
        stack.callback(reset_compiler, count=False)
        stack.enter_context(dynamo_config.patch(dynamo))
        stack.enter_context(inductor_config.patch(dict(lane.inductor)))
        _ACTIVE.append(lane.name)
        stack.callback(_ACTIVE.pop)
        yield read_config(lane.name)


_ACTIVE: list[str] = []  # the lanes entered, innermost last


def active_lane() -> str:
    """The execution lane of the innermost :func:`execution_lane` block (eager outside any)."""
    return _ACTIVE[-1] if _ACTIVE else EAGER


def describe_config(config: Mapping[str, Any]) -> str:
    """One line for failure messages: the lane, torch.compile's options, inductor and dynamo settings."""
    if not config:
        return "eager"
    parts = [f"{config['lane']}: torch.compile({', '.join(f'{k}={v!r}' for k, v in config['torch_compile'].items())})"]
    parts.append("inductor " + " ".join(f"{k}={v!r}" for k, v in config["inductor"].items()))
    parts.append("dynamo " + " ".join(f"{k}={v!r}" for k, v in config["dynamo"].items()))
    return "; ".join(parts)


# --- what compiling cost ------------------------------------------------------------------------


@dataclass
class CompileStats:
    """Compilation seen while one example ran: seconds spent compiling (dynamo, AOTAutograd,
    inductor; forward and backward graphs), graphs dynamo compiled (a recompile is one more),
    graph breaks, and cache resets forced by :data:`RECOMPILE_LIMIT`."""

    seconds: float = 0.0
    graphs: int = 0
    graph_breaks: int = 0
    resets: int = 0

    def __sub__(self, other: CompileStats) -> CompileStats:
        return CompileStats(self.seconds - other.seconds, self.graphs - other.graphs,
                            self.graph_breaks - other.graph_breaks, self.resets - other.resets)  # fmt: skip

    def to_dict(self) -> dict[str, float | int]:
        return {"seconds": self.seconds, "graphs": self.graphs, "graph_breaks": self.graph_breaks,
                "resets": self.resets}  # fmt: skip


# totals dynamo forgot when the cache was cleared (torch._dynamo.reset clears its metrics too)
_BEFORE_RESETS = CompileStats()

# dynamo's timing records of the outermost compile calls: the forward (tracing, AOTAutograd, inductor)
# and the lazily compiled backward. Names of torch 2.13 (torch/_dynamo/utils.py, dynamo_timed).
_COMPILE_TIMERS = ("_compile.compile_inner",)
_BACKWARD_TIMER_SUFFIX = "bw_compiler"


def _live_stats() -> CompileStats:
    from torch._dynamo.utils import compilation_time_metrics, counters

    seconds = sum(sum(compilation_time_metrics.get(name, ())) for name in _COMPILE_TIMERS)
    seconds += sum(sum(v) for k, v in compilation_time_metrics.items() if k.endswith(_BACKWARD_TIMER_SUFFIX))
    return CompileStats(seconds, counters["stats"]["unique_graphs"], sum(counters["graph_break"].values()))


def compile_stats() -> CompileStats:
    """Totals since the process started (monotonic across :func:`reset_compiler`)."""
    live = _live_stats()
    return CompileStats(_BEFORE_RESETS.seconds + live.seconds, _BEFORE_RESETS.graphs + live.graphs,
                        _BEFORE_RESETS.graph_breaks + live.graph_breaks, _BEFORE_RESETS.resets)  # fmt: skip


def reset_compiler(*, count: bool = True) -> None:
    """``torch._dynamo.reset()``, keeping the totals :func:`compile_stats` reports; ``count``: a
    reset forced by the recompile limit (entering and leaving a lane are not counted)."""
    from torch._dynamo.utils import counters

    global _BEFORE_RESETS
    live = _live_stats()
    _BEFORE_RESETS = CompileStats(_BEFORE_RESETS.seconds + live.seconds, _BEFORE_RESETS.graphs + live.graphs,
                                  _BEFORE_RESETS.graph_breaks + live.graph_breaks,
                                  _BEFORE_RESETS.resets + int(count))  # fmt: skip
    torch._dynamo.reset()
    counters["stats"].clear()
    counters["graph_break"].clear()


# --- compiling one formulation ------------------------------------------------------------------


def _retrying(compiled: Callable[..., Any]) -> Callable[..., Any]:
    """``compiled``, but when dynamo's cache for it is full: clear the cache, count it, compile again."""
    from torch._dynamo.exc import FailOnRecompileLimitHit

    def call(*args: Any) -> Any:
        try:
            return compiled(*args)
        except FailOnRecompileLimitHit:
            reset_compiler()
            return compiled(*args)

    return call


class _AsModule(torch.nn.Module):
    """A formulation ``fn(x, params, *rest)`` as a model holds it: tensors (and, except when
    freezing, the parameters) are the graph's inputs; every other argument (the geometry, the case)
    is an attribute, so its ints are constants of the graph, as a conv's stride and groups are
    attributes of ``nn.Conv2d`` (passed as arguments, dynamo would make them symbolic once they
    change: lowering paths no model takes). When freezing, the parameters are attributes too:
    what freezing folds into constants (graph inputs are never frozen)."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], freeze: bool) -> None:
        super().__init__()
        self.fn = fn
        self.roles = tuple(_role(a, i, freeze) for i, a in enumerate(args))
        self.constants = {i: a for i, (a, role) in enumerate(zip(args, self.roles, strict=True)) if role == "constant"}
        self.names: tuple[str, ...] = ()
        if freeze:
            params = args[1]
            self.names = tuple(n for n in PARAM_NAMES if getattr(params, n) is not None)
            for name in self.names:
                setattr(self, name, torch.nn.Parameter(getattr(params, name).detach(), requires_grad=False))

    def forward(self, *inputs: Any) -> Any:
        given = iter(inputs)
        args = []
        for i, role in enumerate(self.roles):
            if role == "constant":
                args.append(self.constants[i])
            elif role == "frozen":
                args.append(Params(**{n: getattr(self, n) for n in self.names}))
            else:
                args.append(next(given))
        return self.fn(*args)


def _role(arg: Any, position: int, freeze: bool) -> str:
    if isinstance(arg, Params):
        return "frozen" if freeze and position == 1 else "input"
    return "input" if isinstance(arg, torch.Tensor) else "constant"


def _storage_key(t: Any) -> Any:
    if not isinstance(t, torch.Tensor):
        return None
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype, t.device,
            t._version)  # fmt: skip


def compile_formulation(fn: Callable[..., Any], lane: ExecutionLane, *, fullgraph: bool = True) -> Callable[..., Any]:
    """``fn(x, params, *rest)`` compiled as ``lane`` says (``fn`` itself in the eager lane).

    The module (:class:`_AsModule`) of the latest call is kept while its constants are the same
    objects (and, when freezing, its parameters the same storage, unchanged: a new example is a
    new model), with references to them, so their ids and storage cannot be reused meanwhile.
    Freezing runs under ``torch.no_grad()`` (inductor freezes only inference graphs).
    ``fullgraph=True`` makes a graph break an error, so nothing silently runs eagerly; a kind
    whose formulations break the graph on purpose (the loss head's ``retain_grad``) passes False,
    and its breaks are counted (:class:`CompileStats`). Call it inside :func:`execution_lane`."""
    if not lane.compiled:
        return fn
    cache: dict[str, Any] = {}

    def call(*args: Any) -> Any:
        constants = tuple(id(a) for a in args if not isinstance(a, (torch.Tensor, Params)))
        frozen = tuple(_storage_key(t) for t in args[1].as_dict().values()) if lane.freeze else ()
        key = (constants, frozen)
        if cache.get("key") != key:
            module = _AsModule(fn, args, lane.freeze)
            compiled = torch.compile(module, fullgraph=fullgraph, **lane.compile_options)
            cache.update(key=key, args=args, roles=module.roles, run=_retrying(compiled))
        inputs = [a for a, role in zip(args, cache["roles"], strict=True) if role == "input"]
        if not lane.freeze:
            return cache["run"](*inputs)
        with torch.no_grad():
            return cache["run"](*(t.detach() for t in inputs))

    return call
