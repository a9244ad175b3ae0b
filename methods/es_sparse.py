"""ES + sparsification: perturb and update only part of the weights.

arXiv 2601.20861 traces ES forgetting to dense, large updates (sparsity ~20-25%
vs GRPO's 95-100%) and proposes sparsifying them. Masks (each keeps `density`
of every tensor's entries):
  random:    a fixed seeded mask, the same every step; only those entries are
             perturbed and updated (the noise itself is sparse);
  topk:      dense perturbation, but each update keeps only its largest-magnitude
             entries;
  magnitude: a fixed mask of the base weights' smallest-magnitude entries (what
             magnitude pruning deems least important to the skills already there);
  fisher:    a fixed mask of the entries with the largest diagonal Fisher of the
             current task's correct answers at the base weights (those that matter
             most for the new task; one backward pass per example, once per task).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field

from clbench.fisher import task_fisher
from clbench.methods.es import ES, ESConfig, Noise, install_masks


class ESSparseConfig(ESConfig):
    mask: Literal["random", "topk", "magnitude", "fisher"] = Field(
        "random", description="which entries move (see module doc)")
    density: float = Field(0.1, gt=0, le=1, description="share of each tensor's entries that may change")
    fisher_examples: int = Field(64, ge=1, description="training items the fisher mask is measured on")


@dataclass(frozen=True)
class TopK:
    density: float

    def __call__(self, index: int, delta: torch.Tensor) -> torch.Tensor:
        k = max(1, int(self.density * delta.numel()))
        cut = delta.abs().flatten().kthvalue(delta.numel() - k + 1).values  # k-th largest |delta|
        return (delta.abs() >= cut).to(delta.dtype)


def top_share(score: torch.Tensor, density: float) -> torch.Tensor:
    """Bool mask of the `density` share of entries with the highest score (ties by position)."""
    k = max(1, int(density * score.numel()))
    keep = torch.zeros(score.numel(), dtype=torch.bool)
    keep[torch.argsort(score.flatten().float(), descending=True, stable=True)[:k]] = True
    return keep.view(score.shape)


def magnitude_masks(model, base: dict[str, torch.Tensor], density: float) -> dict[int, torch.Tensor]:
    return {i: top_share(-base[n].abs().cpu(), density) for i, (n, _) in enumerate(model.named_parameters())}


def fisher_masks(model, base: dict[str, torch.Tensor], tokenizer, task, items: list[dict],
                 density: float) -> dict[int, torch.Tensor]:
    probe = copy.deepcopy(model)  # the base weights, whatever the run's model holds now
    with torch.no_grad():
        for n, p in probe.named_parameters():
            p.copy_(base[n])
    fisher = task_fisher(probe, tokenizer, task, items)
    return {i: top_share(fisher[n].cpu(), density) for i, (n, _) in enumerate(model.named_parameters())}


class ESSparse(ES):
    name = "es-sparse"
    version = 2
    Config = ESSparseConfig

    def _mask_key(self, ctx) -> str:
        c = self.config
        scope = f"task{ctx.task_index}/{c.fisher_examples}" if c.mask == "fisher" else "base"
        return f"{c.mask}/{c.density}/{scope}"

    def noise(self, ctx) -> Noise:
        c = self.config
        if c.mask == "random":
            return Noise(c.sigma, c.shared_seed, c.restore, density=c.density, mask_seed=ctx.seed)
        if c.mask in ("magnitude", "fisher"):
            return Noise(c.sigma, c.shared_seed, c.restore, density=c.density, mask_key=self._mask_key(ctx))
        return super().noise(ctx)

    def start(self, pop, ctx) -> None:
        c = self.config
        if c.mask == "magnitude":
            masks = magnitude_masks(ctx.model, ctx.base_weights, c.density)
        elif c.mask == "fisher":
            masks = fisher_masks(ctx.model, ctx.base_weights, ctx.tokenizer, ctx.task,
                                 ctx.train_items(ctx.task)[: c.fisher_examples], c.density)
        else:
            return
        pop.apply(install_masks, self._mask_key(ctx), masks)

    def update_keep(self):
        return TopK(self.config.density) if self.config.mask == "topk" else None
