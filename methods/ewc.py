"""Online EWC on top of GRPO: GRPO's loss plus a quadratic pull towards old tasks.

Kirkpatrick et al., "Overcoming catastrophic forgetting in neural networks"
(arXiv 1612.00796): after a task, the diagonal Fisher information F_i says how
much each weight mattered to it, and later tasks pay

  penalty = (lambda / 2) * sum_i F_i * (theta_i - theta*_i)^2        (their eq. 3)

Online EWC (Schwarz et al., "Progress & Compress", arXiv 1805.06370, eq. 8)
keeps one running Fisher, F <- gamma * F + F_task, anchored at the weights after
the latest task, so memory stays two weight copies however many tasks pass.

F is the empirical Fisher of a correct answer: for each of `fisher_examples`
training items, the squared gradient of log p(target + stop | prompt), averaged
over examples (per-example gradients; the square of a batch's mean gradient
would cancel disagreeing examples and underestimate F). Everything else is
GRPO's: this file adds the penalty to GRPOTrainer's loss through a mixin and
computes F in `end_task` (Mammoth's ewc_on.py shape).
"""
from __future__ import annotations

import random

import torch
from pydantic import Field

from clbench.fisher import task_fisher
from clbench.methods.grpo import GRPO, GRPOConfig
from clbench.model import param_copy


class EWCConfig(GRPOConfig):
    ewc_lambda: float = Field(1000.0, ge=0, description="penalty strength lambda; chosen by the "
                              "sweep in benchmarks/ewc_sweep.py on math-then-code")
    gamma: float = Field(1.0, ge=0, le=1, description="online-EWC decay of the old Fisher at each task "
                         "end (1 = plain sum over tasks, as EWC with one penalty per task)")
    fisher_examples: int = Field(256, ge=1, description="training items whose per-example squared "
                                 "gradients are averaged into F")


def ewc_penalty(model, fisher: dict, anchor: dict, lam: float) -> torch.Tensor:
    """(lambda / 2) * sum F * (theta - theta*)^2 over every parameter (tied ones once)."""
    total = None
    for n, p in model.named_parameters():
        term = (fisher[n] * (p.float() - anchor[n]).square()).sum()
        total = term if total is None else total + term
    return 0.5 * lam * total


class _PenaltyLoss:
    """Trainer mixin: GRPOTrainer's loss plus `penalty(model)` (when there is one)."""

    def __init__(self, *a, penalty=None, **kw):
        self.penalty = penalty
        super().__init__(*a, **kw)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        return loss if self.penalty is None else loss + self.penalty(model)


class EWC(GRPO):
    name = "ewc"
    version = 1
    Config = EWCConfig
    trainer_base = _PenaltyLoss

    def __init__(self, config: EWCConfig):
        super().__init__(config)
        self.fisher: dict[str, torch.Tensor] | None = None
        self.anchor: dict[str, torch.Tensor] | None = None

    def trainer_kwargs(self, ctx) -> dict:
        if self.fisher is None or self.config.ewc_lambda == 0:
            return {"penalty": None}  # first task: nothing to protect yet
        fisher, anchor, lam = self.fisher, self.anchor, self.config.ewc_lambda
        return {"penalty": lambda model: ewc_penalty(model, fisher, anchor, lam)}

    def end_task(self, task, ctx) -> None:
        items = ctx.train_items(task)
        rng = random.Random(f"{ctx.seed}/{ctx.task_index}/fisher")
        chosen = rng.sample(items, min(self.config.fisher_examples, len(items)))
        new = task_fisher(ctx.model, ctx.tokenizer, task, chosen)
        g = self.config.gamma
        self.fisher = new if self.fisher is None else {n: g * self.fisher[n] + f for n, f in new.items()}
        self.anchor = {n: p.float() for n, p in param_copy(ctx.model).items()}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "fisher": self.fisher, "anchor": self.anchor}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.fisher, self.anchor = state.get("fisher"), state.get("anchor")
