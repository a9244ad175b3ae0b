"""Does ES fail to learn a task because it is broken, or because its signal does not generalise?

Runs ES's own loop (population scoring on both cores, z-scores, seeded update) in two
ways on the embedded model and prints, every few steps, the unperturbed model's reward
on the batch ES is scored on and its greedy accuracy on the task's dev split:
- `fixed`: the same training batch every step. A working ES climbs that batch's reward.
- `fresh`: a new batch every step, as `clbench run` does.
If `fixed` climbs while dev accuracy stays put, the estimator works and what it finds is
specific to the items it saw.
Run: .venv/bin/python benchmarks/es_fixed_batch.py [--mode fixed|fresh] [--steps 40] [--model PATH]
"""
import argparse
import os
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from clbench.generation import generate_tasks  # noqa: E402
from clbench.methods.es import ES, ESConfig, Noise, _mix, apply_update, zscore  # noqa: E402
from clbench.model import load_model  # noqa: E402
from clbench.population import Batch, LocalProcessBackend  # noqa: E402
from clbench.registry import Registry  # noqa: E402


def greedy_scores(lm, fam, items) -> tuple[float, float]:
    """(mean reward, accuracy) of the unperturbed model, greedy, the task's own scorer."""
    comps, _ = generate_tasks([(fam, items)], lm.model, lm.tokenizer)
    scores = fam.score_many(items, comps[0])
    return sum(s.reward for s in scores) / len(scores), sum(s.correct for s in scores) / len(scores)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["fixed", "fresh"], default="fixed")
    ap.add_argument("--task", default="countdown")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--every", type=int, default=10, help="report every N steps")
    ap.add_argument("--sigma", type=float, default=ESConfig().sigma)
    ap.add_argument("--alpha", type=float, default=ESConfig().alpha)
    ap.add_argument("--batch", type=int, default=ESConfig().batch_size)
    ap.add_argument("--dev-items", type=int, default=200)
    ap.add_argument("--model", default="embedded", help="'embedded' or a model folder (a candidate base)")
    args = ap.parse_args()

    reg = Registry.load()
    fam = reg.task(args.task)
    lm = load_model(args.model)
    train, dev = fam.split("train"), fam.split("dev")[: args.dev_items]
    fixed = random.Random(1).sample(train, args.batch)
    es, noise = ES(ESConfig(batch_size=args.batch)), Noise(args.sigma)
    pop = LocalProcessBackend(lm.model, lm.tokenizer, reg, lm.path)
    print(f"ES on {args.task}, {args.mode} batch of {args.batch}, N={es.config.population}, "
          f"sigma={args.sigma}, alpha={args.alpha}")
    print("step | reward on the fixed batch | dev accuracy % | seconds")
    start = time.time()
    try:
        for step in range(args.steps + 1):
            if step % args.every == 0 or step == args.steps:
                reward, _ = greedy_scores(lm, fam, fixed)
                _, dev_acc = greedy_scores(lm, fam, dev)
                print(f"{step:4d} | {reward:.3f} | {100 * dev_acc:.1f} | {time.time() - start:.0f}", flush=True)
            if step == args.steps:
                break
            items = fixed if args.mode == "fixed" else random.Random(_mix(0, step)).sample(train, args.batch)
            members = es.members(_mix(0, 0, step))
            rewards, _ = pop.evaluate(noise, members, [Batch(args.task, items)])
            pop.apply(apply_update, noise, members, zscore([r[0] for r in rewards]), args.alpha, None)
    finally:
        pop.close()


if __name__ == "__main__":
    main()
