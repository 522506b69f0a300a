"""Small dependency-free SVG charts for the HTML report: a scatter plot and a line chart.

Both return an ``<svg>`` element as text, to be inlined in HTML. Every point is a ``<g class="point"
data-label=...>`` holding its circle and a ``<title>`` tooltip, so the charts can be checked in tests.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Callable, Sequence

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
MARGIN = (56, 16, 30, 46)  # left, right, top, bottom


@dataclass(frozen=True)
class Point:
    """A scatter point: ``size`` (e.g. parameters) sets the marker area relative to the largest."""

    x: float
    y: float
    label: str
    group: str = ""
    size: float = 0.0
    title: str = ""


def _finite(v: float) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _range(values: Sequence[float], log: bool) -> tuple[float, float]:
    """Data range with some padding; log ranges are returned as log10 values."""
    vals = [math.log10(v) for v in values] if log else list(values)
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-12:
        lo, hi = lo - (0.5 if log else max(abs(lo) * 0.1, 1.0)), hi + (0.5 if log else max(abs(hi) * 0.1, 1.0))
    pad = (hi - lo) * 0.08
    return lo - pad, hi + pad


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    """Tick positions (in the axis's own units, log10 for log axes) inside ``[lo, hi]``."""
    if log:  # decades, else 1-2-5 steps, else every digit, else plain steps of the values
        for mults in ((1,), (1, 2, 5), range(1, 10)):
            ticks = [math.log10(m * 10.0**k) for k in range(math.floor(lo), math.ceil(hi) + 1) for m in mults]
            ticks = [t for t in ticks if lo <= t <= hi]
            if len(ticks) >= 2:
                return ticks
        return [math.log10(v) for v in _ticks(10.0**lo, 10.0**hi, False) if v > 0]
    raw = (hi - lo) / 5
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _fmt(v: float, log: bool) -> str:
    v = 10.0**v if log else v
    if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-2):
        mant, exp = f"{v:.1e}".split("e")
        return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"
    return f"{v:,.0f}" if abs(v - round(v)) < 1e-9 else f"{v:.3g}"


def _axes(width: int, height: int, xr: tuple[float, float], yr: tuple[float, float], log_x: bool, log_y: bool,
          x_label: str, y_label: str, title: str) -> tuple[list[str], Callable[[float], float], Callable[[float], float]]:
    left, right, top, bottom = MARGIN
    pw, ph = width - left - right, height - top - bottom

    def sx(v: float) -> float:
        return left + (v - xr[0]) / (xr[1] - xr[0]) * pw

    def sy(v: float) -> float:
        return top + (1 - (v - yr[0]) / (yr[1] - yr[0])) * ph

    out = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for t in _ticks(*xr, log_x):
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#eee"/>'
                   f'<text x="{x:.1f}" y="{top + ph + 14}" text-anchor="middle">{_fmt(t, log_x)}</text>')
    for t in _ticks(*yr, log_y):
        y = sy(t)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t, log_y)}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>'
               f'<text transform="translate(13 {top + ph / 2}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
    if title:
        out.append(f'<text x="{left + pw / 2}" y="{top - 12}" text-anchor="middle" font-weight="bold">{escape(title)}</text>')
    return out, sx, sy


def _svg(width: int, height: int, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">' + "".join(body) + "</svg>")


def _legend(groups: list[str], colors: dict[str, str], x: float, y: float) -> list[str]:
    return [f'<g class="legend"><circle cx="{x}" cy="{y + 14 * i}" r="4" fill="{colors[g]}"/>'
            f'<text x="{x + 8}" y="{y + 14 * i + 4}">{escape(g)}</text></g>' for i, g in enumerate(groups) if g]


def scatter(points: Sequence[Point], *, x_label: str, y_label: str, log_x: bool = False, title: str = "",
            width: int = 560, height: int = 380) -> str:
    """A labelled scatter plot; points with a non-finite (or, on a log axis, non-positive) x or y are left out."""
    pts = [p for p in points if _finite(p.x) and _finite(p.y) and (p.x > 0 or not log_x)]
    if not pts:
        return _svg(width, 60, [f'<text x="10" y="30">{escape(title)}: no data to plot</text>'])
    xr, yr = _range([p.x for p in pts], log_x), _range([p.y for p in pts], False)
    body, sx, sy = _axes(width, height, xr, yr, log_x, False, x_label, y_label, title)
    groups = list(dict.fromkeys(p.group for p in pts))
    colors = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}
    biggest = max((p.size for p in pts), default=0.0)
    for p in sorted(pts, key=lambda p: -p.size):  # small markers drawn on top of big ones
        r = 4.0 + 14.0 * math.sqrt(p.size / biggest) if biggest > 0 and p.size > 0 else 4.0
        cx, cy = sx(math.log10(p.x) if log_x else p.x), sy(p.y)
        tip = escape(p.title or f"{p.label}: {p.x:.4g}, {p.y:.4g}")
        body.append(f'<g class="point" data-label="{escape(p.label)}" data-group="{escape(p.group)}">'
                    f'<circle cx="{cx:.2f}" cy="{cy:.2f}" r="{r:.1f}" fill="{colors[p.group]}" fill-opacity="0.55" '
                    f'stroke="{colors[p.group]}"><title>{tip}</title></circle>'
                    + (f'<text x="{cx + r + 2:.1f}" y="{cy + 4:.1f}">' if cx < width - MARGIN[1] - 90 else
                       f'<text x="{cx - r - 2:.1f}" y="{cy + 4:.1f}" text-anchor="end">') + f'{escape(p.label)}</text></g>')
    body += _legend(groups, colors, MARGIN[0] + 10, MARGIN[2] + 12)
    return _svg(width, height, body)


def line_chart(series: dict[str, Sequence[tuple[float, float]]], *, x_label: str, y_label: str,
               log_y: bool = False, title: str = "", width: int = 420, height: int = 260) -> str:
    """One polyline per series (e.g. loss terms against the step)."""
    clean = {k: [(x, y) for x, y in v if _finite(x) and _finite(y) and (y > 0 or not log_y)] for k, v in series.items()}
    clean = {k: v for k, v in clean.items() if v}
    if not clean:
        return _svg(width, 60, [f'<text x="10" y="30">{escape(title)}: no data to plot</text>'])
    xs = [x for v in clean.values() for x, _ in v]
    ys = [y for v in clean.values() for _, y in v]
    xr, yr = _range(xs, False), _range(ys, log_y)
    body, sx, sy = _axes(width, height, xr, yr, False, log_y, x_label, y_label, title)
    colors = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(clean)}
    for k, v in clean.items():
        coords = " ".join(f"{sx(x):.1f},{sy(math.log10(y) if log_y else y):.1f}" for x, y in sorted(v))
        body.append(f'<polyline class="series" data-label="{escape(k)}" points="{coords}" fill="none" '
                    f'stroke="{colors[k]}" stroke-width="1.5"/>')
    body += _legend(list(clean), colors, width - MARGIN[1] - 110, MARGIN[2] + 12)
    return _svg(width, height, body)
