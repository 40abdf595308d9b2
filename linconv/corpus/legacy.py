"""Corpus files of an older schema: read, converted, and identified as they were written.

Version 1 (before N-d geometry) stored a 2-D geometry as ``height`` / ``width`` and pairs. Such a
file is still read: its case is converted to the current schema, and its id is checked against
the version-1 hashing (the fields that differed from version 1's defaults), so the file keeps its
name until ``python -m linconv regressions migrate`` rewrites it under its current id.
"""

from __future__ import annotations

from typing import Any

__all__ = ["READABLE", "canonical", "upgrade_case"]

READABLE = (1, 2)

_V1_GEOMETRY_DEFAULTS = {
    "kernel": [1, 1],
    "stride": [1, 1],
    "padding": [0, 0],
    "dilation": [1, 1],
    "groups": 1,
    "padding_mode": "zeros",
    "bias": True,
}
_V1_CASE_DEFAULTS = {
    "dtype": "float32",
    "values": "normal",
    "memory_format": "contiguous",
    "input_view": "dense",
    "head_features": 0,
    "seed": 0,
}
_PAIRS = ("kernel", "stride", "padding", "dilation")


def _pair(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value, value]
    return list(value) if isinstance(value, (list, tuple)) else value


def upgrade_case(case: Any) -> Any:
    """A version-1 case as a current one (``height``/``width`` -> ``size``); anything malformed is
    left for the current validation to name."""
    if not isinstance(case, dict) or not isinstance(case.get("geometry"), dict):
        return case
    geometry = dict(case["geometry"])
    if "height" in geometry or "width" in geometry:
        geometry["size"] = [geometry.pop("height", None), geometry.pop("width", None)]
    return {**case, "geometry": geometry}


def canonical(relation: str, case: dict[str, Any]) -> dict[str, Any]:
    """What version 1 hashed into a case id: relation + the fields that differed from their defaults."""
    geometry = {}
    for name, value in case.get("geometry", {}).items():
        if name in _PAIRS and not isinstance(value, str):
            value = _pair(value)
        if name in _V1_GEOMETRY_DEFAULTS and value == _V1_GEOMETRY_DEFAULTS[name]:
            continue
        geometry[name] = value
    fields = {k: v for k, v in case.items() if k != "geometry" and _V1_CASE_DEFAULTS.get(k, object()) != v}
    return {"relation": relation, "case": {**fields, "geometry": geometry}}
