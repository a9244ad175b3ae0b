"""Geometry of a fine-tuning update: how far, how dense, and how low-rank.

Functions over plain state dicts (``dict[str, torch.Tensor]``, parameter name
-> tensor) of the base model and of the fine-tuned ("current") model, after
Abdi, Gupta et al., "Evolutionary Strategies lead to Catastrophic Forgetting
in LLMs" (arXiv 2601.20861). The paper explains ES's forgetting by its update
being dense and of large l2 norm, while GRPO's is sparse and small.

Why a bf16 sparsity: measured on float32 weights trained with AdamW, GRPO
moves more than 99% of entries (Adam's normalised step touches every entry
with a non-zero gradient). The paper's 95-100% GRPO sparsity comes from
bf16 weights and lr 1e-6: an update smaller than half a weight's rounding
step (bf16 spacing at 1.0 is 2**-7) vanishes when stored. ``sparsity(...,
cast=torch.bfloat16)`` reproduces that storage precision from float32 runs.

Pass parameters (``dict(model.named_parameters())``), not buffers.
Non-floating tensors are skipped. With tied embeddings, drop ``lm_head.weight``
(it aliases ``embed_tokens``) or its entries count twice.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Iterator, Optional

import torch
import torch.nn.functional as F

StateDict = dict[str, torch.Tensor]

# "qkv" is for fused projections (GPT-2 c_attn, Phi-3 qkv_proj, NeoX query_key_value).
COMPONENTS = ("q", "k", "v", "qkv", "o", "mlp", "norm", "embedding", "other")

_CHUNK = 1 << 22  # entries per chunk: bounds temporaries to ~32 MB in float64

_LAYER_RE = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)(?:\.|$)")
_NORM_RE = re.compile(r"\w*norm\w*|ln(_\w+)?")  # input_layernorm, q_norm, norm, ln_1, ln_f
_EMBEDDING = {"embed_tokens", "wte", "wpe", "embed_positions"}
_ATTENTION = {"attn", "self_attn", "attention"}
_BY_SEGMENT = {
    "q_proj": "q", "query": "q",
    "k_proj": "k", "key": "k",
    "v_proj": "v", "value": "v",
    "o_proj": "o", "out_proj": "o",
    "c_attn": "qkv", "qkv_proj": "qkv", "query_key_value": "qkv", "Wqkv": "qkv",
    "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp", "gate_up_proj": "mlp",
    "c_fc": "mlp", "fc1": "mlp", "fc2": "mlp", "mlp": "mlp",
}


def layer_of(name: str) -> Optional[int]:
    """Block index: the integer after ``layers.`` / ``h.`` / ``blocks.``; else None."""
    m = _LAYER_RE.search(name)
    return int(m.group(1)) if m else None


def component_of(name: str) -> str:
    """One of COMPONENTS.

    ``lm_head`` is "other", not "embedding": untied, it is an output matrix
    of its own; "embedding" is the input tables (embed_tokens, wte, wpe).
    Norms are matched before q/k/v so Qwen3's ``self_attn.q_norm`` is "norm".
    """
    parts = name.split(".")
    if any(p in _EMBEDDING for p in parts):
        return "embedding"
    if any(_NORM_RE.fullmatch(p) for p in parts):
        return "norm"
    for p in reversed(parts):  # innermost module first: "mlp.c_proj" -> mlp
        if p in _BY_SEGMENT:
            return _BY_SEGMENT[p]
    if any(p in _ATTENTION for p in parts) and ("c_proj" in parts or "dense" in parts):
        return "o"  # GPT-2 attn.c_proj, NeoX attention.dense
    return "other"


# ---------------------------------------------------------------- plumbing


def _pairs(base: StateDict, current: StateDict) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, base tensor, current tensor) for non-empty floating tensors.

    Raises ValueError naming the first key that is missing or differs in shape.
    """
    for name in base:
        if name not in current:
            raise ValueError(f"parameter {name!r} is in base but not in current")
        if base[name].shape != current[name].shape:
            raise ValueError(f"parameter {name!r}: base shape {tuple(base[name].shape)} "
                             f"!= current shape {tuple(current[name].shape)}")
    extra = [name for name in current if name not in base]
    if extra:
        raise ValueError(f"parameter {extra[0]!r} is in current but not in base")
    pairs = [(n, b, current[n]) for n, b in base.items()
             if torch.is_floating_point(b) and b.numel() > 0]
    if not pairs:
        raise ValueError("no non-empty floating-point parameters to compare")
    return pairs


def _delta_chunks(b: torch.Tensor, c: torch.Tensor, dtype: torch.dtype,
                  cast: Optional[torch.dtype] = None) -> Iterator[torch.Tensor]:
    """(current - base) flattened, in chunks of at most _CHUNK entries, in ``dtype``.

    With ``cast``, both sides are first rounded to ``cast`` (storage precision).
    Chunking keeps temporaries small: never a float64 copy of a whole matrix.
    """
    b, c = b.detach().reshape(-1), c.detach().reshape(-1)  # (numel,)
    for start in range(0, b.numel(), _CHUNK):
        bb, cc = b[start:start + _CHUNK], c[start:start + _CHUNK]
        if cast is not None:
            bb, cc = bb.to(cast), cc.to(cast)
        yield cc.to(dtype) - bb.to(device=cc.device, dtype=dtype)


def _aggregate(per_param: dict[str, tuple[float, int]],
               finish: Callable[[float, int], float]) -> dict:
    """Pool (numerator, n_entries) per parameter into overall / by_component /
    by_layer, then apply ``finish(numerator, n)`` to each pool."""
    def pooled(key: Callable[[str], object]) -> dict[str, float]:
        pools: dict[str, list] = {}
        for name, (x, n) in per_param.items():
            group = key(name)
            if group is not None:
                pool = pools.setdefault(str(group), [0.0, 0])
                pool[0] += x
                pool[1] += n
        order = sorted(pools, key=lambda g: (int(g) if g.isdigit() else -1, g))
        return {g: finish(*pools[g]) for g in order}

    total, n = (sum(col) for col in zip(*per_param.values()))
    return {"overall": finish(total, n),
            "by_component": pooled(component_of), "by_layer": pooled(layer_of)}


def _squared_sums(base: StateDict, current: StateDict) -> dict[str, tuple[float, int]]:
    """name -> (sum of (current - base)**2 accumulated in float64, n entries)."""
    return {
        name: (sum(float(d.square().sum()) for d in _delta_chunks(b, c, torch.float64)), b.numel())
        for name, b, c in _pairs(base, current)
    }


def _small_counts(base: StateDict, current: StateDict, taus: tuple[float, ...],
                  cast: Optional[torch.dtype]) -> dict[float, dict[str, tuple[int, int]]]:
    """tau -> name -> (entries with |delta| <= tau, n entries); one pass for all taus."""
    out: dict[float, dict[str, tuple[int, int]]] = {t: {} for t in taus}
    for name, b, c in _pairs(base, current):
        small = [0] * len(taus)
        for d in _delta_chunks(b, c, torch.float32, cast):  # delta in float32
            a = d.abs()
            small = [s + int((a <= t).sum()) for s, t in zip(small, taus)]
        for t, s in zip(taus, small):
            out[t][name] = (s, b.numel())
    return out


# ---------------------------------------------------------------- public API


def drift_l2(base: StateDict, current: StateDict) -> float:
    """Frobenius norm of (current - base) over all parameters, float64 accumulation."""
    return _aggregate(_squared_sums(base, current), lambda s, n: math.sqrt(s))["overall"]


CURVE_TAU = 1e-6  # the threshold of a curve point's sparsity (sparsity's default)


def sparsity(base: StateDict, current: StateDict, tau: float = CURVE_TAU,
             cast: Optional[torch.dtype] = None) -> dict:
    """Share (0..1) of entries with |current - base| <= tau, entry-weighted.

    The delta is computed in float32; with ``cast=torch.bfloat16`` both
    weights are rounded to bf16 first, so sub-rounding-step updates vanish.
    Returns {"overall", "by_component": {comp: share}, "by_layer": {"3": share}};
    entries outside any layer (embeddings, final norm, lm_head) are not in by_layer.
    """
    counts = _small_counts(base, current, (tau,), cast)[tau]
    return _aggregate(counts, lambda k, n: k / n)


def update_rank_share(base: StateDict, current: StateDict,
                      tol: Optional[float] = None) -> dict[str, float]:
    """name -> rank(delta) / min(shape) for each 2-D parameter (others skipped).

    Rank by torch.linalg.matrix_rank in float32. ``tol`` is an absolute
    threshold on singular values; None uses torch's default
    (sigma_max * max(shape) * float32 eps). Costs an SVD per matrix.
    """
    shares = {}
    for name, b, c in _pairs(base, current):
        if b.dim() != 2:
            continue
        delta = c.detach().float() - b.detach().to(c.device).float()  # (out, in)
        kwargs = {} if tol is None else {"atol": tol, "rtol": 0.0}
        rank = torch.linalg.matrix_rank(delta, **kwargs)
        shares[name] = int(rank) / min(delta.shape)
    return shares


def rank_share_by_component(shares: dict[str, float]) -> dict[str, float]:
    """Mean of update_rank_share's values per component (unweighted by size)."""
    groups: dict[str, list[float]] = {}
    for name, share in shares.items():
        groups.setdefault(component_of(name), []).append(share)
    return {comp: sum(v) / len(v) for comp, v in sorted(groups.items())}


def kl_from_base(base_logits: torch.Tensor, current_logits: torch.Tensor,
                 mask: Optional[torch.Tensor] = None) -> float:
    """Mean over positions of KL(P_current || P_base), in nats.

    Direction: expectation under the fine-tuned model's distribution of
    log P_current - log P_base, i.e. how far the fine-tuned model's output
    distribution has moved from the base model's.
    Logits: (..., vocab), e.g. (batch, seq, vocab). mask: (...), e.g.
    (batch, seq); non-zero / True = count this position.
    """
    if base_logits.shape != current_logits.shape:
        raise ValueError(f"logit shapes differ: base {tuple(base_logits.shape)} "
                         f"vs current {tuple(current_logits.shape)}")
    log_q = F.log_softmax(base_logits.float(), dim=-1)     # (..., V) base
    log_p = F.log_softmax(current_logits.float(), dim=-1)  # (..., V) current
    p = log_p.exp()
    # p * (log p - log q), with 0 * log 0 = 0 where the current model gives p = 0.
    kl = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(-1)  # (...)
    if mask is None:
        return float(kl.mean())
    if mask.shape != kl.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != positions {tuple(kl.shape)}")
    weight = mask.to(kl.dtype)
    if float(weight.sum()) == 0:
        raise ValueError("mask selects no positions")
    return float((kl * weight).sum() / weight.sum())


def tau_key(tau: float) -> str:
    return f"{tau:g}"  # 1e-06 -> "1e-06"


RUN_TAUS = (1e-6,)  # the sparsity thresholds a run's geometry records (validate checks the keys)


def geometry_report(base: StateDict, current: StateDict,
                    taus: tuple[float, ...] = RUN_TAUS, bf16: bool = True) -> dict:
    """JSON-serialisable summary of the update.

    {"n_entries": int,
     "drift_l2": {"overall", "by_component", "by_layer"},       # sqrt of pooled sum of squares
     "sparsity": {"1e-06": {"overall", "by_component", "by_layer"}},   # own dtype
     "sparsity_bf16": {...same...}}                              # only when bf16=True
    """
    squares = _squared_sums(base, current)
    report = {"n_entries": sum(n for _, n in squares.values()),
              "drift_l2": _aggregate(squares, lambda s, n: math.sqrt(s))}
    casts = {"sparsity": None, **({"sparsity_bf16": torch.bfloat16} if bf16 else {})}
    for key, cast in casts.items():
        counts = _small_counts(base, current, tuple(taus), cast)
        report[key] = {tau_key(t): _aggregate(counts[t], lambda k, n: k / n) for t in taus}
    return report
