"""ES + Anchored Weight Decay: pull the weights back toward an anchor after each step.

"Overcoming Forgetting in LLM Fine-Tuning with Evolution Strategies",
arXiv 2605.30148: ES forgetting is a random walk in directions the task does
not constrain; after each ES step,
  L2: w <- w0 + (1 - alpha*lambda) (w - w0)          (lambda = 10 recommended)
  L1: w <- w0 + soft_threshold(w - w0, alpha*lambda)  (lambda = 0.01)
The anchor w0 is the task's starting weights (default) or the base model's.
Each replica keeps its own copy of the anchor; only the decay factor travels.
"""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from clbench.methods.es import ES, ESConfig


class ESAWDConfig(ESConfig):
    form: Literal["l2", "l1"] = Field("l2", description="L2 shrinks the drift; L1 soft-thresholds it")
    lam: float = Field(10.0, ge=0, description="lambda; the paper recommends 10 (L2) or 0.01 (L1)")
    anchor: Literal["task", "base"] = Field("task", description="anchor: this task's start or the base")


@torch.no_grad()
def set_anchor(model, anchor: dict) -> None:
    """Each replica keeps its own anchor (sent once per task, never per step)."""
    model._clbench_anchor = {n: anchor[n].to(p.device) for n, p in model.named_parameters()}


@torch.no_grad()
def anchored_decay(model, form: str, strength: float) -> None:
    for n, p in model.named_parameters():
        w0 = model._clbench_anchor[n]
        d = p - w0
        if form == "l2":
            d.mul_(1.0 - strength)
        else:
            d = torch.sign(d) * torch.clamp(d.abs() - strength, min=0.0)
        p.copy_(w0 + d)


class ESAWD(ES):
    name = "es-awd"
    version = 1
    Config = ESAWDConfig
    needs = frozenset({"base_weights"})

    def start(self, pop, ctx) -> None:
        src = ctx.task_start_weights if self.config.anchor == "task" else ctx.base_weights
        pop.apply(set_anchor, {n: t.detach().cpu() for n, t in src.items()})

    def after_update(self, pop, ctx) -> None:
        pop.apply(anchored_decay, self.config.form, self.config.alpha * self.config.lam)
