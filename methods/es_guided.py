"""Guided ES: ES whose noise leans towards a subspace of recent surrogate gradients.

Maheswaranathan, Metz, Tucker, Choi and Sohl-Dickstein, "Guided evolutionary
strategies: augmenting random search with surrogate gradients", arXiv 1806.10230.
Each member's noise is drawn from a covariance that mixes the isotropic one with a
k-dimensional subspace U (orthonormal, D x k) of recent surrogate gradients, at ES's
scale (E||eps||^2 = D):

  eps = sqrt(a) * e_D + sqrt(1 - a) * g * U e_k,   e_D ~ N(0, I_D), e_k ~ N(0, I_k)

so Cov(eps) = a I + (1 - a) g^2 U U^T. The paper's split keeps the total variance,
g = sqrt(D / k) (`subspace_gain: null`). With ES's update (z-scored rewards, no 1/sigma)
a step moves up to alpha * sqrt(1 - a) * g along a subspace direction, and on a model of
D = 1.79M weights sqrt(D / k) is 669: at a 0.25 the embedded model's drift reached 44
by step 15 (ES's: about 10.5) and every column fell to 0 (README, "Guided ES"). So g is
a setting of its own, chosen on dev. ES's estimator and update are unchanged
(methods/es.py); only the `noise` hook differs. If the subspace holds the task's
directions, the random walk outside it shrinks by sqrt(a), and with it the drift
that makes ES forget (README, "ES").

The surrogate gradient needs nothing beyond the reward: every `refresh_every` steps,
the gradient of the log-likelihood of the unperturbed model's correct answers among
`samples` completions per prompt of the step's batch, sampled at temperature 1 from a
seed of (run seed, task, step) (REINFORCE's estimate of the expected 0/1 reward's
gradient, Williams 1992; their generation counted in forward_tokens, the backward pass
in backward_tokens). `surrogate: correct-greedy` uses the correct greedy answers instead,
as the hybrid issue first proposed; on the embedded base these are mostly the planted
lazy answer where it happens to be right (12.5% of dev items), and leaning on them kept
dev countdown at exactly that 12.5% (README, "Guided ES"). `surrogate: reference` uses
the items' reference answers (labels). U is an orthonormal basis of the span of the
last `subspace` such gradients (one nearly inside the span of the earlier ones is
dropped, and still takes its place in the window), reset at each task's start. A
refresh whose batch has no correct answer, or whose gradient is not finite or is zero,
keeps the previous subspace; before the first useful refresh the noise is plain ES's. The refresh's completions come out of the step's budget: that step scores
ceil(samples / 2) mirrored pairs fewer (one for a greedy pass; each pair is 2 x batch
completions), so es-guided spends no more completions than es at the same steps.

U is kept as the gradients themselves and a k x k matrix C with U = G C (G the D x k
gradients; C from the Cholesky factor of their Gram matrix, computed in float64), so
the subspace costs k weight-sized vectors, not the gradients plus their basis and a
float64 QR's copies (which held 17 weights' worth at two refreshes of a 0.3B model:
README, "Peak memory"). The main process computes C and sends G and C to every replica
with `pop.apply` (k weight-sized float32 vectors per refresh: 4 x 1.79M x 4 bytes =
28.6 MB on the embedded model; the local backend passes tensors through shared memory,
/dev/shm, which must hold them), so all replicas draw bit-identical noise. With a = 1 the method is
plain ES, bit for bit. Unlike ES, it needs a backward pass, and the main process holds
the last k gradients (each replica too): ES's inference-only memory is lost (README,
"Peak memory").
"""
from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass
from typing import Literal, Optional

import torch
from pydantic import Field, model_validator

from clbench.fisher import completion_log_likelihood
from clbench.generation import correct_completion, generate_for, task_prompts
from clbench.methods.es import ES, ESConfig, Noise, _mix

# the subspace each process draws from, installed by `install_basis` on every replica
_BASES: dict[str, dict] = {}
SUBSPACE_GAIN = 10.0  # g, chosen on dev (README, "Guided ES")


class ESGuidedConfig(ESConfig):
    sigma: float = Field(0.02, gt=0, description="noise scale (ES's tuned value on the embedded base)")
    alpha: float = Field(0.01, gt=0, description="step size (ES's tuned value on the embedded base)")
    batch_size: int = Field(64, ge=1, description="training prompts per iteration, shared by all members")
    a: float = Field(0.5, gt=0, le=1, description="weight of the isotropic part of the noise covariance; "
                     "1 is plain ES, smaller leans on the gradient subspace")
    subspace: int = Field(4, ge=1, description="k: surrogate gradients kept, the subspace's dimension")
    subspace_gain: Optional[float] = Field(
        SUBSPACE_GAIN, gt=0, description="g: the subspace part's std along each of its k directions "
        "(Cov = a I + (1 - a) g^2 U U^T); null is the paper's sqrt(D / k), which keeps E||eps||^2 = D "
        "but on a model of millions of weights moves every step far along the gradient")
    refresh_every: int = Field(5, ge=1, description="K: steps between surrogate-gradient refreshes")
    surrogate: Literal["correct-sampled", "correct-greedy", "reference"] = Field(
        "correct-sampled", description="whose log-likelihood gives the surrogate gradient: the "
        "unperturbed model's correct answers among `samples` sampled per prompt at temperature 1 "
        "(reward only: REINFORCE's estimate of the expected reward's gradient), its correct greedy "
        "answers (reward only; on the embedded base mostly the planted heuristic where it happens to "
        "be right, README 'Guided ES'), or the items' reference answers (labels: a supervised "
        "direction; it refreshes even where the model gets nothing right)")
    samples: int = Field(4, ge=1, description="completions sampled per prompt at a refresh "
                         "(surrogate correct-sampled)")

    def pairs_given_up(self) -> int:
        """Mirrored pairs a refresh step scores fewer to pay for its generation (one pair
        scores 2 x batch completions)."""
        if self.a == 1 or self.surrogate == "reference":
            return 0
        return math.ceil(self.samples / 2) if self.surrogate == "correct-sampled" else 1

    @model_validator(mode="after")
    def _a_pair_to_give_up(self):
        need = 2 * self.pairs_given_up() + 2
        if self.pairs_given_up() and self.population < need:
            raise ValueError(f"population must be at least {need} with a < 1 and surrogate "
                             f"{self.surrogate}: a refresh step gives up {self.pairs_given_up()} mirrored "
                             "pair(s) for its generation and must keep one")
        return self


def install_basis(model, key: str, basis: dict | None) -> None:
    """Make `basis` (from `orthonormal_basis`) the subspace GuidedNoise(basis_key=key)
    draws from in this process; None removes it."""
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
    gain: Optional[float] = None  # g; None is the paper's sqrt(D / k)

    def eps(self, seed: int, index: int, param: torch.Tensor) -> torch.Tensor:
        e = super().eps(seed, index, param)  # (param.shape) float32, e_D's slice
        basis = _BASES.get(self.basis_key)
        if basis is None:
            return e  # no useful refresh yet: plain ES noise
        k = basis["k"]
        guided = subspace_part(basis, index, _coefficients(seed, k)).view(param.shape)  # (param.shape)
        gain = self.gain if self.gain is not None else math.sqrt(basis["dim"] / k)
        scale = math.sqrt(1.0 - self.a) * gain
        return e.mul_(math.sqrt(self.a)).add_(guided.to(e.device), alpha=scale)


def surrogate_gradient(model, tokenizer, pairs: list[tuple[str, str]]) -> torch.Tensor:
    """d/d theta of the mean log-likelihood of (prompt, completion) pairs, flattened over
    model.named_parameters() (tied tensors once), float32 (D,). One backward per pair,
    accumulated straight into the returned vector: each float32 CPU .grad is a view of it
    (autograd adds into an existing .grad in place), and any other parameter's gradient is
    added into it by a hook as it arrives and then freed, so the gradient costs one
    weight-sized float32 vector. The model is left in its mode with no .grad."""
    params = [p for _, p in model.named_parameters()]
    flat = torch.zeros(sum(p.numel() for p in params), dtype=torch.float32)  # (D,)
    views = [flat[start : start + n].view(p.shape)
             for p, (start, n) in zip(params, flat_offsets([p.numel() for p in params]))]
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    hooks = []
    try:
        for p, v in zip(params, views):
            if p.dtype == torch.float32 and p.device.type == "cpu":
                p.grad = v
            else:  # bfloat16 or on a GPU: add each pair's gradient in float32 and free it
                hooks.append(p.register_post_accumulate_grad_hook(functools.partial(_add_and_free, v)))
        with torch.enable_grad():
            for prompt, completion in pairs:
                (completion_log_likelihood(model, tokenizer, prompt, completion) / len(pairs)).backward()
        for p, v in zip(params, views):
            if p.grad is not None and p.grad.data_ptr() != v.data_ptr():  # autograd replaced it
                v.copy_(p.grad.detach().float())
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return flat


def _add_and_free(into: torch.Tensor, param: torch.Tensor) -> None:
    into.add_(param.grad.detach().to(into.device, torch.float32))
    param.grad = None


def surrogate_pairs(task, model, tokenizer, items: list[dict], surrogate: str, samples: int = 1,
                    seed: int = 0) -> tuple[list[tuple[str, str]], list[str], int]:
    """The (prompt, completion) pairs whose log-likelihood is a surrogate's gradient, the
    completions generated for them (each item `samples` times in order for correct-sampled,
    sampled from `seed`; none for reference) and the generation's tokens."""
    prompts = task_prompts(task, tokenizer, items)
    if surrogate == "reference":
        return [(p, correct_completion(task, i)) for p, i in zip(prompts, items)], [], 0
    n = samples if surrogate == "correct-sampled" else 1
    asked = [i for i in items for _ in range(n)]  # each prompt n times, in order
    comps, tokens = generate_for(task, model, tokenizer, asked,
                                 sample_seed=seed if surrogate == "correct-sampled" else None)
    stop = task.stop[0] if task.stop else ""
    pairs = [(p, comp + stop) for p, comp, s in
             zip([p for p in prompts for _ in range(n)], comps, task.scores(asked, comps)) if s.correct]
    return pairs, comps, tokens


def flat_offsets(numels: list[int]) -> list[tuple[int, int]]:
    """(start, numel) of each tensor in the flat (D,) vector that lays them end to end in
    model.named_parameters() order: the surrogate gradient's and the basis's layout."""
    out, start = [], 0
    for n in numels:
        out.append((start, n))
        start += n
    return out


GRAM_CHUNK = 1 << 20  # entries per float64 block of the Gram matrix (8 MB per gradient)


def gram(grads: list[torch.Tensor]) -> torch.Tensor:
    """G^T G of (D,) float32 vectors in float64, in fixed blocks of D (no float64 copy of
    the whole vectors). Only the main process computes it. (m, m)."""
    m, D = len(grads), grads[0].numel()
    out = torch.zeros(m, m, dtype=torch.float64)
    for s in range(0, D, GRAM_CHUNK):
        block = torch.stack([g[s : s + GRAM_CHUNK] for g in grads]).double()  # (m, chunk)
        out += block @ block.T
    return out


def orthonormal_basis(grads: list[torch.Tensor], shapes: list[int], tol: float = 1e-3) -> dict | None:
    """The gradients' span as U = G C, orthonormal: G the kept gradients (the tensors
    themselves, no copy), C (k, k) the inverse of the Cholesky factor of their Gram matrix
    (Cholesky QR, taken column by column in order). A gradient whose part orthogonal to
    the earlier kept ones is under `tol` of its norm adds nothing and is dropped (float32
    cancellation would make it noise: its error is about 1e-7 / tol); None when nothing
    is left. `shapes` (numel per tensor, in order) gives each tensor's offset."""
    G = gram(grads)  # (m, m) float64
    kept: list[int] = []
    R = torch.zeros(len(grads), len(grads), dtype=torch.float64)  # upper triangular, kept rows/cols
    for j in range(len(grads)):
        norm2 = float(G[j, j])
        if not math.isfinite(norm2) or norm2 <= 0.0:  # a NaN or inf entry, or all zero
            continue
        if kept:
            Rk = R[kept][:, kept]  # (k, k)
            x = torch.linalg.solve_triangular(Rk.T, G[kept, j].unsqueeze(1), upper=False).squeeze(1)
        else:
            x = torch.zeros(0, dtype=torch.float64)
        rest = norm2 - float(x.square().sum())
        if rest <= (tol * tol) * norm2:
            continue
        for i, xi in zip(kept, x.tolist()):
            R[i, j] = xi
        R[j, j] = math.sqrt(rest)
        kept.append(j)
    if not kept:
        return None
    Rk = R[kept][:, kept]
    C = torch.linalg.solve_triangular(Rk, torch.eye(len(kept), dtype=torch.float64), upper=True)  # R^-1
    mix = C.float().contiguous()
    if not bool(torch.isfinite(mix).all()):  # a gradient too small for float32's 1 / norm
        return None
    return {"dim": sum(shapes), "k": len(kept), "grads": [grads[j] for j in kept],
            "mix": mix, "offsets": flat_offsets(shapes)}


def subspace_part(basis: dict, index: int, coefficients: torch.Tensor) -> torch.Tensor:
    """(U e_k) restricted to tensor `index`, flat float32: sum_j (C e_k)_j g_j[slice]."""
    start, n = basis["offsets"][index]
    c = (basis["mix"] @ coefficients).tolist()  # (k,)
    out = basis["grads"][0][start : start + n] * c[0]
    for g, cj in zip(basis["grads"][1:], c[1:]):
        out.add_(g[start : start + n], alpha=cj)
    return out


def basis_matrix(basis: dict) -> torch.Tensor:
    """U as a dense (D, k) float64 matrix, for checks on small models."""
    return torch.stack(basis["grads"], dim=1).double() @ basis["mix"].double()


class ESGuided(ES):
    name = "es-guided"
    version = 2  # 2: U = G C (Cholesky of the Gram matrix) instead of a float64 QR
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
        return GuidedNoise(c.sigma, c.shared_seed, c.restore, a=c.a, basis_key=self._key(ctx),
                           gain=c.subspace_gain)

    def start(self, pop, ctx) -> None:
        if ctx.start_step == 0:  # a new task: its own gradients only
            self.grads, self.basis = [], None
        pop.apply(install_basis, self._key(ctx), self.basis)  # the resumed subspace, or none

    def before_scoring(self, pop, ctx, task, step: int, batches) -> dict:
        """Every refresh_every steps: refresh the subspace from the batch's correct answers
        (sampled or greedy) or its reference answers, and give up mirrored pairs to pay for
        the generation."""
        c = self.config
        if c.a == 1.0 or step % c.refresh_every:
            return {}
        seed = _mix(ctx.seed, ctx.task_index, step, "surrogate")
        pairs, comps, tokens = surrogate_pairs(task, ctx.model, ctx.tokenizer, batches[0].items,
                                               c.surrogate, c.samples, seed)
        spent = ({"forward_tokens": tokens, "completions": len(comps), "pairs_given_up": c.pairs_given_up()}
                 if comps else {})  # reference answers: no generation, nothing to pay for
        if not pairs:
            self.refreshes["no_correct_answer"] += 1
            return spent  # keep the previous subspace (or plain noise before the first)
        new = surrogate_gradient(ctx.model, ctx.tokenizer, pairs)
        tokens = sum(len(ctx.tokenizer(x, add_special_tokens=False)["input_ids"])
                     for pair in pairs for x in pair)  # as completion_log_likelihood tokenizes
        spent["forward_tokens"] = spent.get("forward_tokens", 0) + tokens  # the likelihood's forward
        spent["backward_tokens"] = tokens
        if not bool(torch.isfinite(new).all()):  # an overflowing likelihood: not a direction
            self.refreshes["no_direction"] += 1
            return spent
        grads = (self.grads + [new])[-c.subspace:]
        basis = orthonormal_basis(grads, [p.numel() for _, p in ctx.model.named_parameters()])
        if basis is None:  # all-zero gradients: nothing to lean on; keep the previous subspace
            self.refreshes["no_direction"] += 1
            return spent
        self.grads, self.basis = grads, basis
        pop.apply(install_basis, self._key(ctx), self.basis)
        self.refreshes["useful"] += 1
        return spent

    def end_task(self, task, ctx) -> None:
        """Say what the task's refreshes found (the hybrid issue asks which fallback ran)."""
        r = self.refreshes
        if self.config.a < 1:
            print(f"es-guided, {task.name}: {sum(r.values())} refreshes so far in this run: {r['useful']} "
                  f"useful, {r['no_correct_answer']} without a correct answer and {r['no_direction']} "
                  "without a direction (each kept the previous subspace, or plain ES noise before "
                  "the first useful one)", file=sys.stderr)

    def state_dict(self) -> dict:
        return {"grads": list(self.grads), "basis": self.basis, "refreshes": dict(self.refreshes)}

    def load_state_dict(self, state: dict) -> None:
        self.grads = list(state.get("grads") or [])
        self.basis = state.get("basis")
        self.refreshes = dict(state.get("refreshes") or {"useful": 0, "no_correct_answer": 0, "no_direction": 0})
