"""`clbench report`: figures from result.json files, and one self-contained HTML page.

Forgetting curves (every column over global steps, task boundaries marked), the
accuracy matrix as a heatmap, the Pareto front of new-task against probe accuracy
over the curve points (the papers' convex ES front), drift over steps, and sparsity
by component and by layer at the end of the run; with several runs the figures are
overlaid. Reads only the JSON (validated by RunResult); executes nothing.
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


def _pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both axes, sorted by x (both axes: higher is better)."""
    front = [p for p in points
             if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)]
    return sorted(set(front))


def pareto_figure(runs: Runs):
    """Each curve point as (mean new-task score, mean probe score) on the dev subset."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for k, (label, r) in enumerate(runs):
        tasks, probes = r.sequence.tasks, r.sequence.probes
        pts = [(100 * sum(c.scores[t] for t in tasks) / len(tasks),
                100 * sum(c.scores[p] for p in probes) / len(probes))
               for c in r.curves if probes and all(x in c.scores for x in tasks + probes)]
        if not pts:
            continue
        color = f"C{k}"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, alpha=0.3, lw=0.8)
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=color, s=12, label=label)
        front = _pareto_front(pts)
        ax.plot([p[0] for p in front], [p[1] for p in front], color=color, lw=2, marker="o", ms=4)
        ax.scatter([pts[0][0]], [pts[0][1]], color=color, marker="*", s=90)  # the base model
    ax.set_xlabel("new tasks: mean dev accuracy (%)")
    ax.set_ylabel("probes: mean dev accuracy (%)")
    ax.set_title("checkpoints (star: start; thick: Pareto front)", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def sparsity_figure(runs: Runs):
    """Share of unchanged entries (|delta| <= tau) after the last task, in the weights'
    own dtype and after casting to bfloat16, by component and by layer; bars per run."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 6), squeeze=False)
    width = 0.8 / len(runs)
    for row, key in enumerate(("sparsity", "sparsity_bf16")):
        for col, group in enumerate(("by_component", "by_layer")):
            ax = axes[row][col]
            for k, (label, r) in enumerate(runs):
                geo = r.geometry[r.sequence.tasks[-1]].model_dump() if r.geometry else {}
                if key not in geo:
                    continue
                tau = sorted(geo[key])[0]
                vals = geo[key][tau][group]
                names = sorted(vals, key=lambda n: (len(n), n))  # layer 10 after layer 9
                ax.bar([i + k * width for i in range(len(names))], [100 * vals[n] for n in names],
                       width=width, label=label, color=f"C{k}")
                ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names,
                              rotation=30, ha="right", fontsize=8)
                ax.set_title(f"{group.replace('_', ' ')}, "
                             f"{'bfloat16' if key.endswith('bf16') else 'own dtype'}, tau {tau}", fontsize=9)
            ax.set_ylim(0, 100)
            ax.set_ylabel("unchanged entries (%)")
    axes[0][1].legend(fontsize=7)
    fig.tight_layout()
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


CAPTIONS = {
    "curves": "Every column (new tasks and probes) on the dev subset over global update steps; "
              "dashed lines mark task boundaries.",
    "matrix": "Accuracy matrix on the full test splits: row 0 is the base model, row i follows task i.",
    "pareto": "Each checkpoint as (mean new-task accuracy, mean probe accuracy); the thick line "
              "joins the checkpoints no other one beats on both.",
    "drift": "Frobenius norm of the weights' change from the base model.",
    "sparsity": "Share of weight entries left unchanged after the last task, by component and by "
                "layer, in the weights' own dtype and after casting to bfloat16.",
}


def build_report(run_dirs: list[Path], output: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [(f"{Path(d).name}", RunResult.read(Path(d) / "result.json")) for d in run_dirs]
    figures = {"curves.png": curves_figure(runs)}
    for k, (label, r) in enumerate(runs):
        figures[f"matrix_{k}.png"] = matrix_figure(label, r)
    figures.update({"pareto.png": pareto_figure(runs), "drift.png": drift_figure(runs),
                    "sparsity.png": sparsity_figure(runs)})
    parts = [f"<h1>clbench report: {html.escape(runs[0][1].sequence.name)}</h1>"]
    for label, r in runs:
        s = r.summary
        parts.append(f"<p>{html.escape(label)} ({html.escape(r.method.name)}, seed {r.seed}): "
                     f"ACC {100 * s.acc:.1f}, BWT {'n/a' if s.bwt is None else f'{100 * s.bwt:+.1f}'}, "
                     "probes " + ", ".join(f"{html.escape(k)} {100 * v:+.1f}"
                                           for k, v in s.probe_delta.items()) + "</p>")
    for name, fig in figures.items():
        data = _fig_bytes(fig)
        plt.close(fig)
        write_bytes(output / name, data)
        caption = CAPTIONS.get(name.split("_")[0].removesuffix(".png"), "")
        parts.append(f'<h2>{name[:-4]}</h2><p>{caption}</p><img alt="{name}" '
                     f'src="data:image/png;base64,{base64.b64encode(data).decode()}">')
    page = output / "report.html"
    write_text(page, "<!doctype html><meta charset='utf-8'><title>clbench report</title>"
               "<style>body{font-family:sans-serif;max-width:1400px}img{max-width:100%}</style>"
               "<body>" + "\n".join(parts) + "</body>")
    return page
