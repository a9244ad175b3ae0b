"""A scatter plot with error bars as inline SVG: new-task gain against probe change.

Hand-written SVG keeps the board one self-contained, byte-reproducible file (no
renderer versions, ids or timestamps). Coordinates are formatted to one decimal.
"""
from __future__ import annotations

import html
import math

W, H, L, R, T, B = 560, 380, 60, 20, 20, 50  # plot size and margins in px
LEGEND_W, LEGEND_ROW = 300, 18  # legend to the right of the plot: one row per point
# Okabe-Ito colours (distinguishable with colour-vision deficiencies), then repeated.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    step = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(step))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= step)
    start = math.floor(lo / step) * step
    return [round(start + k * step, 10) for k in range(int((hi - start) / step) + 2)
            if lo - 1e-9 <= start + k * step <= hi + 1e-9]


def _range(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values + [0.0]), max(values + [0.0])
    pad = max(1.0, 0.1 * (hi - lo))
    return lo - pad, hi + pad


def scatter(points: list[dict], xlabel: str, ylabel: str) -> str:
    """points: {key, label, x, y, dx, dy, hollow}; error bars of ±dx, ±dy (in axis units).

    Each point is drawn in its own colour with its short `key` beside it; the full
    `label` goes in a legend, so that points close together stay readable."""
    xs = [p["x"] + s * p["dx"] for p in points for s in (-1, 1)]
    ys = [p["y"] + s * p["dy"] for p in points for s in (-1, 1)]
    x0, x1 = _range(xs)
    y0, y1 = _range(ys)

    def px(x):
        return L + (x - x0) / (x1 - x0) * (W - L - R)

    def py(y):
        return H - B - (y - y0) / (y1 - y0) * (H - T - B)

    height = max(H, T + LEGEND_ROW * (len(points) + 1))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W + LEGEND_W}" height="{height}" '
           f'viewBox="0 0 {W + LEGEND_W} {height}" font-family="sans-serif" font-size="11">',
           f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#888"/>']
    for x in _ticks(x0, x1):
        out.append(f'<line x1="{px(x):.1f}" y1="{T}" x2="{px(x):.1f}" y2="{H - B}" stroke="#eee"/>'
                   f'<text x="{px(x):.1f}" y="{H - B + 14}" text-anchor="middle">{x:g}</text>')
    for y in _ticks(y0, y1):
        out.append(f'<line x1="{L}" y1="{py(y):.1f}" x2="{W - R}" y2="{py(y):.1f}" stroke="#eee"/>'
                   f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    out.append(f'<line x1="{px(0):.1f}" y1="{T}" x2="{px(0):.1f}" y2="{H - B}" stroke="#bbb" stroke-dasharray="4 3"/>'
               f'<line x1="{L}" y1="{py(0):.1f}" x2="{W - R}" y2="{py(0):.1f}" stroke="#bbb" stroke-dasharray="4 3"/>')
    for i, p in enumerate(points):
        c = PALETTE[i % len(PALETTE)]
        cx, cy = px(p["x"]), py(p["y"])
        fill = "white" if p.get("hollow") else c
        out.append(f'<line x1="{px(p["x"] - p["dx"]):.1f}" y1="{cy:.1f}" x2="{px(p["x"] + p["dx"]):.1f}" '
                   f'y2="{cy:.1f}" stroke="{c}"/><line x1="{cx:.1f}" y1="{py(p["y"] - p["dy"]):.1f}" '
                   f'x2="{cx:.1f}" y2="{py(p["y"] + p["dy"]):.1f}" stroke="{c}"/>'
                   f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" stroke="{c}" fill="{fill}"/>'
                   f'<text x="{cx + 5:.1f}" y="{cy - 5:.1f}" fill="{c}">{html.escape(p["key"])}</text>')
        ly = T + LEGEND_ROW * (i + 0.5)
        out.append(f'<circle cx="{W + 6}" cy="{ly:.1f}" r="4" stroke="{c}" fill="{fill}"/>'
                   f'<text x="{W + 16}" y="{ly + 4:.1f}">{html.escape(p["key"])}  '
                   f'{html.escape(p["label"])}</text>')
    out.append(f'<text x="{(L + W - R) / 2:.1f}" y="{H - 12}" text-anchor="middle">{html.escape(xlabel)}</text>'
               f'<text transform="translate(14 {(T + H - B) / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">{html.escape(ylabel)}</text></svg>')
    return "\n".join(out)
