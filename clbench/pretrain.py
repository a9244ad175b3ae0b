"""`clbench pretrain-base`: reproduce the embedded base model from a recipe and a seed.

The recipe (clbench.recipe, a YAML file in clbench/assets/recipes) holds the mixture,
so this module names no task family: the shipped recipe teaches the probe skills well
and leaves the new tasks latent (README "The base model: latent skills"), so a run can
show both learning and forgetting. Items from any family's dev or test split never
enter the mixture.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from clbench.atomic import replace_dir, write_json
from clbench.model import EMBEDDED_DIR, build_char_tokenizer, tiny_config
from clbench.recipe import MixtureStream, Recipe, check_families


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


def pretrain(recipe: Recipe, output: Path = EMBEDDED_DIR, progress: bool = True) -> dict:
    """Train a fresh tiny model on the recipe's mixture; write it (atomically) to `output`
    with `pretrain_recipe.json`, the recipe plus what was measured."""
    from transformers import LlamaForCausalLM
    from rich.progress import Progress

    from clbench.registry import Registry

    steps, batch_size, lr, seed = recipe.steps, recipe.batch_size, recipe.lr, recipe.seed
    families, blocked = check_families(recipe, Registry.load())
    torch.manual_seed(seed)
    tok = build_char_tokenizer()
    model = LlamaForCausalLM(tiny_config(len(tok), tok.pad_token_id, tok.eos_token_id))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = max(1, steps // 30)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    )
    stream = MixtureStream(families, recipe.entries(), seed, blocked)
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
              "mixture": recipe.mixture, **({"hold_out": recipe.hold_out} if recipe.hold_out else {}),
              "seconds": round(time.time() - start, 1),
              "final_loss": sum(losses[-50:]) / len(losses[-50:]),
              "parameters": sum(p.numel() for p in model.parameters()),
              "torch": torch.__version__}

    def fill(folder: Path) -> None:
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        write_json(folder / "pretrain_recipe.json", recipe)

    replace_dir(output, fill)  # the shipped model is never left half-written
    return recipe
