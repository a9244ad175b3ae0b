"""Peak memory of two update steps per method, against plain inference of the same model.

The papers' case for ES is memory: it needs only inference (arXiv 2509.24372).
This measures it on a randomly initialised Llama of about 0.3B parameters
(LlamaConfig, char tokenizer, saved to a temp dir), each method in a fresh
process: peak resident memory (ru_maxrss) and peak bytes held in tensors (the
torch profiler's allocation events, summed in time order from before the model
loads). The runner's own copies (base weights for geometry and KL) are left out:
the method gets a bare context whose task-start weights are the live ones.
Every worker imports TRL, so import overhead cancels in the differences.

  .venv/bin/python benchmarks/peak_memory.py            # ~0.3B, CPU; a few minutes
  .venv/bin/python benchmarks/peak_memory.py --layers 2 # quick check
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

METHODS = ["inference", "es", "grpo", "ewc"]


def build_model(path: str, layers: int, hidden: int, inter: int) -> int:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from clbench.model import build_char_tokenizer

    tok = build_char_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=inter,
                      num_hidden_layers=layers, num_attention_heads=hidden // 64,
                      num_key_value_heads=hidden // 64, max_position_embeddings=128,
                      tie_word_embeddings=True, pad_token_id=tok.pad_token_id,
                      eos_token_id=tok.eos_token_id, bos_token_id=None)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def tensor_peak(prof) -> dict[str, int]:
    """Largest running sum of allocation events, per device type."""
    cur: dict[str, int] = {}
    peak: dict[str, int] = {}
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    for e in events:
        dev = str(e.device_type()).split(".")[-1].lower()
        cur[dev] = cur.get(dev, 0) + e.nbytes()
        peak[dev] = max(peak.get(dev, 0), cur[dev])
    return peak


def worker(method: str, path: str, device: str) -> dict:
    import torch
    import trl  # noqa: F401  imported everywhere so that import overhead cancels
    from torch.profiler import ProfilerActivity, profile

    from clbench.model import load_model
    from clbench.population import InProcessBackend
    from clbench.registry import Registry
    from clbench.runner import RunContext, params

    torch.set_num_threads(2)
    reg = Registry.load()
    task = reg.task("countdown")
    rss_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    t0 = time.time()
    with profile(activities=acts, profile_memory=True) as prof:
        lm = load_model(path, device=device)

        class BareRunner:
            """What a method may reach through ctx, without the runner's weight copies."""
            task_start = params(lm.model)  # the live weights: at step 0 they are the task start
            steps = 0

            def on_step(self, ctx, *a):
                self.steps += 1

            def population(self, backend, workers):
                return InProcessBackend(lm.model, lm.tokenizer, reg)

        runner = BareRunner()
        items = task.split("train")[:4]
        if method == "inference":
            from clbench.generation import generate

            generate(lm.model, lm.tokenizer, [i["prompt"] for i in items], task.max_new_tokens)
        else:
            m_cls = reg.method(method)
            small = {"es": dict(population=4, batch_size=4, backend="inprocess"),
                     "grpo": dict(num_generations=4, prompts_per_step=1),
                     "ewc": dict(num_generations=4, prompts_per_step=1, fisher_examples=4)}[method]
            m = m_cls(m_cls.Config(**small))
            if method == "ewc":  # a Fisher and anchor from an earlier task, so the penalty is live
                m.end_task(task, RunContext(lm.model, lm.tokenizer, reg, {}, 0, 0, 2, 0, None, [],
                                            runner, task.name))
            ctx = RunContext(lm.model, lm.tokenizer, reg, {}, 0, 1, 2, 0, None, [], runner, task.name)
            m.learn(task, ctx)
            assert runner.steps == 2, runner.steps
    peak = tensor_peak(prof)
    out = {"method": method, "rss_after_imports": rss_imports,
           "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
           "peak_tensors_cpu": peak.get("cpu", 0), "seconds": round(time.time() - t0, 1)}
    if device == "cuda":
        out["peak_gpu_allocated"] = torch.cuda.max_memory_allocated()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--intermediate", type=int, default=2816)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print("RESULT " + json.dumps(worker(a.worker, a.model, a.device)))
        return
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryDirectory(prefix="clbench-mem-") as d:
        n = build_model(d, a.layers, a.hidden, a.intermediate)
        print(f"random Llama: {n / 1e6:.0f}M parameters ({4 * n / 2**30:.2f} GiB in float32), "
              f"{a.layers} layers x {a.hidden}; device {a.device}; two update steps per method")
        rows = []
        for m in a.methods:
            p = subprocess.run([sys.executable, __file__, "--worker", m, "--model", d, "--device", a.device],
                               capture_output=True, text=True, env=env)
            line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{m} failed:\n{p.stderr[-3000:]}")
            rows.append(json.loads(line[7:]))
    gib = 2**30
    base = next((r for r in rows if r["method"] == "inference"), rows[0])
    print(f"{'method':<10} {'peak RSS':>9} {'vs infer':>9} {'tensors':>9} {'vs infer':>9} "
          f"{'x weights':>9} {'seconds':>8}   (GiB; 'x weights' = extra tensor bytes / weight bytes)")
    for r in rows:
        extra = r["peak_tensors_cpu"] - base["peak_tensors_cpu"]
        print(f"{r['method']:<10} {r['peak_rss'] / gib:9.2f} {(r['peak_rss'] - base['peak_rss']) / gib:+9.2f} "
              f"{r['peak_tensors_cpu'] / gib:9.2f} {extra / gib:+9.2f} {extra / (4 * n):9.2f} {r['seconds']:8.1f}"
              + (f"   GPU {r['peak_gpu_allocated'] / gib:.2f}" if "peak_gpu_allocated" in r else ""))
    print(f"RSS after imports (torch, transformers, trl): {base['rss_after_imports'] / gib:.2f} GiB. "
          "Not in these figures: the runner's own copies (base weights for geometry and KL, weights at "
          f"the task start), {2 * 4 * n / gib:.2f} GiB (two float32 copies) in any method's run.")


if __name__ == "__main__":
    main()
