"""Evolution Strategies for LLM fine-tuning, the engine every ES variant shares.

Qiu et al., "Evolution Strategies at Scale: LLM Fine-Tuning Beyond
Reinforcement Learning", arXiv 2509.24372 (reference code: the authors'
es-fine-tuning-paper repository). Per iteration t:

  members n = 1..N, each a seed; eps_n ~ N(0, I) regenerated from it, tensor by tensor
  R_n   = mean reward of theta + sigma * eps_n on one batch shared by all members
  z_n   = (R_n - mean(R)) / (std(R) + 1e-8)                        (z-scores; or centered ranks)
  theta <- theta + alpha * (1/N) * sum_n z_n * eps_n               (no 1/sigma)

Departures, deliberate: each tensor is seeded from (member seed, tensor index)
(the original reseeds every tensor with the member's seed, so same-shape
tensors get identical noise; `shared_seed: true` restores that), and mirrored
pairs (+eps, -eps) are on by default to halve the reward noise. Member seeds and
batches derive from (run seed, task index, step), so a resumed run draws the
same noise as an uninterrupted one and the checkpoint need only hold weights.

Variants override one hook each (evosax's shape): `noise` (which entries are
perturbed, and so move), `update_keep` (which entries of the update are kept),
`batches` (what each member is scored on), `fitness` (how a member's rewards
become one number), `start`, `before_scoring` (work a step spends besides its
members: es-guided's gradient refresh) and `after_update`.
"""
from __future__ import annotations

import functools
import hashlib
import random
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field, model_validator

from clbench.method import Method, MethodConfig
from clbench.population import Batch, Member


class ESConfig(MethodConfig):
    population: int = Field(30, ge=2, description="members per iteration N (the papers' 30)")
    sigma: float = Field(0.01, gt=0, description="noise scale; the papers' 1e-3 barely changes a "
                         "tiny float32 model's greedy answers (README 'ES'); 1e-2 perturbs the "
                         "embedded model by ~17% of its weight norm, 3e-2 by ~50% (members collapse)")
    alpha: float = Field(0.005, gt=0, description="step size; drift grows ~ alpha*sqrt(D*t/N), "
                         "2e-2 wrecked prior skills in our trial")
    batch_size: int = Field(32, ge=1, description="training prompts per iteration, shared by all members")
    mirrored: bool = Field(True, description="antithetic pairs (+eps, -eps); population must be even")
    shared_seed: bool = Field(False, description="original behaviour: every tensor reseeded with the "
                              "member seed (same-shape tensors get identical noise)")
    shaping: Literal["zscore", "centered-rank"] = Field(
        "zscore", description="fitness shaping: z-scores as in arXiv 2509.24372, or centered ranks "
        "in [-0.5, 0.5] (Salimans et al., arXiv 1703.03864), which ignore the rewards' scale")
    restore: Literal["copy", "subtract"] = Field(
        "copy", description="undo a member's noise by copying saved weights back (exact, so every "
        "backend gives the same numbers; one extra weight copy) or by regenerating and subtracting "
        "it (the reference code's way: no copy, but float rounding leaves a residue)")

    @model_validator(mode="after")
    def _even_when_mirrored(self):
        if self.mirrored and self.population % 2:
            raise ValueError(f"population must be even when mirrored is true (got {self.population})")
        return self


def _mix(*parts: int | str) -> int:
    """A 63-bit seed from parts; stable across processes and Python versions."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big") >> 1


@functools.lru_cache(maxsize=4096)
def _fixed_mask(mask_seed: int, density: float, index: int, shape: tuple) -> torch.Tensor:
    gen = torch.Generator(device="cpu").manual_seed(_mix("mask", mask_seed, index))
    return torch.rand(shape, generator=gen) < density  # (shape) bool


# Masks computed from weights or data (es-sparse's magnitude and fisher masks) are
# installed once per process under a key, on every replica, instead of travelling
# with the noise object at every step.
_INSTALLED_MASKS: dict[str, dict[int, torch.Tensor]] = {}


def install_masks(model, key: str, masks: dict[int, torch.Tensor]) -> None:
    """Make `masks` (tensor index -> bool mask) available to Noise(mask_key=key) here."""
    _INSTALLED_MASKS[key] = masks


@dataclass(frozen=True)
class Noise:
    """Seeded Gaussian noise, regenerated tensor by tensor: no copy per member.

    Picklable, so population workers regenerate exactly the same noise.
    """

    sigma: float
    shared_seed: bool = False
    restore: str = "copy"  # "copy": exact, one weight copy per replica; "subtract": no copy
    density: float = 1.0  # < 1: a fixed seeded mask; only those entries are perturbed and updated
    mask_seed: int = 0
    mask_key: str | None = None  # set: use the masks installed under this key instead

    @property
    def masked(self) -> bool:
        return self.density < 1.0 or self.mask_key is not None

    def mask(self, index: int, param: torch.Tensor) -> torch.Tensor:
        """The same entries every step: installed ones, or a seeded random mask built
        once per process from (mask seed, tensor index)."""
        if self.mask_key is not None:
            return _INSTALLED_MASKS[self.mask_key][index]
        return _fixed_mask(self.mask_seed, self.density, index, tuple(param.shape))

    def eps(self, seed: int, index: int, param: torch.Tensor) -> torch.Tensor:
        gen = torch.Generator(device="cpu").manual_seed(seed if self.shared_seed else _mix(seed, index))
        e = torch.randn(param.shape, generator=gen, dtype=torch.float32)  # (param.shape)
        if self.masked:
            e.mul_(self.mask(index, param))
        return e.to(param.device)

    @torch.no_grad()
    def perturb(self, model: torch.nn.Module, member: Member, scale: float) -> None:
        step = self.sigma * member.sign * scale
        for i, (_, p) in enumerate(model.named_parameters()):  # shared (tied) tensors once
            p.add_(self.eps(member.seed, i, p).to(p.dtype), alpha=step)


@torch.no_grad()
def apply_update(model: torch.nn.Module, noise: Noise, members: list[Member],
                 weights: list[float], alpha: float, keep=None) -> None:
    """theta += alpha/N * sum_n w_n * sign_n * eps_n, one tensor at a time.

    `keep(index, delta)` returns a mask of update entries to keep (sparse variants).
    Runs identically on every replica, so weights never travel.
    """
    n = len(members)
    for i, (_, p) in enumerate(model.named_parameters()):
        delta = torch.zeros(p.shape, dtype=torch.float32, device=p.device)  # (p.shape) accumulator
        for m, w in zip(members, weights):
            if w != 0.0:
                delta.add_(noise.eps(m.seed, i, p), alpha=w * m.sign)
        delta.mul_(alpha / n)
        if keep is not None:
            delta.mul_(keep(i, delta))
        p.add_(delta.to(p.dtype))


def zscore(rewards: list[float]) -> list[float]:
    """(R - mean) / (std + 1e-8), population std as in the reference code."""
    r = torch.tensor(rewards, dtype=torch.float64)
    return ((r - r.mean()) / (r.std(unbiased=False) + 1e-8)).tolist()


def centered_rank(rewards: list[float]) -> list[float]:
    """Ranks scaled to [-0.5, 0.5], ties sharing their mean rank (arXiv 1703.03864, sec. 2.2;
    evosax's centered_rank). All-equal rewards give all zeros, as z-scores do."""
    n = len(rewards)
    if n < 2:
        return [0.0] * n
    order = sorted(range(n), key=lambda i: rewards[i])
    ranks = [0.0] * n
    i = 0
    while i < n:  # a run of equal rewards shares the mean of its ranks
        j = i
        while j + 1 < n and rewards[order[j + 1]] == rewards[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return [r / (n - 1) - 0.5 for r in ranks]


SHAPING = {"zscore": zscore, "centered-rank": centered_rank}


class ES(Method):
    name = "es"
    version = 1
    Config = ESConfig

    # ---- hooks for variants (each overrides one or two) ---------------------
    def noise(self, ctx) -> Noise:
        """Which entries are perturbed (and so updated): all, by default."""
        c = self.config
        return Noise(c.sigma, c.shared_seed, c.restore)

    def update_keep(self):
        """A picklable `keep(index, delta) -> mask` applied to each update, or None."""
        return None

    def batches(self, task, step_rng: random.Random, ctx) -> list[Batch]:
        items = ctx.train_items(task)
        return [Batch(task.name, step_rng.sample(items, min(self.config.batch_size, len(items))))]

    def fitness(self, rewards: list[float], batches: list[Batch]) -> float:
        """One member's per-batch mean rewards -> its fitness (replay mixes them)."""
        return rewards[0]

    def start(self, pop, ctx) -> None:
        """Before the first step of a task (and after a resume); default nothing."""

    def after_update(self, pop, ctx) -> None:
        """After each update, on every replica via `pop.apply` (anchored decay)."""

    def before_scoring(self, pop, ctx, task, step: int, batches: list[Batch]) -> dict:
        """Before a step's members are scored: work the step spends besides them, as
        counts ({"forward_tokens", "backward_tokens", "completions"}) and
        "pairs_given_up" (mirrored pairs the step scores fewer, to pay for it); default
        nothing (es-guided refreshes its gradient subspace here)."""
        return {}

    # ---- the loop ----------------------------------------------------------
    def members(self, step_seed: int) -> list[Member]:
        c = self.config
        if c.mirrored:
            return [Member(_mix(step_seed, k), s) for k in range(c.population // 2) for s in (1, -1)]
        return [Member(_mix(step_seed, k), 1) for k in range(c.population)]

    def learn(self, task, ctx) -> None:
        c = self.config
        noise = self.noise(ctx)
        pop = ctx.population()  # the run's backend (--backend, --workers)
        self.start(pop, ctx)
        for step in range(ctx.start_step, ctx.steps):
            step_seed = _mix(ctx.seed, ctx.task_index, step)
            batches = self.batches(task, random.Random(step_seed), ctx)
            spent = self.before_scoring(pop, ctx, task, step, batches)
            members = self.members(step_seed)
            members = members[: len(members) - 2 * spent.get("pairs_given_up", 0)]
            rewards, tokens = pop.evaluate(noise, members, batches)
            fit = [self.fitness(r, batches) for r in rewards]
            pop.apply(apply_update, noise, members, SHAPING[c.shaping](fit), c.alpha, self.update_keep())
            self.after_update(pop, ctx)
            ctx.step(forward_tokens=tokens + spent.get("forward_tokens", 0),
                     backward_tokens=spent.get("backward_tokens", 0), members_scored=len(members),
                     completions=len(members) * sum(len(b.items) for b in batches) + spent.get("completions", 0),
                     reward=sum(fit) / len(fit))
