"""A report's charts as PNG images (matplotlib), for the PDF.

Drawn with matplotlib's object API: a ``Figure`` of its own on an Agg canvas
per chart, never ``pyplot``, whose global current-figure state is not
thread-safe (a web process renders in several threads at once, and Agg needs
no display). A chart with no point at all is drawn as a "no data" panel under
its title, so a PDF of an empty period still says what it would have shown.
"""

from __future__ import annotations

import io
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from compliance.reports.base import Chart

# Size of the image in inches and its resolution: about the PDF's text width.
WIDTH_IN = 9.0
HEIGHT_IN = 3.6
DPI = 120
# At most this many x labels are written under the axis; the rest are skipped
# (a year of days would be an unreadable smear).
MAX_X_LABELS = 16
NO_DATA = "No data for this period"


def chart_png(chart: Chart, *, titled: bool = True) -> bytes:
    """``chart`` drawn as a PNG image: a line or bar chart with axis labels, a
    legend naming each series and (unless ``titled`` is false, as in the PDF,
    which writes the title as text above it) its title."""
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if titled:
        axes.set_title(chart.title, fontsize=12, loc="left")
    if chart.empty:
        _draw_empty(axes)
    else:
        _draw(axes, chart)
    buffer = io.BytesIO()
    # No timestamp or software tag in the file: the same chart gives the same bytes.
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _draw_empty(axes) -> None:
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_linestyle((0, (4, 4)))
        spine.set_color("#999999")
    axes.set_facecolor("#f4f4f4")
    axes.text(
        0.5,
        0.5,
        NO_DATA,
        transform=axes.transAxes,
        ha="center",
        va="center",
        fontsize=13,
        color="#555555",
    )


def _x_labels(chart: Chart) -> list[str]:
    """Every x label of every series, in first-seen order (series may differ)."""
    seen: dict[str, None] = {}
    for series in chart.series:
        for x, _ in series.points:
            seen.setdefault(str(x), None)
    return list(seen)


def _value(y: float | None) -> float:
    """A point's y as matplotlib wants it: missing is NaN (a gap, no bar)."""
    if y is None:
        return math.nan
    try:
        return float(y)
    except (TypeError, ValueError):
        return math.nan


def _draw(axes, chart: Chart) -> None:
    labels = _x_labels(chart)
    position = {label: index for index, label in enumerate(labels)}
    count = max(len(chart.series), 1)
    width = 0.8 / count
    for number, series in enumerate(chart.series):
        xs = [position[str(x)] for x, _ in series.points]
        ys = [_value(y) for _, y in series.points]
        if chart.kind == "bar":
            offset = (number - (count - 1) / 2) * width
            axes.bar([x + offset for x in xs], ys, width=width, label=series.name)
        else:
            axes.plot(xs, ys, marker="o" if len(xs) <= 40 else None, label=series.name)
    step = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    ticks = list(range(0, len(labels), step))
    axes.set_xticks(ticks, [labels[i] for i in ticks], rotation=30, ha="right")
    axes.tick_params(labelsize=8)
    axes.set_xlabel(chart.x_label)
    axes.set_ylabel(chart.y_label)
    axes.grid(axis="y", alpha=0.3)
    if any(series.name for series in chart.series):
        axes.legend(fontsize=8, loc="best")
