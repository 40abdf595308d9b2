"""A relation in an execution lane: the same record with its formulations compiled as the lane
says (linconv.lanes.execution), checked against the same float64 reference and error model —
forward and backward, or forward only in an inference lane (freezing) — plus each compiled
formulation's forward output against the same formulation run eagerly.

The reference is never compiled: it runs in float64 on the CPU, eagerly, as in every lane. The
agreement check (``Comparison.against == "eager"``) bounds ``|compiled - eager|`` by the sum of
both error bounds (bit for bit in the exact lane). Where both sides are within their bounds of the
reference it holds by the triangle inequality, so it never fires alone; it is there to say which
side moved: a compiled formulation out of bound while its eager self is within bound is a
compiler bug, and the message says so with the eager side's own ratio. Where the eager formulation
is itself out of bound (an ATen bug, which the eager lane reports) no agreement is claimed.
Negative controls run compiled too (the control must still fire), without an agreement check: their
error bounds belong to the reference's map, not to the formulation's.

A kind says whether it can be compiled (``Kind.compile_unavailable``), whether its formulations
break the graph on purpose (``Kind.graph_breaks``; one formulation: ``FormulationSpec.graph_breaks``,
the converters, which construct parameters) and whether it can run without gradients
(``Kind.forward_only``); a new relation of an existing kind runs in every lane with no edits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from linconv.core.cases import Case
from linconv.lanes.execution import (
    active_lane,
    compile_formulation,
    compile_stats,
    describe_config,
    execution_lane,
    get_lane,
    read_config,
    reset_compiler,
)
from linconv.lanes.time_limit import ENV as TIME_LIMIT_ENV
from linconv.lanes.time_limit import ExampleTimeLimitExceeded, current_limit, example_time_limit
from linconv.measure import Comparison, Observer, RelationResult, compare
from linconv.relations.record import Kind, Relation

__all__ = ["AGREEMENT", "CompiledKind", "in_lane", "lane_unavailable", "run_in_lane"]

AGREEMENT = "output vs eager"  # the tensor name of the agreement check


def lane_unavailable(relation: Relation, execution: str, device: str) -> str | None:
    """None when ``relation`` can run in execution lane ``execution`` on ``device``, else why not."""
    lane = get_lane(execution)
    why = lane.unavailable_reason(device)
    if why or not lane.compiled:
        return why
    kind = relation.kind
    why = getattr(kind, "compile_unavailable", "")
    if why:
        return f"relation {relation.name!r} ({kind.name}) is not compiled: {why}"
    if lane.forward_only and not getattr(kind, "forward_only", False):
        return (
            f"execution lane {lane.name!r} runs inference only, and relation {relation.name!r} ({kind.name}) "
            "cannot be measured without its gradients"
        )
    return None


@dataclass(frozen=True)
class CompiledKind:
    """The relation's own kind, run with compiled formulations, then with the eager ones for the
    agreement check. ``eager`` is the relation as it runs eagerly (an injected fault included)."""

    inner: Kind
    lane: str
    eager: Relation
    config: str  # the configuration in force when the relation entered the lane, in one line

    @property
    def name(self) -> str:
        return f"{self.inner.name}, {self.lane}"

    @property
    def timed(self) -> bool:
        return self.inner.timed

    def run(self, relation: Relation, case: Case, *, observer: Observer | None, keep_outputs: bool) -> RelationResult:
        if active_lane() != self.lane:
            raise RuntimeError(
                f"relation {relation.name!r} compiled for execution lane {self.lane!r} ran outside it "
                f"(in {active_lane()!r}): run it inside linconv.lanes.execution.execution_lane({self.lane!r})"
            )
        try:
            with example_time_limit(lambda elapsed: self._too_long(relation, case, elapsed)):
                before = compile_stats()
                result = self.inner.run(relation, case, observer=observer, keep_outputs=True)
                spent = compile_stats() - before
                agreement: list[Comparison] = []
                notes: list[str] = []
                if relation.negative_control is None and result.outputs:
                    eager = self.inner.run(self.eager, case, observer=None, keep_outputs=True)
                    agreement, notes = _agreement(result, eager)
        except ExampleTimeLimitExceeded:
            reset_compiler(count=False)  # stopped mid-compile: nothing of it (or of the sizes it made symbolic) is kept
            raise
        return replace(
            result,
            comparisons=result.comparisons + tuple(agreement),
            outputs=result.outputs if keep_outputs else {},
            execution=self.lane,
            execution_config=self.config,
            compile=spent.to_dict(),
            notes=result.notes + tuple(notes),
        )

    def _too_long(self, relation: Relation, case: Case, elapsed: float) -> str:
        return (
            f"relation {relation.name!r} in execution lane {self.lane!r}: one example ran {elapsed:.0f} s, past "
            f"the limit of {current_limit():g} s per compiled example (--compile-time-limit, env "
            f"{TIME_LIMIT_ENV}): a compile that does not end, or not in a time a run can afford "
            f"(the traceback shows where it was). Case: {case.describe()}. Configuration: {self.config}\n"
            f"reproduce: {case.reproduction(relation.name, self.lane)}\n"
            "(alone, the case compiles with static sizes; a compile that needs the sizes the test's earlier "
            "examples made symbolic hangs only after them: pytest --hypothesis-verbosity verbose -s lists them)"
        )


def _agreement(compiled: RelationResult, eager: RelationResult) -> tuple[list[Comparison], list[str]]:
    """Each compiled forward output against the eager one, and, for each formulation whose compiled
    side is out of bound, a sentence on how its eager side fared."""
    comparisons, notes = [], []
    for name, (value, limit) in compiled.outputs.items():
        eager_side = [c for c in eager.comparisons if c.formulation == name and c.against == "reference"]
        compiled_side = [c for c in compiled.comparisons if c.formulation == name and c.against == "reference"]
        eager_ok = all(c.ok for c in eager_side)
        if not all(c.ok for c in compiled_side):
            worst = max((c.ratio for c in eager_side), default=0.0)
            verdict = "within bound: the compiler moved it" if eager_ok else "out of bound too: not the compiler alone"
            notes.append(f"eager {name}: worst error/bound {worst:.3g} against the reference ({verdict})")
        if name not in eager.outputs or not eager_ok:
            continue
        eager_value, eager_limit = eager.outputs[name]
        exact = all(c.exact for c in eager_side + compiled_side if c.tensor == "output")
        comparisons.append(
            compare(
                name,
                AGREEMENT,
                value,
                eager_value,
                exact=exact,
                limit=None if exact else limit + eager_limit,
                against="eager",
            )
        )
    return comparisons, notes


def in_lane(relation: Relation, execution: str) -> Relation:
    """``relation`` with every formulation compiled as lane ``execution`` says (``relation``
    itself in the eager lane); call it, and run the result, inside ``execution_lane(execution)``.
    An inference lane drops the compared gradients. ValueError when the lane cannot run it."""
    lane = get_lane(execution)
    if not lane.compiled:
        return relation
    if active_lane() != lane.name:
        raise RuntimeError(f"in_lane({relation.name!r}, {execution!r}) outside execution_lane({execution!r})")
    why = lane_unavailable(relation, execution, "cpu" if not lane.devices else lane.devices[0])
    if why:
        raise ValueError(why)
    eager = replace(relation, grads=()) if lane.forward_only else relation
    kind_breaks = getattr(relation.kind, "graph_breaks", False)
    formulations = {
        name: replace(spec, fn=compile_formulation(spec.fn, lane, fullgraph=not (kind_breaks or spec.graph_breaks)))
        for name, spec in eager.formulations.items()
    }
    kind = CompiledKind(relation.kind, lane.name, eager, describe_config(read_config(lane.name)))
    return replace(eager, formulations=formulations, kind=kind)


def run_in_lane(relation: Relation, case: Case, execution: str, *, check: bool = False) -> RelationResult:
    """Measure (``check``: and assert) ``case`` under ``relation`` in lane ``execution``, entering
    the lane for the call (the reproduction snippet of a compiled failure runs this)."""
    __tracebackhide__ = True
    with execution_lane(execution):
        compiled = in_lane(relation, execution)
        return compiled.check(case) if check else compiled.run(case)
