"""A stacked bar chart per day as an SVG document (framework-free, no JavaScript): the organizer dashboard's
submissions per day. Every text is escaped, so the result can be inlined in a page."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Series:
    """One layer of the stack: its name (legend, tooltips), its colour and one value per day."""

    label: str
    color: str
    values: tuple[int, ...]


WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 28, 36  # room for the y labels, the legend and the x labels


def nice_step(maximum: int, ticks: int = 5) -> int:
    """A step of 1, 2 or 5 times a power of ten giving at most `ticks` steps up to `maximum` (at least 1)."""
    if maximum <= ticks:
        return 1
    raw = maximum / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(int(m * power) for m in (1, 2, 5, 10) if m * power >= raw)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def stacked_bars(*, days: list[dt.date], series: list[Series], title: str) -> str:
    """The SVG: one `<g class="day">` per day (its tooltip lists each series' value), bars stacked in the order
    of `series` from the bottom, a y axis of counts with grid lines, dates under the bars (every few days when
    there are many), and a legend."""
    if any(len(s.values) != len(days) for s in series):
        raise ValueError("each series needs one value per day")
    totals = [sum(s.values[i] for s in series) for i in range(len(days))]
    step = nice_step(max(totals, default=0))
    top = max(step, math.ceil(max(totals, default=0) / step) * step)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.78, 1.0)

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * value / top

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
           f'aria-labelledby="chart-title">',
           f'<title id="chart-title">{escape(title)}</title>',
           '<g class="axis y" font-size="11" fill="#555" text-anchor="end">']
    for tick in range(0, top + 1, step):
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_num(y(tick))}" y2="{_num(y(tick))}" '
                   f'stroke="#ddd" stroke-width="1"/>'
                   f'<text x="{LEFT - 6}" y="{_num(y(tick) + 4)}">{tick}</text>')
    out.append("</g>")
    every = max(1, math.ceil(len(days) / 10))  # at most about ten dates under the axis
    out.append('<g class="bars">')
    for index, day in enumerate(days):
        x = LEFT + index * slot + (slot - bar) / 2
        parts = ", ".join(f"{s.values[index]} {s.label}" for s in series)
        out.append(f'<g class="day" data-day="{day.isoformat()}"><title>{day.isoformat()}: {escape(parts)}</title>')
        base = 0
        for s in series:
            value = s.values[index]
            if value:
                out.append(f'<rect class="{escape(s.label)}" x="{_num(x)}" y="{_num(y(base + value))}" '
                           f'width="{_num(bar)}" height="{_num(y(base) - y(base + value))}" fill="{escape(s.color)}"/>')
                base += value
        out.append("</g>")
    out.append("</g>")
    out.append(f'<line class="axis x" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" '
               'stroke="#888" stroke-width="1"/>')
    out.append('<g class="axis x-labels" font-size="11" fill="#555" text-anchor="middle">')
    for index, day in enumerate(days):
        if index % every == 0 or index == len(days) - 1:
            out.append(f'<text x="{_num(LEFT + (index + 0.5) * slot)}" y="{HEIGHT - BOTTOM + 16}">'
                       f'{day:%m-%d}</text>')
    out.append("</g>")
    out.append('<g class="legend" font-size="12" fill="#333">')
    x = LEFT
    for s in series:
        out.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{escape(s.color)}"/>'
                   f'<text x="{x + 16}" y="18">{escape(s.label)}</text>')
        x += 24 + 8 * len(s.label)
    out.append("</g></svg>")
    return "".join(out)
