"""Charts rendered on the server as SVG (no JavaScript): stacked bars over time slots, with a labelled y axis and
its unit, the slots' times on the x axis, and a legend — readable without hovering, and by a screen reader
(role="img" with a title and a description that states the totals)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 36, 48
LEGEND_COLUMNS, LEGEND_ROW, LEGEND_NAME = 4, 18, 22  # legend entries per row, row height, characters shown
# Okabe-Ito: told apart with the common colour-vision deficiencies
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#666666")


@dataclass(frozen=True)
class Series:
    name: str
    color: str


def nice_ceiling(value: float) -> int:
    """The axis' top: 1, 2 or 5 times a power of ten, at least `value` (and at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(int(m * power) for m in (1, 2, 5, 10) if m * power >= value)


def stacked_bars(
    title: str, unit: str, labels: list[str], values: list[dict[str, int]], *, series: list[Series], chart_id: str
) -> str:
    totals = [sum(v.get(s.name, 0) for s in series) for v in values]
    top = nice_ceiling(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    legend_rows = max(1, math.ceil(len(series) / LEGEND_COLUMNS))
    svg_height = HEIGHT + LEGEND_ROW * (legend_rows - 1)
    slot_w = plot_w / max(len(labels), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {svg_height}" '
        f'width="{WIDTH}" height="{svg_height}" '
        f'role="img" aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(_description(unit, labels, values, series))}</desc>',
        f'<text x="{LEFT}" y="20" font-size="14" font-weight="600">{escape(title)}</text>',
    ]
    for fraction in (0, 0.5, 1) if top % 2 == 0 else (0, 1):  # y axis: 0, (half,) top: whole numbers
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d8dee4"/>')
        tick = f"{top * fraction:g}"
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{tick}</text>')
    parts.append(
        f'<text x="14" y="{TOP + plot_h / 2:.1f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">{escape(unit)}</text>'
    )
    every = max(1, math.ceil(len(labels) / 8))  # at most about 8 time labels
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        x, base = LEFT + index * slot_w, float(TOP + plot_h)
        for s in series:
            height = plot_h * value.get(s.name, 0) / top
            if height > 0:
                parts.append(
                    f'<rect x="{x + slot_w * 0.15:.1f}" y="{base - height:.1f}" width="{slot_w * 0.7:.1f}" '
                    f'height="{height:.1f}" fill="{s.color}"><title>{escape(label)}: {value.get(s.name, 0)} '
                    f"{escape(s.name)}</title></rect>"
                )
                base -= height
        if index % every == 0:
            parts.append(
                f'<text x="{x + slot_w / 2:.1f}" y="{TOP + plot_h + 16}" font-size="11" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    column_w = (WIDTH - LEFT - RIGHT) / LEGEND_COLUMNS
    for index, s in enumerate(series):  # the legend, under the x labels, in rows of LEGEND_COLUMNS
        row, column = divmod(index, LEGEND_COLUMNS)
        x, y = LEFT + column * column_w, HEIGHT - 18 + row * LEGEND_ROW
        shown = escape(s.name)
        if len(s.name) > LEGEND_NAME:  # cut, the whole name as the tooltip
            shown = f"{escape(s.name[: LEGEND_NAME - 1])}…<title>{escape(s.name)}</title>"
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="12" height="12" fill="{s.color}"/>')
        parts.append(f'<text x="{x + 18:.1f}" y="{y + 10}" font-size="12">{shown}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _description(unit: str, labels: list[str], values: list[dict[str, int]], series: list[Series]) -> str:
    if not labels:
        return f"No {unit} in this period."
    totals = ", ".join(f"{sum(v.get(s.name, 0) for v in values)} {s.name}" for s in series)
    return f"{unit} from {labels[0]} to {labels[-1]}: {totals}."
