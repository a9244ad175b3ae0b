"""Peak memory of two update steps per method, against plain inference of the same model.

The papers' case for ES is memory: it needs only inference (arXiv 2509.24372).
This measures it on a randomly initialised Llama of about 0.3B parameters
(LlamaConfig, char tokenizer, saved to a temp dir). Each method runs twice, each
time in a fresh process:
- under the torch profiler, for the peak bytes held in tensors (allocation events
  summed in time order from before the model loads): what the method itself needs;
- without it, for the peak resident memory (VmHWM of the process, which exec
  resets; ru_maxrss would inherit the parent's peak, the 0.3B model it built).
  The profiler's own records would add to RSS, hence the second run.
Workers run with MALLOC_MMAP_THRESHOLD_=1 MiB so that freed weight-sized buffers go
back to the OS and RSS follows what is live; `--glibc-default` measures RSS as a
plain run sees it, where glibc keeps freed buffers (EWC's RSS then nearly doubles).
The runner's own copies (base weights for geometry and KL) are left out: the
method gets a bare context whose task-start weights are the live ones. Every
worker imports TRL, so import overhead cancels in the differences.

  .venv/bin/python benchmarks/peak_memory.py            # ~0.3B, CPU; about 6 minutes
  .venv/bin/python benchmarks/peak_memory.py --layers 2 # quick check
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

METHODS = ["inference", "es", "es-subtract", "es-guided", "grpo", "ewc"]
# es-subtract: ES restoring each member by regenerating and subtracting its noise instead of
# copying the weights back (exact restore costs one weight copy; subtracting leaves float
# rounding residue of about 1 ulp per member, which is why "copy" is the default).


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


def peak_rss() -> int:
    """This process's peak resident bytes since exec (Linux VmHWM)."""
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kib * 1024


def run_worker(method: str, path: str, device: str, env: dict, profile_tensors: bool) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, "--model", path, "--device", device]
    p = subprocess.run(cmd + ([] if profile_tensors else ["--no-tensor-profile"]),
                       capture_output=True, text=True, env=env)
    line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{method} failed:\n{p.stderr[-3000:]}")
    return json.loads(line[7:])


def worker(method: str, path: str, device: str, profile_tensors: bool = True) -> dict:
    import torch
    import trl  # noqa: F401  imported everywhere so that import overhead cancels
    from torch.profiler import ProfilerActivity, profile

    from clbench.context import RunContext, SpendRecorder
    from clbench.model import load_model, params
    from clbench.registry import Registry

    torch.set_num_threads(2)
    reg = Registry.load()
    task = reg.task("countdown")
    rss_imports = peak_rss()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    t0 = time.time()
    with (profile(activities=acts, profile_memory=True) if profile_tensors else contextlib.nullcontext()) as prof:
        lm = load_model(path, device=device)

        steps = []  # what the recorder saw: a context of plain values, without the runner's weight copies
        recorder = SpendRecorder(after_step=steps.append)
        start = params(lm.model)  # the live weights: at step 0 they are the task start

        items = task.split("train")[:4]
        if method == "inference":
            from clbench.generation import generate

            generate(lm.model, lm.tokenizer, [i["prompt"] for i in items], task.max_new_tokens)
        else:
            m_cls = reg.method(method.removesuffix("-subtract"))
            small = {"es": dict(population=4, batch_size=4),
                     # a refresh at each of the two steps, a backward pass and the subspace in
                     # memory (reference answers: a random model answers nothing right)
                     "es-guided": dict(population=4, batch_size=4, a=0.5,
                                       refresh_every=1, surrogate="reference"),
                     "es-subtract": dict(population=4, batch_size=4, restore="subtract"),
                     "grpo": dict(num_generations=4, prompts_per_step=1),
                     "ewc": dict(num_generations=4, prompts_per_step=1, fisher_examples=4)}[method]
            m = m_cls(m_cls.Config(**small))
            if method == "ewc":  # a Fisher and anchor from an earlier task, so the penalty is live
                m.end_task(task, RunContext(lm.model, lm.tokenizer, reg, task, steps=2,
                                            task_start_weights=start, recorder=recorder))
            ctx = RunContext(lm.model, lm.tokenizer, reg, task, task_index=1, steps=2,
                             task_start_weights=start, recorder=recorder)
            m.learn(task, ctx)
            assert len(steps) == 2, steps
            assert getattr(m, "refreshes", {"useful": 2})["useful"] == 2, m.refreshes
    peak = tensor_peak(prof) if profile_tensors else {}
    out = {"method": method, "rss_after_imports": rss_imports,
           "peak_rss": peak_rss(),
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
    ap.add_argument("--glibc-default", action="store_true",
                    help="measure RSS with glibc's default allocator settings (keeps freed buffers)")
    ap.add_argument("--no-tensor-profile", dest="profile_tensors", action="store_false",
                    help=argparse.SUPPRESS)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print("RESULT " + json.dumps(worker(a.worker, a.model, a.device, a.profile_tensors)))
        return
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if not a.glibc_default:
        env["MALLOC_MMAP_THRESHOLD_"] = str(2**20)
    with tempfile.TemporaryDirectory(prefix="clbench-mem-") as d:
        n = build_model(d, a.layers, a.hidden, a.intermediate)
        print(f"random Llama: {n / 1e6:.0f}M parameters ({4 * n / 2**30:.2f} GiB in float32), "
              f"{a.layers} layers x {a.hidden}; device {a.device}; two update steps per method")
        rows = []
        for m in a.methods:
            tensors = run_worker(m, d, a.device, env, profile_tensors=True)
            rss = run_worker(m, d, a.device, env, profile_tensors=False)
            rows.append({**tensors, "peak_rss": rss["peak_rss"], "rss_after_imports": rss["rss_after_imports"]})
    gib = 2**30
    base = next((r for r in rows if r["method"] == "inference"), rows[0])
    print(f"{'method':<10} {'peak RSS':>9} {'vs infer':>9} {'tensors':>9} {'vs infer':>9} "
          f"{'x weights':>9} {'seconds':>8}   (GiB; 'x weights' = extra tensor bytes / weight bytes)")
    for r in rows:
        extra = r["peak_tensors_cpu"] - base["peak_tensors_cpu"]
        print(f"{r['method']:<10} {r['peak_rss'] / gib:9.2f} {(r['peak_rss'] - base['peak_rss']) / gib:+9.2f} "
              f"{r['peak_tensors_cpu'] / gib:9.2f} {extra / gib:+9.2f} {extra / (4 * n):9.2f} {r['seconds']:8.1f}"
              + (f"   GPU {r['peak_gpu_allocated'] / gib:.2f}" if "peak_gpu_allocated" in r else ""))
    print(f"allocator: {'glibc default' if a.glibc_default else 'MALLOC_MMAP_THRESHOLD_=1 MiB'}; "
          f"seconds = the profiled run's. RSS after imports (torch, transformers, trl): {base['rss_after_imports'] / gib:.2f} GiB. "
          "Not in these figures: the runner's own copies (base weights for geometry and KL, weights at "
          f"the task start), {2 * 4 * n / gib:.2f} GiB (two float32 copies) in any method's run.")


if __name__ == "__main__":
    main()
