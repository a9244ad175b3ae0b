"""Batched greedy generation: the one decoding path for rewards and quick checks.

Greedy, as in the ES papers, so a member's score is a deterministic function of
its weights. Left padding so every prompt's last token sits at the same column.
"""
from __future__ import annotations

import contextlib

import torch

from clbench.model import stop_token_ids


def chat_prompts(tokenizer, prompts: list[str], prefix: str = "") -> list[str]:
    """Each prompt as one user turn of the model's chat template, ready for the answer,
    with the assistant turn opened by `prefix` (the papers open it with `<think>`);
    prompt + prefix when the tokenizer has no template. lm-eval builds the same text
    (its `gen_prefix`: an assistant message continued, HFLM.apply_chat_template), so
    rewards and scores see one prompt."""
    if not getattr(tokenizer, "chat_template", None):
        return [p + prefix for p in prompts]
    if not prefix:
        return [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                              add_generation_prompt=True) for p in prompts]
    return [tokenizer.apply_chat_template([{"role": "user", "content": p},
                                           {"role": "assistant", "content": prefix}],
                                          tokenize=False, continue_final_message=True) for p in prompts]


def task_prompts(task, tokenizer, items: list[dict]) -> list[str]:
    """The text a model sees for each item: the chat-wrapped prompt where the task asks."""
    prompts = [i["prompt"] for i in items]
    return chat_prompts(tokenizer, prompts, task.assistant_prefix) if task.chat else prompts


def task_stop_ids(task, tokenizer) -> list[int]:
    """Token ids that end a completion of this task (newline only where it is a stop)."""
    return stop_token_ids(tokenizer, newline="\n" in task.stop)


def correct_completion(task, item: dict) -> str:
    """The target as the model should write it (after any assistant prefix the prompt
    holds), followed by the task's stop string."""
    return item["target"] + (task.stop[0] if task.stop else "")


def generate_for(task, model, tokenizer, items: list[dict], batch_size: int = 64,
                 sample_seed: int | None = None) -> tuple[list[str], int]:
    """`generate` with the task's own token budget, prompt form and stop strings."""
    return generate(model, tokenizer, [i["prompt"] for i in items], task.max_new_tokens,
                    batch_size=batch_size, chat=task.chat, stop=task.stop, prefix=task.assistant_prefix,
                    sample_seed=sample_seed)


def generate_tasks(parts: list[tuple[object, list[dict]]], model, tokenizer) -> tuple[list[list[str]], int]:
    """Completions for (task, items) parts, in one batched call per prompt form and stop
    set: on a small model a call costs about the same at 16 rows as at 48, so ES+replay's
    current and replay batches share one. Each row keeps its own task's token budget."""
    out: list[list[str] | None] = [None] * len(parts)
    groups: dict[tuple, list[int]] = {}
    for k, (task, _) in enumerate(parts):
        groups.setdefault((task.chat, tuple(task.stop), task.assistant_prefix), []).append(k)
    tokens = 0
    for (chat, stop, prefix), ks in groups.items():
        prompts = [i["prompt"] for k in ks for i in parts[k][1]]
        budgets = [parts[k][0].max_new_tokens for k in ks for _ in parts[k][1]]
        comps, n = generate(model, tokenizer, prompts, budgets, batch_size=len(prompts), chat=chat,
                             stop=stop, prefix=prefix)
        tokens += n
        for k in ks:
            out[k], comps = comps[: len(parts[k][1])], comps[len(parts[k][1]) :]
    return out, tokens


def decode_until_stop(tokenizer, row: list[int], stops) -> str:
    """A generated row's text up to (not including) its first stop token."""
    cut = next((i for i, t in enumerate(row) if t in stops), len(row))
    return tokenizer.decode(row[:cut], skip_special_tokens=True)


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], max_new_tokens: int | list[int],
             batch_size: int = 64, chat: bool = False,
             stop: tuple[str, ...] = ("\n",), prefix: str = "",
             sample_seed: int | None = None) -> tuple[list[str], int]:
    """Completions cut at the first stop token, and the number of tokens processed
    (prompt + generated, per sequence), for cost accounting. `chat`: wrap prompts in
    the chat template (full-scale tasks); `stop`: the task's stop strings (the newline
    ends an embedded answer; full-scale answers span lines and stop at EOS only);
    `prefix`: with `chat`, the text that opens the assistant turn (not in the completion).
    `max_new_tokens` may be one budget per prompt (rows are cut to their own).
    `sample_seed`: sample at temperature 1 from the full distribution (no top-k or top-p)
    instead of decoding greedily, from a torch RNG seeded with it (the global RNG is left
    as it was), so the same seed gives the same completions."""
    budgets = max_new_tokens if isinstance(max_new_tokens, list) else [max_new_tokens] * len(prompts)
    stops = stop_token_ids(tokenizer, newline="\n" in stop)
    device = next(model.parameters()).device
    if chat:
        prompts = chat_prompts(tokenizer, prompts, prefix)
    decoding = (dict(do_sample=False) if sample_seed is None else
                dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0))
    out: list[str] = []
    tokens = 0
    with (contextlib.nullcontext() if sample_seed is None else
          torch.random.fork_rng(devices=[] if device.type == "cpu" else [device])):
        if sample_seed is not None:
            torch.manual_seed(sample_seed)
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(device) for k, v in enc.items()}
            gen = model.generate(
                **enc,
                max_new_tokens=max(budgets[start : start + batch_size]),
                eos_token_id=stops,
                pad_token_id=tokenizer.pad_token_id,
                **decoding,
            )
            new = gen[:, enc["input_ids"].shape[1] :]  # (batch, <= max_new_tokens)
            for row, budget in zip(new.tolist(), budgets[start : start + batch_size]):
                out.append(decode_until_stop(tokenizer, row[:budget], stops))
            tokens += int(enc["attention_mask"].sum()) + int(new.numel())
    return out, tokens
