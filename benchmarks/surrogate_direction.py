"""Is es-guided's surrogate gradient an ascent direction for the task on the base model?

Guided ES (arXiv 1806.10230) helps only if the subspace holds directions that raise the
reward. This takes one training batch of countdown at the base weights, computes each
surrogate's gradient as es-guided does (methods/es_guided.py: correct sampled answers,
correct greedy answers, reference answers), steps the base by eta along the unit
direction and scores greedy dev accuracy; it also counts the batch's lazy answers (the
numbers in prompt order joined by `+`, the embedded base's planted heuristic).

  .venv/bin/python benchmarks/surrogate_direction.py            # ~1 minute on 2 cores
"""
from __future__ import annotations

import argparse

import torch

from clbench.generation import generate_for
from clbench.methods.es_guided import surrogate_gradient, surrogate_pairs
from clbench.model import load_model, param_copy
from clbench.registry import Registry


def accuracy(task, model, tokenizer, items) -> float:
    comps, _ = generate_for(task, model, tokenizer, items)
    return sum(s.correct for s in task.scores(items, comps)) / len(items)


def describe(surrogate: str, items, samples: int, comps: list[str], pairs) -> str:
    """What a surrogate's generation held: correct answers and lazy sums."""
    if not comps:
        return "reference answers"
    n = samples if surrogate == "correct-sampled" else 1
    lazy = sum(c == "+".join(str(x) for x in i["nums"]) for i, c in zip([i for i in items for _ in range(n)], comps))
    return f"{len(pairs)} correct of {len(comps)}, {lazy} lazy answers"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--batch", type=int, default=64, help="training prompts (es-guided's batch_size)")
    ap.add_argument("--samples", type=int, default=4, help="samples per prompt (es-guided's samples)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--etas", type=float, nargs="+", default=[0.1, 0.3, 1.0, 3.0])
    ap.add_argument("--surrogates", nargs="+", default=["correct-sampled", "correct-greedy", "reference"])
    args = ap.parse_args()
    lm = load_model(args.model)
    model, tok = lm.model, lm.tokenizer
    model.eval()
    task = Registry.load().task("countdown")
    items, dev = task.split("train")[: args.batch], task.split("dev")
    base = param_copy(model)
    print(f"base dev countdown: {100 * accuracy(task, model, tok, dev):.1f}")
    print("| surrogate | its batch | " + " | ".join(f"eta {e:g}" for e in args.etas) + " |")
    print("|---|---|" + "---|" * len(args.etas))
    for kind in args.surrogates:
        pairs, comps, _ = surrogate_pairs(task, model, tok, items, kind, args.samples, args.seed)
        g = surrogate_gradient(model, tok, pairs)  # (D,)
        u = g / g.norm()
        row = []
        for eta in args.etas:
            with torch.no_grad():
                start = 0
                for name, p in model.named_parameters():
                    p.copy_(base[name] + eta * u[start : start + p.numel()].view_as(p))
                    start += p.numel()
            row.append(f"{100 * accuracy(task, model, tok, dev):.1f}")
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(base[name])
        print(f"| {kind} | {describe(kind, items, args.samples, comps, pairs)} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
