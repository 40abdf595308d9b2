"""The report's plot: time ratio of two formulations against problem size, one panel per relation,
device and pair of formulations, one color per dtype. matplotlib is optional
(``pip install 'linconv[report]'``); without it :func:`render_plot` says so instead of drawing."""

from __future__ import annotations

import math
import os
from typing import Any

from linconv.core.fileio import atomic_writer
from linconv.timing import PHASES, Sample, pairs, size_bucket

__all__ = ["render_plot"]

_MARKERS = {"forward": "o", "backward": "^"}
_LINESTYLES = {"forward": "-", "backward": "--"}
_COLUMNS = 3
# a bucket median joins the line only with this many examples behind it (one is just a point)
_LINE_MIN_COUNT = 2
# one color per dtype, in linconv.cases.DTYPES order
DTYPE_COLORS = {"float32": "tab:blue", "float64": "tab:green", "bfloat16": "tab:orange", "float16": "tab:red"}


def _decades(limits: tuple[float, float]) -> float:
    return math.log10(limits[1] / limits[0])


def _twos_and_fives(value: float, position: int) -> str:
    leading = round(value / 10 ** math.floor(math.log10(value)))
    return f"{value:g}" if leading in (2, 5) else ""


def _panels(report: dict[str, Any]) -> dict[tuple[str, str, str, str, str], list[Sample]]:
    """Samples per (relation, device, mode, A, B): one panel per pair of formulations compared."""
    order = {r: e["formulations"] for r, e in report["relations"].items() if e.get("formulations")}
    relation_pairs = pairs(order)
    panels: dict[tuple[str, str, str, str, str], list[Sample]] = {}
    for data in report["samples"]:
        sample = Sample.from_dict(data)
        for num, den in relation_pairs.get(sample.relation, []):
            if num in sample.times and den in sample.times:
                key = (sample.relation, sample.device, sample.mode, sample.execution, num, den)
                panels.setdefault(key, []).append(sample)
    return dict(sorted(panels.items()))


def render_plot(report: dict[str, Any], path: str | os.PathLike[str]) -> str | None:
    """Draw the plot into ``path`` (PNG, written atomically). Returns None when drawn, else why not."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        return "matplotlib is not installed (pip install 'linconv[report]')"
    panels = _panels(report)
    if not panels:
        return "no relation has timings of two formulations to compare"
    medians = {
        (
            r["relation"],
            r["device"],
            r["mode"],
            r.get("execution", "eager"),
            r["pair"],
            r["dtype"],
            r["phase"],
            r["size_bucket"],
        ): r
        for r in report["ratios"]
        if r["size_bucket"] != "all"
    }
    dtypes = [d for d in DTYPE_COLORS if any(s.dtype == d for samples in panels.values() for s in samples)]
    columns = min(_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(5.4 * columns, 4.3 * rows + 0.5), layout="constrained")
    FigureCanvasAgg(figure)
    env = report["environment"]
    figure.suptitle(
        "Time ratio A / B against problem size (> 1: B is faster): points per example, lines through the median "
        f"of each size bucket with >= {_LINE_MIN_COUNT} examples\ntorch {env['torch']}, timed with "
        f"{env.get('timing_threads', env['threads'])} thread(s), "
        f"{report['machine'].get('cpu_model', '')}",
        fontsize=10,
    )
    for index, ((relation, device, mode, execution, num, den), samples) in enumerate(panels.items()):
        axes = figure.add_subplot(rows, columns, index + 1)
        for dtype in dtypes:
            color = DTYPE_COLORS[dtype]
            for phase in PHASES:
                points = [
                    (s.size, s.times[num][phase] / s.times[den][phase])
                    for s in samples
                    if s.dtype == dtype and phase in s.times[num] and phase in s.times[den]
                ]
                if not points:
                    continue
                xs, ys = zip(*points, strict=True)
                axes.scatter(xs, ys, s=14, alpha=0.35, color=color, marker=_MARKERS[phase], linewidths=0)
                buckets = sorted({size_bucket(x) for x in xs}, key=lambda b: int(b.split("^")[1]))
                line = [
                    medians.get((relation, device, mode, execution, f"{num}/{den}", dtype, phase, b)) for b in buckets
                ]
                line = [r for r in line if r is not None and r["count"] >= _LINE_MIN_COUNT]
                axes.plot(
                    [math.sqrt(r["size_lo"] * r["size_hi"]) for r in line],
                    [r["median"] for r in line],
                    color=color,
                    linestyle=_LINESTYLES[phase],
                    marker=_MARKERS[phase],
                    markersize=4,
                    label=f"{dtype} {phase}",
                )
        axes.axhline(1.0, color="0.3", linewidth=0.9, linestyle=":")
        axes.set_xscale("log")
        axes.set_yscale("log")
        ratio_labels = FuncFormatter(lambda value, _: f"{value:g}")  # 0.5, 2, 30: ratios read as numbers
        axes.yaxis.set_major_formatter(ratio_labels)
        if _decades(axes.get_ylim()) < 2.5:  # few major ticks: label the minor 2s and 5s too
            axes.yaxis.set_minor_formatter(FuncFormatter(_twos_and_fives))
        where = ", ".join([device] + [w for w in (mode, execution) if w not in ("default", "eager")])
        axes.set_title(f"{relation} ({where})\nA = {num}, B = {den}", fontsize=9)
        axes.set_xlabel("problem size (multiply-adds)", fontsize=9)
        axes.set_ylabel("time A / time B", fontsize=9)
        axes.tick_params(labelsize=8)
        axes.grid(True, which="major", alpha=0.3)
        axes.legend(fontsize=7, loc="best", ncols=2)
    with atomic_writer(path, binary=True) as handle:
        figure.savefig(handle, format="png", dpi=110)
    return None
