"""Replay: run one stored regression case on one device and say what it gave against what its
entry expects. Shared by the pytest replay (properties/test_regressions.py) and
``python -m linconv regressions check``.

Outcomes: ``pass`` (held, as expected), ``fail`` (did not hold and was not expected to fail here),
``xfail`` (did not hold, a known upstream bug on this torch), ``xpass`` (held although marked
xfail for this torch: the bug may be fixed), ``skip`` (the device cannot run the case).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from linconv.corpus.store import Regression
from linconv.known_bugs import known_crash
from linconv.lanes.devices import device_unavailable_reason, supports_dtype
from linconv.measure import RelationResult
from linconv.relations import get

__all__ = ["Outcome", "replay", "xfail_reason"]


@dataclass(frozen=True)
class Outcome:
    status: str  # pass | fail | xfail | xpass | skip
    message: str = ""
    result: RelationResult | None = None

    @property
    def failed(self) -> bool:
        return self.status == "fail"


def xfail_reason(regression: Regression) -> str:
    """Why a case is expected to fail here, and what to do once it passes."""
    note = (regression.note or "known upstream bug").splitlines()[0]
    if regression.known_bug is not None:
        return (
            f"{note} (known bug {regression.known_bug}, which reproduces on this torch build and CPU). If this case "
            f"passes while the bug still reproduces, the case no longer shows it: check the case and the signature"
        )
    return (
        f"{note} (expected to fail on torch {regression.xfail_torch}; torch {torch.__version__} is in that range). "
        f"If it passes, torch fixed it: narrow the range with 'python -m linconv regressions add "
        f"regressions/{regression.id}.json --xfail-torch RANGE' or --expect-pass"
    )


def _skip_reason(regression: Regression, device: str) -> str | None:
    reason = device_unavailable_reason(device)
    if reason:
        return reason
    if not supports_dtype(device, regression.case.torch_dtype):
        return f"{device} cannot run {regression.case.dtype} (case {regression.id})"
    crash = known_crash(regression.case.on(device), relation=regression.relation)
    if crash is not None:  # it would abort the whole process; tracked by properties/test_known_bugs.py
        return f"case {regression.id} would trigger known upstream crash {crash.name} in this process ({crash.link})"
    return None


def replay(regression: Regression, device: str) -> Outcome:
    """Run ``regression`` on ``device`` under the flags in force and judge it by its expectation."""
    reason = _skip_reason(regression, device)
    if reason:
        return Outcome("skip", reason)
    case = regression.case.on(device)
    relation = get(regression.relation)
    result = None
    try:
        result = relation.run(case)
    except Exception as exc:  # a crash is a failed check too: report it with the case
        held = False
        message = f"{type(exc).__name__}: {exc}\ncase: {case.to_json()}\nreproduce:\n    " + "\n    ".join(
            case.reproduction(regression.relation).splitlines()
        )
    else:
        held = relation.holds(result)
        if held:
            message = ""
        elif relation.negative_control is not None:
            message = relation.control_silent_message(result)
        else:
            message = result.message()

    header = f"regression {regression.id} ({regression.relation}) on {device}"
    if regression.expected_to_fail():
        if held:
            return Outcome("xpass", f"{header} passes on torch {torch.__version__}: {xfail_reason(regression)}", result)
        return Outcome("xfail", f"{header}: {xfail_reason(regression)}\n{message}", result)
    if held:
        return Outcome("pass", "", result)
    if regression.expect == "xfail" and regression.known_bug is not None:
        message += (
            f"\n\nThis case is tied to known bug {regression.known_bug}, whose reproducer does not fail on torch "
            f"{torch.__version__} here: either the bug is fixed and this case shows another one, or the reproducer "
            "misses this variant (linconv/known_bugs/catalogue.py)"
        )
    elif regression.expect == "xfail":
        message += (
            f"\n\nThis case is marked xfail for torch {regression.xfail_torch}, but it fails on torch "
            f"{torch.__version__}, outside that range. If it is the same upstream bug, widen the range: "
            f"python -m linconv regressions add regressions/{regression.id}.json --xfail-torch RANGE"
        )
    if regression.note:
        message = f"{header} failed. Note: {regression.note}\n{message}"
    else:
        message = f"{header} failed.\n{message}"
    return Outcome("fail", message, result)
