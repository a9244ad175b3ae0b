"""Helper of benchmarks/gpu_check.sh: pick or build the model, time batched generation,
and summarise the ES and GRPO runs (steps/s, tokens/s, peak memory).

`prepare`: a local model folder ($CLBENCH_GPU_MODEL), else Qwen/Qwen2.5-0.5B-Instruct
if it is in the Hugging Face cache, else a randomly initialised model of that
architecture built from the shipped config (no download; the char tokenizer
stands in for Qwen's, which changes what a token is, not what it costs).
`--dry-run` shrinks the random model so the whole script runs on a CPU in seconds.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent
CONFIG = HERE / "qwen2.5-0.5b-instruct.config.json"
HUB_NAME = "Qwen/Qwen2.5-0.5B-Instruct"
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def prepare(out: Path, dry_run: bool) -> str:
    import os

    from clbench.model import _in_hub_cache, build_char_tokenizer

    local = os.environ.get("CLBENCH_GPU_MODEL")
    if local and not dry_run:
        return local
    if _in_hub_cache(HUB_NAME) and not dry_run:
        return HUB_NAME
    from transformers import AutoConfig, AutoModelForCausalLM

    tok = build_char_tokenizer()
    tok.chat_template = CHATML
    fields = {k: v for k, v in json.loads(CONFIG.read_text()).items() if k not in ("architectures", "torch_dtype")}
    fields.update(pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None)
    if dry_run:  # same architecture, toy size: checks the script's logic on a CPU
        fields.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=1, vocab_size=512, max_window_layers=2)
    cfg = AutoConfig.for_model(**fields)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def bench_generate(model_path: str, device: str, batch: int, tokens: int) -> dict:
    """One batched greedy generation of exactly `tokens` new tokens per prompt."""
    from clbench.model import load_model

    lm = load_model(model_path, dtype="bfloat16", device=device)
    enc = lm.tokenizer(["Using the numbers [19, 36, 55, 7], create an equation that equals 65."] * batch,
                       return_tensors="pt", padding=True, add_special_tokens=False).to(lm.model.device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    t = time.time()
    with torch.no_grad():
        lm.model.generate(**enc, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                          pad_token_id=lm.tokenizer.pad_token_id)
    if device == "cuda":
        torch.cuda.synchronize()
    s = time.time() - t
    return {"batch": batch, "new_tokens": tokens, "seconds": round(s, 2),
            "generated_tokens_per_s": round(batch * tokens / s, 1),
            "peak_gpu_GiB": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None,
            "params_M": round(sum(p.numel() for p in lm.model.parameters()) / 1e6, 1)}


def summarize(run: Path) -> dict:
    if not (run / "result.json").exists():
        return {"run": run.name, "status": "no result.json (failed or timed out; see its log)"}
    r = json.loads((run / "result.json").read_text())
    c, steps = r["cost"], sum(r["budget"]["steps_per_task"].values())
    wall = c["wall_seconds"]
    return {"run": run.name, "method": r["method"]["name"], "steps": steps, "wall_s": wall,
            "steps_per_s": round(steps / wall, 4),
            "forward_tokens_per_s": round(c["forward_tokens"] / wall, 1),
            "backward_tokens_per_s": round(c["backward_tokens"] / wall, 1),
            "peak_gpu_GiB": None if c.get("peak_gpu_bytes") is None else round(c["peak_gpu_bytes"] / 2**30, 2),
            "peak_rss_GiB": round(c["peak_rss_bytes"] / 2**30, 2),
            "device": r["environment"].get("device"), "dtype": r["model"]["dtype"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("out", type=Path)
    p.add_argument("--dry-run", action="store_true")
    g = sub.add_parser("generate")
    g.add_argument("model")
    g.add_argument("--device", default="cuda")
    g.add_argument("--batch", type=int, default=32)
    g.add_argument("--tokens", type=int, default=256)
    s = sub.add_parser("summarize")
    s.add_argument("runs", nargs="+", type=Path)
    a = ap.parse_args()
    if a.cmd == "prepare":
        print(prepare(a.out, a.dry_run))
    elif a.cmd == "generate":
        print(json.dumps({"generate": bench_generate(a.model, a.device, a.batch, a.tokens)}))
    else:
        for run in a.runs:
            print(json.dumps(summarize(run)))


if __name__ == "__main__":
    main()
