"""How latent is each skill of a base model? Greedy accuracy against pass@k when sampling.

ES and RL post-training sharpen answers a model can already sample (README, "The
embedded benchmark"); a new task whose pass@8 at temperature 1 is far above its
greedy accuracy has room for that. Prints, per column of a sequence (generative tasks
and probes; multiple-choice columns get their log-likelihood accuracy only), greedy
accuracy and pass@k on a split, scored by each family's own scorer. Feeds the model card.
Run: .venv/bin/python benchmarks/base_skills.py [MODEL] [--sequence S] [--split test] [--limit N]
"""
import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402

from clbench.generation import decode_until_stop, generate_for, task_prompts, task_stop_ids  # noqa: E402
from clbench.harness import Harness  # noqa: E402
from clbench.model import load_model  # noqa: E402
from clbench.registry import Registry  # noqa: E402


@torch.no_grad()
def sampled(task, model, tok, items: list[dict], k: int, temperature: float, seed: int) -> list[list[str]]:
    """k completions per item at the temperature, cut at the task's stop tokens."""
    torch.manual_seed(seed)
    stops = task_stop_ids(task, tok)
    enc = tok(task_prompts(task, tok, items), return_tensors="pt", padding=True, add_special_tokens=False)
    gen = model.generate(**enc, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                         num_return_sequences=k, max_new_tokens=task.max_new_tokens,
                         eos_token_id=stops, pad_token_id=tok.pad_token_id)
    rows = gen[:, enc["input_ids"].shape[1]:].tolist()  # (items * k, new tokens)
    texts = [decode_until_stop(tok, r, stops) for r in rows]
    return [texts[i * k:(i + 1) * k] for i in range(len(items))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="embedded")
    ap.add_argument("--sequence", default="math-code-cipher")
    ap.add_argument("--split", default="test", choices=["dev", "test"])
    ap.add_argument("--limit", type=int, default=None, help="first N items per column")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    reg = Registry.load()
    seq = reg.sequence(args.sequence)
    lm = load_model(args.model)
    harness = Harness(lm.model, lm.tokenizer)
    print(f"model {args.model}, {args.split} split, pass@{args.k} at temperature {args.temperature}")
    print(f"| column | items | greedy % | pass@{args.k} % | sampled, per sample % | seconds |")
    print("|---|---|---|---|---|---|")
    for name in seq.tasks + seq.probes:
        task, start = reg.task(name), time.time()
        items = task.split(args.split)[: args.limit]
        if task.kind == "choice":
            acc = harness.score([name], limit=args.limit, split=args.split)[name]
            print(f"| {name} | {len(items)} | {100 * acc:.1f} (log-likelihood choice) | - | - | "
                  f"{time.time() - start:.0f} |", flush=True)
            continue
        greedy, _ = generate_for(task, lm.model, lm.tokenizer, items)
        g = sum(s.correct for s in task.scores(items, greedy)) / len(items)
        hits, per = 0, 0
        for b in range(0, len(items), 64):
            chunk = items[b:b + 64]
            comps = sampled(task, lm.model, lm.tokenizer, chunk, args.k, args.temperature, args.seed + b)
            for item, cs in zip(chunk, comps):
                ok = [s.correct for s in task.scores([item] * len(cs), cs)]
                hits += any(ok)
                per += sum(ok)
        print(f"| {name} | {len(items)} | {100 * g:.1f} | {100 * hits / len(items):.1f} | "
              f"{100 * per / (len(items) * args.k):.1f} | {time.time() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
