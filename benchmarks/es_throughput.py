"""ES population scoring vs plain batched greedy inference, same model and prompts.

Target (issue: runner and ES): population scoring at >= 80% of the generation
throughput (tokens/s) of plain batched greedy inference; perturb/restore/update
must not dominate an iteration. Prints both figures from one run.
Run: .venv/bin/python benchmarks/es_throughput.py [--population 30] [--batch 32] [--iters 3]
"""
import argparse
import os
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402

from clbench.generation import generate  # noqa: E402
from clbench.methods.es import ES, ESConfig, Noise, _mix, apply_update, zscore  # noqa: E402
from clbench.model import load_model  # noqa: E402
from clbench.population import Batch, InProcessBackend, LocalProcessBackend  # noqa: E402
from clbench.registry import Registry  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--population", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--task", default="countdown")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    reg = Registry.load()
    fam = reg.task(args.task)
    lm = load_model("embedded")
    items = random.Random(0).sample(fam.split("train"), args.batch)
    prompts = [i["prompt"] for i in items]

    # plain batched greedy inference: the same completions, no perturbation, no scoring
    t = time.time()
    tokens = 0
    for _ in range(args.iters * args.population):
        tokens += generate(lm.model, lm.tokenizer, prompts, fam.max_new_tokens, batch_size=args.batch)[1]
    plain = tokens / (time.time() - t)
    print(f"plain batched greedy inference (1 process, {torch.get_num_threads()} threads): {plain:,.0f} tokens/s")

    es = ES(ESConfig(population=args.population, batch_size=args.batch))
    noise = Noise(0.02)
    for name, backend in (("inprocess", InProcessBackend(lm.model, lm.tokenizer, reg)),
                          ("local", LocalProcessBackend(lm.model, lm.tokenizer, reg, lm.path))):
        gen_time = upd_time = 0.0
        tokens = 0
        for it in range(args.iters):
            members = es.members(_mix(0, 0, it))
            t = time.time()
            rewards, n = backend.evaluate(noise, members, [Batch(args.task, items)])
            gen_time += time.time() - t
            tokens += n
            t = time.time()
            backend.apply(apply_update, noise, members, zscore([r[0] for r in rewards]), 0.005, None)
            upd_time += time.time() - t
        backend.close()
        rate = tokens / gen_time
        print(f"ES population scoring, {name:9s}: {rate:,.0f} tokens/s = {100 * rate / plain:.0f}% of plain; "
              f"per iteration {gen_time / args.iters:.2f} s scoring (incl. perturb/restore), "
              f"{upd_time / args.iters:.2f} s update")
    # perturb + restore cost alone, per member
    t = time.time()
    for k in range(10):
        noise.perturb(lm.model, es.members(k)[0], 1.0)
        noise.perturb(lm.model, es.members(k)[0], -1.0)
    print(f"perturb+restore per member: {(time.time() - t) / 10 * 1000:.0f} ms")


if __name__ == "__main__":
    main()
