"""The HTML of ``kdrestore report``: one page, inline CSS, base64 PNG crops and inline SVG charts."""
from __future__ import annotations

import datetime
import math
import platform
import re
from html import escape
from typing import Any, Sequence

import torch

from ..version import __version__
from ..evaluate.metrics import TASK_CONVENTIONS
from .report_gallery import gallery_html
from .report_parts import PlotEntry, Section
from .svg import Point, line_chart, scatter

CSS = """
body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
h3{font-size:15px}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;font-size:13px;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}.grid td{text-align:center;vertical-align:top;border:none;padding:4px}
.grid img{image-rendering:pixelated;width:192px;display:block}.grid img.photo{width:auto;image-rendering:auto}.cap{font-size:12px;color:#444}
.note{color:#8a4b00;font-size:13px}.muted{color:#666;font-size:12px}.charts{display:flex;flex-wrap:wrap;gap:16px}
"""


def _num(v: Any, fmt: str = ".2f") -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return format(v, fmt) if isinstance(v, float) and math.isfinite(v) else "-"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table; cells that are not numbers are left-aligned."""
    def cls(c: str) -> str:
        return "" if re.fullmatch(r"[-+]?[\d,.]+(e[-+]?\d+)?[x%]?", c.strip()) or c == "-" else " class='l'"

    th = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td{cls(str(c))}>{escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{f'<tr>{th}</tr>' if any(header) else ''}{body}</table>"


def plots_html(entries: Sequence[PlotEntry]) -> str:
    """Per task: PSNR vs CPU ms per megapixel (log) and PSNR vs parameters (log), and the numbers."""
    parts = []
    for task in dict.fromkeys(e.task for e in entries):
        es = [e for e in entries if e.task == task]
        pts_lat = [Point(e.ms_per_mp or math.nan, e.psnr, e.name, e.kind, float(e.params),
                         f"{e.name} ({e.kind}): {e.psnr:.2f} dB, {_num(e.ms_per_mp, '.1f')} ms/MP, {e.params:,} params")
                   for e in es]
        pts_par = [Point(float(e.params), e.psnr, e.name, e.kind, float(e.params),
                         f"{e.name} ({e.kind}): {e.psnr:.2f} dB, {e.params:,} params") for e in es if e.params > 0]
        conv = TASK_CONVENTIONS[task].describe() if task in TASK_CONVENTIONS else ""
        parts.append(f"<h3>{escape(task)}</h3><div class='charts'>"
                     + scatter(pts_lat, x_label="CPU ms per megapixel (log)", y_label="PSNR (dB)", log_x=True,
                               title=f"{task}: PSNR vs latency (marker area ~ parameters)")
                     + scatter(pts_par, x_label="parameters (log)", y_label="PSNR (dB)", log_x=True,
                               title=f"{task}: PSNR vs parameters") + "</div>"
                     + _table(("model", "kind", "PSNR", "params", "ms/MP", "PSNR on", "numbers from"),
                              [(e.name, e.kind, _num(e.psnr), f"{e.params:,}", _num(e.ms_per_mp, ".1f"), e.data, e.source)
                               for e in es])
                     + f"<p class='muted'>Convention: {escape(conv)}. Points compare only when their PSNR is on "
                       "the same data (column 'PSNR on'). Latency is CPU milliseconds per megapixel: bench-JSON rows "
                       "were timed together in that bench's run; students of run directories in this report's run.</p>")
    return "".join(parts) or "<p>No numbers to plot.</p>"


def section_html(sec: Section) -> str:
    facts = [("task", sec.task), ("architecture", sec.model), ("weights", sec.source),
             ("parameters", f"{sec.params:,}"), ("teacher", sec.teacher or "none"), ("images", sec.data)]
    out = [f"<h2 id='{escape(sec.name)}'>{escape(sec.name)}</h2>",
           _table(("", ""), facts), *(f"<p class='note'>{escape(n)}</p>" for n in sec.notes)]
    final = {k: v for k, v in sec.final.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if final:
        out.append("<h3>Final metrics (final_metrics.json)</h3>"
                   + _table(tuple(final), [[_num(v, ".4g") for v in final.values()]]))
    if sec.image_psnr:
        cols = list(sec.image_psnr)
        out.append(f"<p>Mean full-image PSNR on these {len(sec.grid)} image(s): "
                   + ", ".join(f"{c} {sec.image_psnr[c]:.2f} dB" for c in cols)
                   + f" <span class='muted'>({escape(TASK_CONVENTIONS[sec.task].describe())})</span></p>")
    if sec.latency:
        s = sec.latency["student"]
        text = f"CPU latency at input {'x'.join(map(str, s['shape']))}: student {s['ms']:.1f} ms ({s['mp_s']:.2f} MP/s)"
        if "teacher" in sec.latency:
            t = sec.latency["teacher"]
            text += f", teacher {t['ms']:.1f} ms ({t['mp_s']:.2f} MP/s); student/teacher speed {t['ms'] / s['ms']:.2f}x"
        out.append(f"<p>{escape(text)} <span class='muted'>(median of calls in turn, this report's run, "
                   f"{torch.get_num_threads()} thread(s))</span></p>")
    rows = []
    for name, crops in sec.grid:
        cells = "".join(f"<td><img alt='{escape(c.label)}' src='data:image/png;base64,{c.png}'>"
                        f"<div class='cap'>{escape(c.label)}" + (f" {c.psnr:.2f} dB" if c.psnr is not None else "")
                        + "</div></td>" for c in crops)
        rows.append(f"<tr><td class='cap'>{escape(name)}</td>{cells}</tr>")
    out.append("<h3>Crops (centre, PSNR of the crop)</h3><table class='grid'>" + "".join(rows) + "</table>")
    if sec.curves:
        charts = []
        if "loss" in sec.curves:
            charts.append(line_chart(sec.curves["loss"], x_label="step", y_label="loss (log)", log_y=True,
                                     title="training loss"))
        if "val" in sec.curves:
            charts.append(line_chart(sec.curves["val"], x_label="step", y_label="PSNR (dB)", title="validation PSNR"))
        out.append("<h3>Curves (log.csv)</h3><div class='charts'>" + "".join(charts) + "</div>")
    return f"<section class='run' data-item='{escape(sec.item)}'>" + "".join(out) + "</section>"


def render_html(title: str, sections: Sequence[Section], entries: Sequence[PlotEntry], bench: Sequence[str],
                galleries: Sequence[Any] = ()) -> str:
    now = datetime.datetime.now().isoformat(timespec="seconds")
    meta = (f"kdrestore {__version__}, {now}, {platform.processor() or platform.machine()}, torch {torch.__version__}"
            + (f"; bench: {', '.join(bench)}" if bench else ""))
    toc = "".join(f"<li><a href='#{escape(s.name)}'>{escape(s.name)}</a> <span class='muted'>{escape(s.item)}"
                  "</span></li>" for s in sections)
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{escape(title)}</h1><p class='muted'>{escape(meta)}</p><ul>{toc}</ul>"
            + (f"<h2>PSNR, latency and size</h2>{plots_html(entries)}" if sections or entries else "")
            + "".join(section_html(s) for s in sections)
            + ("<h2 id='gallery'>Real photographs</h2>" + "".join(gallery_html(g) for g in galleries) if galleries else "")
            + "</body></html>\n")
