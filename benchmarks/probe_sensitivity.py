"""Probe sensitivity: each column's score after a seeded random-direction drift.

Adds delta = f * ||theta|| * u (u a random unit direction over all parameters)
to the base weights for f in 10/20/40/80% and 3 seeds, and scores every column
of math-then-code on its test split through the harness. A probe that cannot
move under drift cannot show forgetting. Feeds the model card.
Run: .venv/bin/python benchmarks/probe_sensitivity.py [MODEL] [--limit N] [--columns a,b]
"""
import argparse
import os
import statistics

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402

from clbench.harness import Harness  # noqa: E402
from clbench.model import load_model  # noqa: E402
from clbench.registry import Registry  # noqa: E402


def drifted(params: dict, fraction: float, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    noise = {k: torch.randn(v.shape, generator=gen) for k, v in params.items()}
    norm = torch.sqrt(sum((v.double() ** 2).sum() for v in params.values()))
    nnorm = torch.sqrt(sum((n.double() ** 2).sum() for n in noise.values()))
    scale = float(fraction * norm / nnorm)
    return {k: params[k] + scale * noise[k] for k in params}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="embedded")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--columns", help="comma-separated columns (default: math-then-code's)")
    ap.add_argument("--fractions", default="0,0.1,0.2,0.4,0.8", help="drift shares of the weights' norm")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    seq = Registry.load().sequence("math-then-code")
    cols = args.columns.split(",") if args.columns else seq.tasks + seq.probes
    lm = load_model(args.model)
    base = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
    h = Harness(lm.model, lm.tokenizer)
    print("| drift / norm of base weights | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for fraction in map(float, args.fractions.split(",")):
        runs = []
        for seed in range(args.seeds if fraction else 1):
            weights = drifted(base, fraction, seed) if fraction else base
            with torch.no_grad():
                for n, p in lm.model.named_parameters():
                    p.copy_(weights[n])
            runs.append(h.score(cols, limit=args.limit))
        cells = []
        for c in cols:
            vals = [100 * r[c] for r in runs]
            spread = (max(vals) - min(vals)) / 2
            cells.append(f"{statistics.mean(vals):.1f}" + (f" ± {spread:.1f}" if len(vals) > 1 else ""))
        print(f"| {int(fraction * 100)}% | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
