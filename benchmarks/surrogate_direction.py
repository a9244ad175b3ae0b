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

from clbench.generation import correct_completion, generate_for, task_prompts
from clbench.methods.es_guided import surrogate_gradient
from clbench.model import load_model, param_copy
from clbench.registry import Registry


def accuracy(task, model, tokenizer, items) -> float:
    comps, _ = generate_for(task, model, tokenizer, items)
    return sum(s.correct for s in task.scores(items, comps)) / len(items)


def surrogate_pairs(kind: str, task, model, tokenizer, items, samples: int, seed: int):
    """(prompt, completion) pairs of one surrogate, and what its generation held."""
    prompts = task_prompts(task, tokenizer, items)
    if kind == "reference":
        return [(p, correct_completion(task, i)) for p, i in zip(prompts, items)], ""
    n = samples if kind == "sampled" else 1
    asked = [i for i in items for _ in range(n)]
    comps, _ = generate_for(task, model, tokenizer, asked, sample_seed=seed if kind == "sampled" else None)
    stop = task.stop[0] if task.stop else ""
    scores = task.scores(asked, comps)
    pairs = [(p, c + stop) for p, c, s in zip([p for p in prompts for _ in range(n)], comps, scores) if s.correct]
    lazy = sum(c == "+".join(str(x) for x in i["nums"]) for i, c in zip(asked, comps))
    return pairs, f"{len(pairs)} correct of {len(asked)}, {lazy} lazy answers"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--batch", type=int, default=64, help="training prompts (es-guided's batch_size)")
    ap.add_argument("--samples", type=int, default=4, help="samples per prompt (es-guided's samples)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--etas", type=float, nargs="+", default=[0.1, 0.3, 1.0, 3.0])
    ap.add_argument("--surrogates", nargs="+", default=["sampled", "greedy", "reference"])
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
        pairs, held = surrogate_pairs(kind, task, model, tok, items, args.samples, args.seed)
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
        print(f"| {kind} | {held or 'reference answers'} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
