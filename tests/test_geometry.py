"""Update geometry on tiny hand-made state dicts, numbers worked out by hand."""

import json
import math

import pytest
import torch

from clbench import geometry
from clbench.geometry import (
    component_of,
    drift_l2,
    geometry_report,
    kl_from_base,
    layer_of,
    rank_share_by_component,
    sparsity,
    update_rank_share,
)

Q = "model.layers.0.self_attn.q_proj.weight"
UP = "model.layers.0.mlp.up_proj.weight"
LN = "model.layers.1.input_layernorm.weight"
EMB = "model.embed_tokens.weight"
NORM = "model.norm.weight"


def _toy():
    """Five parameters, 23 entries, 5 of them changed.

    q_proj 2x2: 2 changed (by 3 and 4)  -> 2/4 unchanged
    up_proj 2x3: 1 changed (by 1)        -> 5/6
    layer-1 layernorm (3,): unchanged    -> 3/3
    embed_tokens 4x2: 1 changed (by 2)   -> 7/8
    final norm (2,): 1 changed (by 2)    -> 1/2
    """
    base = {
        Q: torch.zeros(2, 2),
        UP: torch.ones(2, 3),
        LN: torch.ones(3),
        EMB: torch.zeros(4, 2),
        NORM: torch.ones(2),
    }
    cur = {k: v.clone() for k, v in base.items()}
    cur[Q][0, 0] += 3.0
    cur[Q][1, 1] += 4.0
    cur[UP][1, 2] += 1.0
    cur[EMB][3, 0] -= 2.0
    cur[NORM][0] += 2.0
    return base, cur


# ------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name, comp, layer",
    [
        ("model.layers.3.self_attn.q_proj.weight", "q", 3),
        ("model.layers.3.self_attn.q_proj.bias", "q", 3),   # Qwen2 bias
        ("model.layers.3.self_attn.k_proj.weight", "k", 3),
        ("model.layers.3.self_attn.k_proj.bias", "k", 3),
        ("model.layers.3.self_attn.v_proj.weight", "v", 3),
        ("model.layers.3.self_attn.o_proj.weight", "o", 3),
        ("model.layers.12.mlp.gate_proj.weight", "mlp", 12),
        ("model.layers.12.mlp.up_proj.weight", "mlp", 12),
        ("model.layers.12.mlp.down_proj.weight", "mlp", 12),
        ("model.layers.3.input_layernorm.weight", "norm", 3),
        ("model.layers.3.post_attention_layernorm.weight", "norm", 3),
        ("model.layers.3.self_attn.q_norm.weight", "norm", 3),  # Qwen3: a norm, not q
        ("model.norm.weight", "norm", None),
        ("model.embed_tokens.weight", "embedding", None),
        ("lm_head.weight", "other", None),
        # GPT-2 style
        ("transformer.h.5.attn.c_attn.weight", "qkv", 5),
        ("transformer.h.5.attn.c_proj.weight", "o", 5),
        ("transformer.h.5.mlp.c_fc.weight", "mlp", 5),
        ("transformer.h.5.mlp.c_proj.bias", "mlp", 5),
        ("transformer.h.5.ln_1.weight", "norm", 5),
        ("transformer.h.5.ln_2.bias", "norm", 5),
        ("transformer.ln_f.weight", "norm", None),
        ("transformer.wte.weight", "embedding", None),
        ("transformer.wpe.weight", "embedding", None),
        ("blocks.7.attn.something.weight", "other", 7),
    ],
)
def test_component_and_layer(name, comp, layer):
    assert component_of(name) == comp
    assert layer_of(name) == layer


def test_layer_needs_whole_segment():
    assert layer_of("model.mylayers.3.weight") is None
    assert layer_of("model.layers.x.weight") is None


# ------------------------------------------------------------- drift


def test_drift_3_4_5():
    base = {Q: torch.zeros(2, 2), NORM: torch.ones(2)}
    cur = {Q: torch.tensor([[3.0, 0.0], [0.0, 4.0]]), NORM: torch.ones(2)}
    d = drift_l2(base, cur)
    assert isinstance(d, float)
    assert d == pytest.approx(5.0)


def test_drift_all_parameters():
    base, cur = _toy()
    # 3^2 + 4^2 + 1^2 + 2^2 + 2^2 = 34
    assert drift_l2(base, cur) == pytest.approx(math.sqrt(34))


def test_drift_float64_accumulation_of_bf16_weights():
    # 1000 entries each moved by 2^-7 in bf16: sum of squares = 1000 * 2^-14.
    base = {Q: torch.ones(1000, dtype=torch.bfloat16)}
    cur = {Q: torch.full((1000,), 1.0078125, dtype=torch.bfloat16)}
    assert drift_l2(base, cur) == pytest.approx(math.sqrt(1000) * 2**-7, rel=1e-12)


# ------------------------------------------------------------- sparsity


def test_sparsity_counts_are_entry_weighted():
    base, cur = _toy()
    s = sparsity(base, cur)
    assert s["overall"] == pytest.approx(18 / 23)
    assert s["by_component"] == pytest.approx(
        {"q": 2 / 4, "mlp": 5 / 6, "norm": (3 + 1) / (3 + 2), "embedding": 7 / 8}
    )
    # layer 0 pools q and up: (2 + 5) / (4 + 6) = 0.7, not the mean of 0.5 and 5/6.
    # embed_tokens and model.norm are in no layer and are left out of by_layer.
    assert s["by_layer"] == pytest.approx({"0": 0.7, "1": 1.0})


def test_sparsity_tau():
    base = {Q: torch.zeros(4)}
    cur = {Q: torch.tensor([0.0, 5e-7, 5e-6, 1.0])}
    assert sparsity(base, cur, tau=1e-6)["overall"] == pytest.approx(2 / 4)
    assert sparsity(base, cur, tau=1e-5)["overall"] == pytest.approx(3 / 4)
    assert sparsity(base, cur, tau=0.0)["overall"] == pytest.approx(1 / 4)


def test_bf16_rounding_hides_small_updates():
    # bf16 spacing at 1.0 is 2^-7 = 0.0078125: +1e-4 rounds back to 1.0, +2^-7 survives.
    base = {Q: torch.tensor([1.0, 1.0])}
    cur = {Q: torch.tensor([1.0001, 1.0078125])}
    assert sparsity(base, cur)["overall"] == 0.0                           # float32: both moved
    assert sparsity(base, cur, cast=torch.bfloat16)["overall"] == 0.5      # bf16: one vanished


def test_chunking_gives_the_same_answer(monkeypatch):
    base, cur = _toy()
    whole_d, whole_s = drift_l2(base, cur), sparsity(base, cur)
    monkeypatch.setattr(geometry, "_CHUNK", 3)
    assert drift_l2(base, cur) == pytest.approx(whole_d)
    assert sparsity(base, cur) == whole_s


def test_non_float_tensors_skipped():
    base = {Q: torch.zeros(2), "model.position_ids": torch.arange(4)}
    cur = {Q: torch.tensor([0.0, 1.0]), "model.position_ids": torch.arange(4)}
    assert sparsity(base, cur)["overall"] == 0.5


# ------------------------------------------------------------- errors


def test_shape_mismatch_names_key():
    base = {Q: torch.zeros(2, 2), UP: torch.zeros(2, 3)}
    cur = {Q: torch.zeros(2, 2), UP: torch.zeros(3, 2)}
    with pytest.raises(ValueError, match=r"up_proj.*\(2, 3\).*\(3, 2\)"):
        drift_l2(base, cur)


@pytest.mark.parametrize("missing_from", ["base", "current"])
def test_key_mismatch_names_key(missing_from):
    full = {Q: torch.zeros(2), UP: torch.zeros(2)}
    part = {Q: torch.zeros(2)}
    base, cur = (part, full) if missing_from == "base" else (full, part)
    with pytest.raises(ValueError, match="up_proj"):
        sparsity(base, cur)


# ------------------------------------------------------------- rank


def test_rank_share():
    u, v = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, -1.0, 0.5, 2.0])
    base = {
        Q: torch.randn(3, 4, generator=torch.Generator().manual_seed(0)),
        "model.layers.0.self_attn.k_proj.weight": torch.zeros(3, 3),
        "model.layers.0.self_attn.v_proj.weight": torch.zeros(3, 3),
        NORM: torch.ones(3),
    }
    cur = {
        Q: base[Q] + torch.outer(u, v),                                  # rank 1 of min 3
        "model.layers.0.self_attn.k_proj.weight": torch.eye(3),          # full rank
        "model.layers.0.self_attn.v_proj.weight": torch.zeros(3, 3),     # no update
        NORM: torch.full((3,), 2.0),                                     # 1-D: skipped
    }
    shares = update_rank_share(base, cur)
    assert set(shares) == {Q, "model.layers.0.self_attn.k_proj.weight",
                           "model.layers.0.self_attn.v_proj.weight"}
    assert shares[Q] == pytest.approx(1 / 3)
    assert shares["model.layers.0.self_attn.k_proj.weight"] == 1.0
    assert shares["model.layers.0.self_attn.v_proj.weight"] == 0.0
    # with an absolute tol above every singular value, nothing counts
    assert update_rank_share(base, cur, tol=100.0)[Q] == 0.0
    assert rank_share_by_component(shares) == pytest.approx({"q": 1 / 3, "k": 1.0, "v": 0.0})


# ------------------------------------------------------------- KL


def test_kl_identical_is_zero():
    logits = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(1))
    assert kl_from_base(logits, logits.clone()) == pytest.approx(0.0, abs=1e-6)


def test_kl_two_classes_direction():
    # current p = (1/2, 1/2); base q = (3/4, 1/4) from logits (ln 3, 0).
    # KL(p || q) = 1/2 ln(2/3) + 1/2 ln(2) = 1/2 ln(4/3) ~ 0.143841
    # (the other direction, KL(q || p) = 3/4 ln(3/2) + 1/4 ln(1/2) ~ 0.130812)
    base = torch.tensor([[math.log(3.0), 0.0]])
    cur = torch.tensor([[0.0, 0.0]])
    assert kl_from_base(base, cur) == pytest.approx(0.5 * math.log(4 / 3), rel=1e-5)
    assert kl_from_base(cur, base) == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5), rel=1e-5)


def test_kl_mask_averages_unmasked_positions_only():
    base = torch.tensor([[[math.log(3.0), 0.0], [10.0, -10.0], [0.0, 0.0]]])  # (1, 3, 2)
    cur = torch.tensor([[[0.0, 0.0], [-10.0, 10.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, False, True]])
    # positions 0 and 2 count: (1/2 ln(4/3) + 0) / 2
    assert kl_from_base(base, cur, mask) == pytest.approx(0.25 * math.log(4 / 3), rel=1e-5)
    with pytest.raises(ValueError, match="no positions"):
        kl_from_base(base, cur, torch.zeros(1, 3))
    with pytest.raises(ValueError, match="shapes differ"):
        kl_from_base(base, cur[:, :2])


# ------------------------------------------------------------- report


def test_geometry_report():
    base, cur = _toy()
    r = geometry_report(base, cur, taus=(1e-6, 1.5))
    json.dumps(r)  # plain JSON
    assert set(r) == {"n_entries", "drift_l2", "sparsity", "sparsity_bf16"}
    assert r["n_entries"] == 23
    assert r["drift_l2"]["overall"] == pytest.approx(math.sqrt(34))
    assert r["drift_l2"]["by_component"]["q"] == pytest.approx(5.0)
    assert r["drift_l2"]["by_layer"] == pytest.approx({"0": math.sqrt(26), "1": 0.0})
    assert set(r["sparsity"]) == {"1e-06", "1.5"}
    assert r["sparsity"]["1e-06"] == sparsity(base, cur)
    # tau 1.5 also counts the up_proj change of 1: 19 of 23
    assert r["sparsity"]["1.5"]["overall"] == pytest.approx(19 / 23)
    # the toy updates are whole numbers, exact in bf16: same answer
    assert r["sparsity_bf16"]["1e-06"]["overall"] == pytest.approx(18 / 23)
    assert "sparsity_bf16" not in geometry_report(base, cur, bf16=False)
