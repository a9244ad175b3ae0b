"""Diagonal Fisher information from per-example gradients.

F_i = mean over examples of (d log p(correct completion | prompt) / d theta_i)^2:
each example's gradient is squared before averaging. Squaring a batch's mean
gradient instead (a common shortcut) underestimates F by cancelling examples
that pull in opposite directions. Used by EWC's penalty and es-sparse's fisher
mask.
"""
from __future__ import annotations

import torch


def completion_log_likelihood(model, tokenizer, prompt: str, completion: str) -> torch.Tensor:
    """log p(completion | prompt), summed over the completion's tokens (a scalar)."""
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    device = next(model.parameters()).device
    ids = torch.tensor([p_ids + c_ids], device=device)  # (1, P + C)
    logits = model(input_ids=ids).logits[0, :-1].float()  # (P + C - 1, V): predicts ids[1:]
    logp = torch.log_softmax(logits, dim=-1)
    targets = ids[0, len(p_ids):]  # (C,)
    return logp[len(p_ids) - 1 :].gather(1, targets[:, None]).sum()


def diagonal_fisher(model, tokenizer, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """F = mean over (prompt, correct completion) pairs of (d log p / d theta)^2, one
    backward per pair. Leaves `model`'s gradients and train/eval mode as they were."""
    params = dict(model.named_parameters())
    fisher = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    was_training = model.training
    model.eval()
    for prompt, completion in pairs:
        model.zero_grad(set_to_none=True)
        completion_log_likelihood(model, tokenizer, prompt, completion).backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n].add_(p.grad.detach().float().square())
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {n: f.div_(max(1, len(pairs))) for n, f in fisher.items()}


def task_fisher(model, tokenizer, task, items: list[dict]) -> dict[str, torch.Tensor]:
    """diagonal_fisher of each item's correct completion, prompted as the task prompts."""
    from clbench.generation import correct_completion, task_prompts

    prompts = task_prompts(task, tokenizer, items)
    return diagonal_fisher(model, tokenizer, [(p, correct_completion(task, i)) for p, i in zip(prompts, items)])
