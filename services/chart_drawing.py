"""Drawing charts with matplotlib's Agg canvas; every function here runs in a worker process
and returns PNG bytes.

matplotlib is imported inside each function, in the worker: it reads its fonts and settings
when imported, which would be I/O at the bot's import time and seconds of start-up for a rare
command. Each picture is a `Figure` of its own (no pyplot state).
"""

from __future__ import annotations

import io
from datetime import date, datetime

import numpy

GREEN, RED, GREY, BLUE = "#1a7f37", "#cf222e", "#888888", "#0969da"


def draw_curve(
    labels: list[date],
    values: list[float],
    zone: str,
    balances: list[tuple[date, float]] | None = None,
) -> bytes:
    """The curve as a PNG (runs in a worker process); `balances`, the recorded balance per
    period, is drawn over it against a right-hand axis of its own (a balance of thousands
    would flatten a realised PnL of tens on a shared one)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    color = GREEN if values and values[-1] >= 0 else RED
    days = numpy.array(labels, dtype="datetime64[D]")
    axes.plot(days, values, color=color, linewidth=1.8)
    axes.fill_between(days, values, 0, color=color, alpha=0.12)
    axes.axhline(0, color=GREY, linewidth=0.8)
    axes.set_title(f"Realised PnL, cumulative ({zone})")
    axes.set_ylabel("USDT")
    axes.grid(alpha=0.3)
    right = 0.97
    if balances:
        at = numpy.array([day for day, _ in balances], dtype="datetime64[D]")
        other = axes.twinx()
        other.plot(at, [v for _, v in balances], color=BLUE, linewidth=1.4, marker="o",
                   markersize=3, label="balance (recorded)")  # fmt: skip
        other.set_ylabel("Balance, USDT", color=BLUE)
        other.tick_params(axis="y", colors=BLUE)
        other.legend(loc="upper left", fontsize=8)
        axes.set_title(f"Realised PnL, cumulative, and recorded balance ({zone})")
        right = 0.9
    figure.autofmt_xdate()
    # Fixed margins: tight_layout would draw the figure twice to measure it (a third of the time).
    figure.subplots_adjust(left=0.1, right=right, top=0.9, bottom=0.2)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def draw_bars(labels: list[date], values: list[float], zone: str) -> bytes:
    """One bar per day, green for a gain and red for a loss (runs in a worker process)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    days = numpy.array(labels, dtype="datetime64[D]")
    colors = [GREEN if v >= 0 else RED for v in values]
    axes.bar(days, values, width=0.8, color=colors)
    axes.axhline(0, color=GREY, linewidth=0.8)
    axes.set_title(f"Realised PnL per day ({zone})")
    axes.set_ylabel("USDT")
    axes.grid(axis="y", alpha=0.3)
    figure.autofmt_xdate()
    figure.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.2)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def draw_candles(
    title: str,
    times: list[datetime],
    ohlc: list[tuple[float, float, float, float]],
    width_days: float,
    marks: list[tuple[datetime, float, str]],
) -> bytes:
    """Candles (local times, oldest first) with marks: `kind` is long|short (a signal),
    entry or exit (the trader's trades)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    x = numpy.array(times, dtype="datetime64[ms]")
    opens, highs, lows, closes = (numpy.array(column) for column in zip(*ohlc, strict=True))
    colors = [GREEN if c >= o else RED for o, c in zip(opens, closes, strict=True)]
    axes.vlines(x, lows, highs, colors=colors, linewidth=0.8)
    bodies = numpy.maximum(numpy.abs(closes - opens), (highs - lows).max() * 0.002)
    axes.bar(x, bodies, bottom=numpy.minimum(opens, closes), width=width_days * 0.7, color=colors)
    styles = {
        "long": ("^", GREEN, "signal long"),
        "short": ("v", RED, "signal short"),
        "entry": ("o", BLUE, "your entry"),
        "exit": ("X", "#000000", "your exit"),
    }
    for kind, (marker, color, label) in styles.items():
        shown = [(t, p) for t, p, k in marks if k == kind]
        if shown:
            at = numpy.array([t for t, _ in shown], dtype="datetime64[ms]")
            axes.scatter(at, [p for _, p in shown], marker=marker, s=70, color=color,
                         edgecolors="white", linewidths=0.6, zorder=3, label=label)  # fmt: skip
    if marks:
        axes.legend(loc="upper left", fontsize=8)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.subplots_adjust(left=0.09, right=0.98, top=0.92, bottom=0.17)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
