"""Guided ES: ES whose noise leans towards a subspace of recent surrogate gradients.

Maheswaranathan, Metz, Tucker, Choi and Sohl-Dickstein, "Guided evolutionary
strategies: augmenting random search with surrogate gradients", arXiv 1806.10230.
Each member's noise is drawn from a covariance that mixes the isotropic one with a
k-dimensional subspace U (orthonormal, D x k) of recent surrogate gradients, at ES's
scale (E||eps||^2 = D):

  eps = sqrt(a) * e_D + sqrt((1 - a) * D / k) * U e_k,   e_D ~ N(0, I_D), e_k ~ N(0, I_k)

so Cov(eps) = a I + (1 - a) (D / k) U U^T. ES's estimator and update are unchanged
(methods/es.py); only the `noise` hook differs. If the subspace holds the task's
directions, the random walk outside it shrinks by sqrt(a), and with it the drift
that makes ES forget (README, "ES").

The surrogate gradient needs nothing beyond the reward: every `refresh_every` steps,
the gradient of the log-likelihood of the unperturbed model's correct greedy answers
on the step's batch (their generation counted in forward_tokens, the backward pass in
backward_tokens; `surrogate: reference` uses the items' reference answers instead). U is the orthonormal basis (QR) of the last `subspace` such
gradients, reset at each task's start. A refresh whose batch has no correct answer
keeps the previous subspace; before the first useful refresh the noise is plain ES's.
The refresh's completions come out of the step's budget: that step scores one mirrored
pair fewer (2 x batch completions given up for the batch's one greedy pass), so
es-guided spends no more completions than es at the same steps.

The main process computes U and sends it to every replica with `pop.apply` (k weight-
sized float32 vectors per refresh: 4 x 1.79M x 4 bytes = 28.6 MB per worker on the
embedded model), so all replicas draw bit-identical noise. With a = 1 the method is
plain ES, bit for bit. Unlike ES, it needs a backward pass and k weight-sized
directions in memory: ES's inference-only memory is lost.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field, model_validator

from clbench.fisher import completion_log_likelihood
from clbench.generation import correct_completion, generate_for, task_prompts
from clbench.methods.es import ES, ESConfig, Noise, _mix

# the subspace each process draws from, installed by `install_basis` on every replica
_BASES: dict[str, dict] = {}


class ESGuidedConfig(ESConfig):
    sigma: float = Field(0.02, gt=0, description="noise scale (ES's tuned value on the embedded base)")
    alpha: float = Field(0.01, gt=0, description="step size (ES's tuned value on the embedded base)")
    batch_size: int = Field(64, ge=1, description="training prompts per iteration, shared by all members")
    a: float = Field(0.5, gt=0, le=1, description="weight of the isotropic part of the noise covariance; "
                     "1 is plain ES, smaller leans on the gradient subspace")
    subspace: int = Field(4, ge=1, description="k: surrogate gradients kept, the subspace's dimension")
    refresh_every: int = Field(5, ge=1, description="K: steps between surrogate-gradient refreshes")
    surrogate: Literal["correct-greedy", "reference"] = Field(
        "correct-greedy", description="whose log-likelihood gives the surrogate gradient: the "
        "unperturbed model's correct greedy answers (reward only, as ES), or the items' reference "
        "answers (labels: a supervised direction; it refreshes even where the model gets nothing right)")

    @model_validator(mode="after")
    def _a_pair_to_give_up(self):
        if self.a < 1 and self.surrogate == "correct-greedy" and self.population < 4:
            raise ValueError("population must be at least 4 when a < 1: a refresh step gives up one "
                             "mirrored pair for its greedy pass")
        return self


def install_basis(model, key: str, basis: dict | None) -> None:
    """Make `basis` ({"dim": D, "k": k, "slices": {tensor index: (k, numel)}}) the subspace
    GuidedNoise(basis_key=key) draws from in this process; None removes it."""
    if basis is None:
        _BASES.pop(key, None)
    else:
        _BASES[key] = basis


@functools.lru_cache(maxsize=256)
def _coefficients(seed: int, k: int) -> torch.Tensor:
    """e_k of one member: the same k numbers for every tensor, so the subspace part of
    its noise is one direction of the whole weight space."""
    gen = torch.Generator(device="cpu").manual_seed(_mix(seed, "guided"))
    return torch.randn(k, generator=gen, dtype=torch.float32)  # (k,)


@dataclass(frozen=True)
class GuidedNoise(Noise):
    """ES's seeded noise mixed with the installed subspace (module docstring's formula)."""

    a: float = 1.0
    basis_key: str = ""

    def eps(self, seed: int, index: int, param: torch.Tensor) -> torch.Tensor:
        e = super().eps(seed, index, param)  # (param.shape) float32, e_D's slice
        basis = _BASES.get(self.basis_key)
        if basis is None:
            return e  # no useful refresh yet: plain ES noise
        k = basis["k"]
        guided = (_coefficients(seed, k) @ basis["slices"][index]).view(param.shape)  # (param.shape)
        scale = math.sqrt((1.0 - self.a) * basis["dim"] / k)
        return e.mul_(math.sqrt(self.a)).add_(guided.to(e.device), alpha=scale)


def surrogate_gradient(model, tokenizer, pairs: list[tuple[str, str]]) -> torch.Tensor:
    """d/d theta of the mean log-likelihood of (prompt, completion) pairs, flattened over
    model.named_parameters() (tied tensors once), float32 (D,). One backward per pair;
    leaves the model's gradients and mode as they were."""
    params = [p for _, p in model.named_parameters()]
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        for prompt, completion in pairs:
            (completion_log_likelihood(model, tokenizer, prompt, completion) / len(pairs)).backward()
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).detach().float().reshape(-1).cpu()
                      for p in params])  # (D,)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return flat


def orthonormal_basis(grads: list[torch.Tensor], shapes: list[int]) -> dict | None:
    """The orthonormal basis (QR) of the gradients' span, cut into per-tensor slices
    (k, numel); directions that add nothing new (|R_jj| tiny) are dropped."""
    G = torch.stack(grads, dim=1).double()  # (D, m)
    Q, R = torch.linalg.qr(G, mode="reduced")  # (D, m), (m, m)
    diag = R.diagonal().abs()
    keep = diag > 1e-8 * max(float(diag.max()), 1e-30)
    if not bool(keep.any()):
        return None
    U = Q[:, keep].float().T.contiguous()  # (k, D)
    slices, start = {}, 0
    for i, n in enumerate(shapes):
        slices[i] = U[:, start : start + n].contiguous()  # (k, numel_i)
        start += n
    return {"dim": start, "k": U.shape[0], "slices": slices}


class ESGuided(ES):
    name = "es-guided"
    version = 1
    Config = ESGuidedConfig
    needs = frozenset({"gradients"})

    def __init__(self, config: ESGuidedConfig):
        super().__init__(config)
        self.grads: list[torch.Tensor] = []  # the last `subspace` surrogate gradients, (D,) each
        self.basis: dict | None = None
        self.refreshes = {"useful": 0, "no_correct_answer": 0, "no_direction": 0}

    def _key(self, ctx) -> str:
        """One subspace per run in each process: a task's start replaces the last one's."""
        return f"guided/{ctx.seed}"

    def noise(self, ctx) -> Noise:
        c = self.config
        if c.a == 1.0:
            return super().noise(ctx)  # plain ES, bit for bit
        return GuidedNoise(c.sigma, c.shared_seed, c.restore, a=c.a, basis_key=self._key(ctx))

    def start(self, pop, ctx) -> None:
        if ctx.start_step == 0:  # a new task: its own gradients only
            self.grads, self.basis = [], None
        pop.apply(install_basis, self._key(ctx), self.basis)  # the resumed subspace, or none

    def before_scoring(self, pop, ctx, task, step: int, batches) -> dict:
        """Every refresh_every steps: refresh the subspace from the batch's correct greedy
        answers, and give up one mirrored pair to pay for them."""
        c = self.config
        if c.a == 1.0 or step % c.refresh_every:
            return {}
        items = batches[0].items
        prompts = task_prompts(task, ctx.tokenizer, items)
        if c.surrogate == "reference":  # no generation: nothing to pay for with a pair
            pairs, spent = [(p, correct_completion(task, i)) for p, i in zip(prompts, items)], {}
        else:
            comps, tokens = generate_for(task, ctx.model, ctx.tokenizer, items)
            stop = task.stop[0] if task.stop else ""
            pairs = [(p, comp + stop) for p, comp, s in zip(prompts, comps, task.scores(items, comps))
                     if s.correct]
            spent = {"forward_tokens": tokens, "completions": len(items), "pairs_given_up": 1}
        if not pairs:
            self.refreshes["no_correct_answer"] += 1
            return spent  # keep the previous subspace (or plain noise before the first)
        grads = (self.grads + [surrogate_gradient(ctx.model, ctx.tokenizer, pairs)])[-c.subspace:]
        tokens = sum(len(ctx.tokenizer(x, add_special_tokens=False)["input_ids"])
                     for pair in pairs for x in pair)  # as completion_log_likelihood tokenizes
        spent["forward_tokens"] = spent.get("forward_tokens", 0) + tokens  # the likelihood's forward
        spent["backward_tokens"] = tokens
        basis = orthonormal_basis(grads, [p.numel() for _, p in ctx.model.named_parameters()])
        if basis is None:  # all-zero gradients: nothing to lean on; keep the previous subspace
            self.refreshes["no_direction"] += 1
            return spent
        self.grads, self.basis = grads, basis
        pop.apply(install_basis, self._key(ctx), self.basis)
        self.refreshes["useful"] += 1
        return spent

    def state_dict(self) -> dict:
        return {"grads": list(self.grads), "basis": self.basis, "refreshes": dict(self.refreshes)}

    def load_state_dict(self, state: dict) -> None:
        self.grads = list(state.get("grads") or [])
        self.basis = state.get("basis")
        self.refreshes = dict(state.get("refreshes") or {"useful": 0, "no_correct_answer": 0, "no_direction": 0})
