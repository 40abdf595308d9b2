"""Markdown and number formatting shared by the run report and the gate verdict."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["fmt_optional", "fmt_ratio", "fmt_time", "table"]


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table; a ``|`` inside a cell is escaped so it cannot split the cell."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]


def fmt_ratio(value: Any) -> str:
    """A ratio to three significant digits; ``inf`` / ``nan`` (numbers or their JSON strings) as words."""
    value = float(value)
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def fmt_optional(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
