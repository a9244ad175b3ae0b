"""ES variants: each hook against a hand computation, and a smoke run each."""
import json

import pytest
import torch

from clbench.methods.es import Noise
from clbench.methods.es_awd import anchored_decay, set_anchor
from clbench.methods.es_replay import ESReplay, ESReplayConfig
from clbench.methods.es_sparse import TopK, magnitude_masks, top_share
from clbench.population import Batch

from test_runner import QUICK, clbench


class One(torch.nn.Module):
    def __init__(self, values):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(values))


def test_awd_l2_and_l1_by_hand():
    m = One([1.0, -2.0, 0.5])
    set_anchor(m, {"w": torch.tensor([0.0, 0.0, 0.0])})
    anchored_decay(m, "l2", 0.1)  # w0 + 0.9 (w - w0)
    assert m.w.tolist() == pytest.approx([0.9, -1.8, 0.45])
    anchored_decay(m, "l1", 0.5)  # soft threshold by 0.5
    assert m.w.tolist() == pytest.approx([0.4, -1.3, 0.0])


def test_topk_keeps_the_largest_share():
    delta = torch.tensor([[0.1, -5.0], [3.0, 0.2]])
    assert TopK(0.5)(0, delta).tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert TopK(0.01)(0, delta).sum() == 1


def test_random_mask_is_fixed_and_has_the_density():
    p = torch.zeros(200, 100)
    n = Noise(0.1, density=0.1, mask_seed=3)
    e1, e2 = n.eps(1, 0, p), n.eps(2, 0, p)
    assert torch.equal(e1 != 0, e2 != 0)  # same entries every member and step
    assert 0.08 < (e1 != 0).float().mean() < 0.12


def test_replay_fitness_by_hand():
    es = ESReplay(ESReplayConfig(rho=0.25))
    batches = [Batch("code", [0] * 4), Batch("countdown", [0] * 3), Batch("cipher", [0] * 1)]
    # (1 - 0.25) * 0.8 + 0.25 * (0.4 * 3 + 1.0 * 1) / 4
    assert es.fitness([0.8, 0.4, 1.0], batches) == pytest.approx(0.6 + 0.25 * 0.55)
    assert es.fitness([0.8], batches[:1]) == 0.8


def test_replay_takes_its_items_out_of_the_batch():
    with pytest.raises(ValueError, match="replay_batch"):
        ESReplayConfig(batch_size=16, replay_batch=16)


@pytest.mark.parametrize("method,extra", [
    ("es-awd", ["--set", "lam=10"]),
    ("es-sparse", ["--set", "mask=topk", "--set", "density=0.1"]),
    ("es-sparse", ["--set", "mask=random", "--set", "density=0.1"]),
    ("es-replay", ["--set", "replay_batch=2"]),
    ("es-replay", ["--set", "replay_batch=2", "--set", "general=true"]),
    ("es-sparse", ["--set", "mask=magnitude", "--set", "density=0.1"]),
])
@pytest.mark.slow
@pytest.mark.ci
def test_variant_smoke_run(method, extra, tmp_path):
    out = tmp_path / "v"
    clbench("run", "--method", method, "--sequence", "math-then-code", "--output", str(out),
            *QUICK, *extra)
    r = json.loads((out / "result.json").read_text())
    assert r["method"]["name"] == method
    drift = r["geometry"]["code"]["drift_l2"]["overall"]
    sparsity = r["geometry"]["code"]["sparsity"]["1e-06"]["overall"]
    assert drift > 0
    if "mask=random" in extra:
        assert sparsity > 0.85  # one fixed 10% mask: about 90% of entries never move
    if "mask=topk" in extra:
        assert sparsity > 0.35  # <= 10% of entries per step, 6 steps
    assert r["data_access"]["earlier_tasks"] is (method == "es-replay")
    # every method scores population x batch_size completions per step, replay included
    assert r["budget"]["completions_per_task"] == {"countdown": 4 * 16 * 3, "code": 4 * 16 * 3}
    assert r["data_access"]["general"] is ("general=true" in extra)
    if "mask=magnitude" in extra:
        assert sparsity > 0.85


def test_top_share_and_magnitude_mask_pick_by_hand():
    assert top_share(torch.tensor([[0.3, 0.1], [0.9, 0.2]]), 0.5).tolist() == [[True, False], [True, False]]
    m = One([0.5, -0.01, 2.0, 0.02])
    masks = magnitude_masks(m, {"w": m.w.detach()}, 0.5)  # the two smallest |w|
    assert masks[0].tolist() == [False, True, False, True]


def test_fisher_is_the_mean_of_squared_per_example_gradients():
    """Hand computation on the embedded model, and not the squared mean gradient."""
    from clbench.fisher import completion_log_likelihood, diagonal_fisher
    from clbench.model import load_model
    from clbench.registry import Registry

    lm = load_model()
    items = Registry.load().task("countdown").split("train")[:3]
    fisher = diagonal_fisher(lm.model, lm.tokenizer, [(i["prompt"], i["target"] + "\n") for i in items])
    assert all(q.grad is None for q in lm.model.parameters())  # the model is left clean
    name, p = "model.layers.0.mlp.down_proj.weight", dict(lm.model.named_parameters())["model.layers.0.mlp.down_proj.weight"]
    grads = []
    for it in items:
        lm.model.zero_grad()
        completion_log_likelihood(lm.model, lm.tokenizer, it["prompt"], it["target"] + "\n").backward()
        grads.append(p.grad.detach().clone())
    by_hand = sum(g ** 2 for g in grads) / 3
    assert torch.allclose(fisher[name], by_hand, rtol=1e-5, atol=1e-12)
    squared_mean = (sum(grads) / 3) ** 2
    assert not torch.allclose(fisher[name], squared_mean, rtol=1e-2)


@pytest.mark.slow
@pytest.mark.ci
def test_fisher_mask_is_the_same_on_worker_replicas(tmp_path):
    """Masks built in the main process reach the workers: local == in-process."""
    runs = {}
    for backend in ("inprocess", "local"):
        out = tmp_path / backend
        clbench("run", "--method", "es-sparse", "--sequence", "math-only", "--output", str(out),
                *QUICK, "--backend", backend, "--set", "mask=fisher", "--set", "density=0.05",
                "--set", "fisher_examples=8")
        runs[backend] = json.loads((out / "result.json").read_text())
    a, b = runs["inprocess"], runs["local"]
    assert a["matrix"] == b["matrix"]
    assert a["geometry"] == b["geometry"]
    assert a["geometry"]["countdown"]["sparsity"]["1e-06"]["overall"] > 0.9


def test_general_items_avoid_every_held_out_item():
    from clbench.general_data import general_items
    from clbench.registry import Registry

    reg = Registry.load()
    spec = reg.sequence("math-then-code").general_replay
    items = general_items(spec)
    assert len(items) == spec.size and items == general_items(spec)  # deterministic
    families = {name for name, _ in items}
    assert families == {"sort", "reverse", "min-choice"}  # the probes' distribution: no new task's items
    for name in families:
        fam = reg.task(name)
        held = fam.held_out_keys()
        assert not any(fam.key(it) in held for n, it in items if n == name)


def test_every_general_item_is_scored_by_its_own_family():
    """es-replay scores general items with each family's own scorer, as a test item: a
    multiple-choice probe's pretraining item must carry its choices (it once did not,
    and `general: true` crashed on min-choice's 145 items)."""
    from clbench.general_data import general_items
    from clbench.registry import Registry

    reg = Registry.load()
    items = general_items(reg.sequence("math-then-code").general_replay)
    for name, it in items:
        right = reg.task(name).score(it, it["choices"][it["label"]] if "choices" in it else it["target"])
        assert right.correct and right.reward == 1.0, (name, it)
    mc = [it for name, it in items if name == "min-choice"]
    assert mc and all(it["choices"][0] == min(it["prompt"][4:-1]) for it in mc)
    # the right answer is the smallest letter, not the one pretraining happened to show
    shown_other = [it for it in mc if it["target"] != it["choices"][0]]
    assert shown_other and not any(reg.task("min-choice").score(it, it["target"]).correct for it in shown_other)


def test_general_replay_on_a_sequence_without_a_set_is_exit_2(tmp_path, monkeypatch):
    from clbench.config import RunConfig
    from clbench.errors import UserError
    from clbench.registry import Registry
    from clbench.runner import Runner

    real = Registry.sequence
    monkeypatch.setattr(Registry, "sequence",
                        lambda self, n: real(self, n).model_copy(update={"general_replay": None}))
    cfg = RunConfig(method="es-replay", sequence="math-then-code", output=str(tmp_path / "x"),
                    method_config={"general": True})
    with pytest.raises(UserError, match="general_replay"):
        Runner(cfg)
    assert not (tmp_path / "x").exists()
