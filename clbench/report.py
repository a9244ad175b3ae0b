"""`clbench report`: figures from result.json files, and one self-contained HTML page.

Forgetting curves (every column over global steps, task boundaries marked), drift
over steps, and the accuracy matrix as a heatmap; with several runs the curves
are overlaid. Reads only the JSON (validated by RunResult); executes nothing.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from clbench.atomic import write_bytes, write_text
from clbench.results import RunResult


def _fig_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


Runs = list[tuple[str, RunResult]]  # (label, result): folder names tell overlaid runs apart


def curves_figure(runs: Runs):
    import matplotlib.pyplot as plt

    columns = runs[0][1].matrix.columns
    fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3), sharey=True, squeeze=False)
    for ax, col in zip(axes[0], columns):
        for label, r in runs:
            pts = [(c.global_step, 100 * c.scores[col]) for c in r.curves if col in c.scores]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=label)
            for c in r.curves:
                if c.step == 0 and c.global_step > 0:
                    ax.axvline(c.global_step, color="grey", lw=0.8, ls="--")  # task boundary
        ax.set_title(col)
        ax.set_xlabel("update step")
    axes[0][0].set_ylabel("dev accuracy (%)")
    axes[0][-1].legend(fontsize=7)
    return fig


def drift_figure(runs: Runs):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    for label, r in runs:
        ax.plot([c.global_step for c in r.curves], [c.drift_l2 for c in r.curves], marker=".", label=label)
    ax.set_xlabel("update step")
    ax.set_ylabel("drift ||theta - theta_base||")
    ax.legend(fontsize=7)
    return fig


def matrix_figure(label: str, r: RunResult):
    import matplotlib.pyplot as plt

    m = r.matrix
    fig, ax = plt.subplots(figsize=(1.2 * len(m.columns) + 1, 0.6 * len(m.rows) + 1))
    ax.imshow([[100 * v for v in row] for row in m.values], vmin=0, vmax=100, cmap="viridis")
    ax.set_xticks(range(len(m.columns)), m.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(m.rows)), [f"after {x}" if i else x for i, x in enumerate(m.rows)])
    for i, row in enumerate(m.values):
        for j, v in enumerate(row):
            ax.text(j, i, f"{100 * v:.1f}", ha="center", va="center", color="white" if v < 0.6 else "black")
    ax.set_title(f"{label}: accuracy matrix (test, %)")
    return fig


def build_report(run_dirs: list[Path], output: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [(f"{Path(d).name}", RunResult.read(Path(d) / "result.json")) for d in run_dirs]
    figures = {"curves.png": curves_figure(runs), "drift.png": drift_figure(runs)}
    for k, (label, r) in enumerate(runs):
        figures[f"matrix_{k}.png"] = matrix_figure(label, r)
    parts = [f"<h1>clbench report: {html.escape(runs[0][1].sequence.name)}</h1>"]
    for name, fig in figures.items():
        data = _fig_bytes(fig)
        plt.close(fig)
        write_bytes(output / name, data)
        parts.append(f'<h2>{name[:-4]}</h2><img alt="{name}" src="data:image/png;base64,'
                     f'{base64.b64encode(data).decode()}">')
    for label, r in runs:
        s = r.summary
        parts.append(f"<p>{html.escape(label)}: ACC {100 * s.acc:.1f}, BWT "
                     f"{'n/a' if s.bwt is None else f'{100 * s.bwt:+.1f}'}, probes "
                     + ", ".join(f"{html.escape(k)} {100 * v:+.1f}" for k, v in s.probe_delta.items()) + "</p>")
    page = output / "report.html"
    write_text(page, "<!doctype html><meta charset='utf-8'><title>clbench report</title>"
               "<body style='font-family:sans-serif'>" + "\n".join(parts) + "</body>")
    return page
