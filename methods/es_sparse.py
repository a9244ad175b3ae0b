"""ES + sparsification: perturb and update only part of the weights.

arXiv 2601.20861 traces ES forgetting to dense, large updates (sparsity ~20-25%
vs GRPO's 95-100%) and proposes sparsifying them. Masks:
  random: a fixed seeded mask of `density`, the same every step; only those
          entries are perturbed and updated (the noise itself is sparse);
  topk:   dense perturbation, but each tensor keeps only the `density` share
          of its update entries with the largest magnitude.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field

from clbench.methods.es import ES, ESConfig, Noise


class ESSparseConfig(ESConfig):
    mask: Literal["random", "topk"] = Field("random", description="which entries move (see module doc)")
    density: float = Field(0.1, gt=0, le=1, description="share of each tensor's entries that may change")


@dataclass(frozen=True)
class TopK:
    density: float

    def __call__(self, index: int, delta: torch.Tensor) -> torch.Tensor:
        k = max(1, int(self.density * delta.numel()))
        cut = delta.abs().flatten().kthvalue(delta.numel() - k + 1).values  # k-th largest |delta|
        return (delta.abs() >= cut).to(delta.dtype)


class ESSparse(ES):
    name = "es-sparse"
    version = 1
    Config = ESSparseConfig

    def noise(self, ctx) -> Noise:
        c = self.config
        if c.mask != "random":
            return super().noise(ctx)
        return Noise(c.sigma, c.shared_seed, c.restore, density=c.density, mask_seed=ctx.seed)

    def update_keep(self):
        return TopK(self.config.density) if self.config.mask == "topk" else None
