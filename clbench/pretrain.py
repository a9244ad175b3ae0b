"""`clbench pretrain-base`: reproduce the embedded base model from a seed.

The mixture teaches the probe skills (sort, reverse) well and the new tasks
(countdown, code, cipher) only a little, so a run can show both learning and
forgetting. Items from any family's dev or test split never enter the mixture.
"""
from __future__ import annotations

import math
import random
import time
from pathlib import Path

import torch

from clbench.atomic import replace_dir, write_json
from clbench.generation import correct_completion
from clbench.model import EMBEDDED_DIR, build_char_tokenizer, tiny_config

# Share of each family in the pretraining stream: probes dominate, new tasks are a taste.
MIXTURE = {"sort": 0.44, "reverse": 0.35, "countdown": 0.12, "code": 0.05, "cipher": 0.04}


class MixtureStream:
    """Deterministic stream of `prompt target\\n` strings from the task generators."""

    def __init__(self, families: dict, mixture: dict[str, float], seed: int):
        self.families = {n: families[n] for n in mixture}
        self.names = list(mixture)
        self.weights = [mixture[n] for n in self.names]
        self.rng = random.Random(seed)
        self.blocked = set().union(*(f.held_out_keys() for f in families.values()))

    def next_item(self) -> tuple[str, dict]:
        """(family name, item), never an item of any family's dev or test split."""
        while True:
            name = self.rng.choices(self.names, self.weights)[0]
            fam = self.families[name]
            item = fam.pretraining_sample(self.rng)
            if fam.key(item) not in self.blocked:
                return name, item

    def next_pair(self) -> tuple[str, str]:
        name, item = self.next_item()
        return item["prompt"], correct_completion(self.families[name], item)


def encode_batch(tok, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """Right-padded ids with labels only on the answer (the prompt is given)."""
    seqs, labels = [], []
    for prompt, answer in pairs:
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        a = tok(answer, add_special_tokens=False)["input_ids"]
        seqs.append(p + a)
        labels.append([-100] * len(p) + a)
    width = max(map(len, seqs))
    pad = tok.pad_token_id
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
    lab = torch.tensor([s + [-100] * (width - len(s)) for s in labels])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    return {"input_ids": ids, "attention_mask": mask, "labels": lab}


def pretrain(steps: int = 1500, batch_size: int = 128, lr: float = 3e-3, seed: int = 0,
             output: Path = EMBEDDED_DIR, progress: bool = True) -> dict:
    from transformers import LlamaForCausalLM
    from rich.progress import Progress

    from clbench.registry import Registry

    torch.manual_seed(seed)
    families = {n: Registry.load().task(n) for n in MIXTURE}
    tok = build_char_tokenizer()
    model = LlamaForCausalLM(tiny_config(len(tok), tok.pad_token_id, tok.eos_token_id))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = max(1, steps // 30)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    )
    stream = MixtureStream(families, MIXTURE, seed)
    start, losses = time.time(), []
    model.train()
    with Progress(disable=not progress) as bar:
        job = bar.add_task("pretraining", total=steps)
        for step in range(steps):
            batch = encode_batch(tok, [stream.next_pair() for _ in range(batch_size)])
            loss = model(**batch).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.update(job, advance=1, description=f"pretraining loss {sum(losses[-50:]) / len(losses[-50:]):.3f}")
    model.eval()
    recipe = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
              "mixture": MIXTURE, "seconds": round(time.time() - start, 1),
              "final_loss": sum(losses[-50:]) / len(losses[-50:]),
              "parameters": sum(p.numel() for p in model.parameters()),
              "torch": torch.__version__}

    def fill(folder: Path) -> None:
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        write_json(folder / "pretrain_recipe.json", recipe)

    replace_dir(output, fill)  # the shipped model is never left half-written
    return recipe
