"""A line chart as hand-written SVG: a few curves over one x range, with axes and a legend.

Each curve is a ``<g class="curve">`` with ``data-label`` and one ``<polyline>`` per run of
finite values (a NaN or infinity breaks the line). The plot area carries its data ranges
(``data-x-min`` ...), so a reader can map points back to numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

import numpy as np

WIDTH, HEIGHT = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 40, 40
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
_LARGEST = float(np.finfo(np.float64).max)


def line_chart(title: str, x: np.ndarray, curves: Sequence[tuple[str, np.ndarray]]) -> str:
    """An SVG document of ``curves`` (label, y values) over ``x``."""
    finite = np.concatenate([y[np.isfinite(y)] for _, y in curves] or [np.zeros(0)])
    y_min, y_max = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    if y_max / 2 - y_min / 2 < 1e-12 * max(1.0, abs(y_max)):  # one level: show it mid-height
        pad = max(1.0, abs(y_max) / 4)
        y_min, y_max = max(y_min - pad, -_LARGEST), min(y_max + pad, _LARGEST)
    x_min, x_max = float(x[0]), float(x[-1])
    scale = _Scale(x_min, x_max, y_min, y_max)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}'
        "</text>",
        f'<g class="plot-area" data-x-min="{x_min!r}" data-x-max="{x_max!r}" '
        f'data-y-min="{y_min!r}" data-y-max="{y_max!r}" data-left="{LEFT}" '
        f'data-right="{WIDTH - RIGHT}" data-top="{TOP}" data-bottom="{HEIGHT - BOTTOM}">',
        *_axes(scale),
    ]
    for i, (label, y) in enumerate(curves):
        parts.append(_curve(label, COLORS[i % len(COLORS)], x, y, scale))
    parts.append("</g>")
    parts += _legend([label for label, _ in curves])
    parts.append("</svg>")
    return "\n".join(parts)


def _fraction(value: float, low: float, high: float) -> float:
    """Where ``value`` lies from ``low`` (0) to ``high`` (1), computed in halves so that no
    difference overflows even when the range spans all of float64; 0 for an empty range."""
    span = high / 2 - low / 2
    return (value / 2 - low / 2) / span if span > 0 else 0.0


class _Scale:
    def __init__(self, x_min: float, x_max: float, y_min: float, y_max: float) -> None:
        self.x_min, self.x_max, self.y_min, self.y_max = x_min, x_max, y_min, y_max

    def x(self, value: float) -> float:
        return LEFT + _fraction(value, self.x_min, self.x_max) * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return HEIGHT - BOTTOM - _fraction(value, self.y_min, self.y_max) * (
            HEIGHT - TOP - BOTTOM)


def _axes(scale: _Scale) -> list[str]:
    left, right, top, bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    lines = [f'<rect class="frame" x="{left}" y="{top}" width="{right - left}" '
             f'height="{bottom - top}" fill="none" stroke="#888"/>']
    if scale.y_min < 0 < scale.y_max:
        y0 = scale.y(0.0)
        lines.append(f'<line class="zero" x1="{left}" y1="{y0:.2f}" x2="{right}" '
                     f'y2="{y0:.2f}" stroke="#ccc"/>')
    for value, anchor in ((scale.y_max, top + 4), (scale.y_min, bottom)):
        lines.append(f'<text x="{left - 4}" y="{anchor}" text-anchor="end">{value:.4g}</text>')
    for value, where in ((scale.x_min, left), (scale.x_max, right)):
        lines.append(f'<text x="{where}" y="{bottom + 16}" text-anchor="middle">'
                     f"{value:.4g}</text>")
    return lines


def _curve(label: str, color: str, x: np.ndarray, y: np.ndarray, scale: _Scale) -> str:
    runs: list[list[str]] = [[]]
    for xi, yi in zip(x.tolist(), y.tolist(), strict=True):
        if np.isfinite(yi):
            runs[-1].append(f"{scale.x(xi):.2f},{scale.y(yi):.2f}")
        elif runs[-1]:
            runs.append([])
    lines = [f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" '
             'stroke-width="1.5"/>' for run in runs if run]
    return f'<g class="curve" data-label={quoteattr(label)}>' + "".join(lines) + "</g>"


def _legend(labels: Sequence[str]) -> list[str]:
    items = []
    for i, label in enumerate(labels):
        y = TOP + 14 + 16 * i
        color = COLORS[i % len(COLORS)]
        items.append(f'<line x1="{LEFT + 10}" y1="{y - 4}" x2="{LEFT + 30}" y2="{y - 4}" '
                     f'stroke="{color}" stroke-width="2"/><text x="{LEFT + 36}" y="{y}">'
                     f"{escape(label)}</text>")
    return ['<g class="legend">', *items, "</g>"]
