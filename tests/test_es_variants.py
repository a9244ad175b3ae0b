"""ES variants: each hook against a hand computation, and a smoke run each."""
import json

import pytest
import torch

from clbench.methods.es import Noise
from clbench.methods.es_awd import anchored_decay, set_anchor
from clbench.methods.es_replay import ESReplay, ESReplayConfig
from clbench.methods.es_sparse import TopK
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


@pytest.mark.parametrize("method,extra", [
    ("es-awd", ["--set", "lam=10"]),
    ("es-sparse", ["--set", "mask=topk", "--set", "density=0.1"]),
    ("es-sparse", ["--set", "mask=random", "--set", "density=0.1"]),
    ("es-replay", ["--set", "replay_batch=4"]),
])
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
