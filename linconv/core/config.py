"""Run-wide settings: the size budget and the selected dtypes, from options or LINCONV_* variables.

conftest.py fills these from ``--max-numel`` / ``--dtypes``; outside pytest the environment
variables apply. Strategies read them at draw time, so one run uses one budget throughout.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from linconv.core.cases import DTYPES

__all__ = [
    "DEFAULT_MAX_NUMEL",
    "drawing_dtype",
    "drawn_dtype",
    "LARGEST_MAX_NUMEL",
    "MIN_MAX_NUMEL",
    "max_numel",
    "parse_dtypes",
    "selected_dtypes",
    "set_max_numel",
    "set_selected_dtypes",
]

# Largest element count of any tensor one example builds (input, output, weight, unfold columns,
# dense matrix). 2**16 float64 values are 512 KiB: hundreds of examples a second on 2 cores and
# far from any memory limit, while still reaching reduction lengths in the thousands.
DEFAULT_MAX_NUMEL = 2**16
# Below this the geometry strategies could not fit their smallest shapes (a 5x5 kernel dilated
# by 2 on a 9x9 input has a 9x9 -> 1x1 dense matrix of 81 entries times padding/stride slack).
MIN_MAX_NUMEL = 2**12
# The largest budget a run may ask for, and the most elements any tensor of a stored regression
# case may have (linconv.corpus): 2**26 float64 values are 512 MiB a tensor, and one example
# builds about ten tensors of its largest size (input, output, gradients, float64 references), so
# a run at this budget can need several GiB. Beyond it a typo (an extra zero or two) would ask
# for more memory than a machine has, and the allocator's error would be the first message.
LARGEST_MAX_NUMEL = 2**26

_state: dict[str, object] = {}


def parse_dtypes(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in DTYPES]
    if not names or unknown:
        raise ValueError(f"dtypes must be a comma-separated subset of {','.join(DTYPES)}, got {text!r}")
    return tuple(n for n in DTYPES if n in names)  # keep the shrink order: float32 first


def parse_max_numel(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not MIN_MAX_NUMEL <= value <= LARGEST_MAX_NUMEL:
        raise ValueError(
            f"max numel (LINCONV_MAX_NUMEL / --max-numel) must be an int in [{MIN_MAX_NUMEL}, {LARGEST_MAX_NUMEL}], "
            f"got {text!r}"
        )
    return value


def max_numel() -> int:
    if "max_numel" not in _state:
        _state["max_numel"] = parse_max_numel(os.environ.get("LINCONV_MAX_NUMEL", str(DEFAULT_MAX_NUMEL)))
    return _state["max_numel"]  # type: ignore[return-value]


def set_max_numel(value: int | str) -> None:
    _state["max_numel"] = parse_max_numel(str(value))


def selected_dtypes() -> tuple[str, ...]:
    if "dtypes" not in _state:
        _state["dtypes"] = parse_dtypes(os.environ.get("LINCONV_DTYPES", ",".join(DTYPES)))
    return _state["dtypes"]  # type: ignore[return-value]


def set_selected_dtypes(value: str | tuple[str, ...]) -> None:
    _state["dtypes"] = parse_dtypes(value if isinstance(value, str) else ",".join(value))


def drawn_dtype() -> str | None:
    """The one dtype the strategies draw now (a property's dtype test: linconv.plugins.options), or
    None: each draw picks among the selected dtypes."""
    return _state.get("drawn_dtype")  # type: ignore[return-value]


@contextmanager
def drawing_dtype(name: str | None) -> Iterator[None]:
    """Within the block every case drawn has dtype ``name`` (None: the usual choice). A property
    runs one test per dtype so that each dtype gets its share of the examples by construction:
    left to Hypothesis, a four-way choice came out 4 to 57 times in 100 examples (docs/calibration.md)."""
    if name is not None and name not in DTYPES:
        raise ValueError(f"dtype must be one of {','.join(DTYPES)}, got {name!r}")
    before = _state.get("drawn_dtype")
    _state["drawn_dtype"] = name
    try:
        yield
    finally:
        _state["drawn_dtype"] = before
