"""Guided ES (methods/es_guided.py, arXiv 1806.10230): the noise's covariance, the same
noise on every backend, a = 1 is es bit for bit, and resume between two refreshes."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from clbench.config import RunConfig
from clbench.methods.es import apply_update
from clbench.methods.es_guided import (ESGuided, ESGuidedConfig, GuidedNoise, basis_matrix,
                                       install_basis, orthonormal_basis, surrogate_gradient)
from clbench.population import Batch, InProcessBackend, LocalProcessBackend, Member
from clbench.registry import Registry
from clbench.runner import Runner


class Two(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.zeros(3))
        self.b = torch.nn.Parameter(torch.zeros(2, 2))


def test_noise_has_the_stated_covariance():
    model = Two()
    shapes = [p.numel() for p in model.parameters()]
    D = sum(shapes)
    gen = torch.Generator().manual_seed(0)
    basis = orthonormal_basis([torch.randn(D, generator=gen) for _ in range(2)], shapes)
    U = basis_matrix(basis)  # (D, k)
    assert torch.allclose(U.T @ U, torch.eye(2, dtype=torch.float64), atol=1e-6)
    install_basis(model, "cov-test", basis)
    a = 0.3
    params = list(model.parameters())
    n = 40000

    def covariance(noise):
        X = torch.stack([torch.cat([noise.eps(s, i, p).reshape(-1) for i, p in enumerate(params)])
                         for s in range(n)]).double()  # (n, D)
        return X.T @ X / n, float(X.square().sum(1).mean())

    # the paper's split, g = sqrt(D / k): Cov = a I + (1 - a) (D / k) U U^T, E||eps||^2 = D
    got, norm2 = covariance(GuidedNoise(1.0, a=a, basis_key="cov-test"))
    want = a * torch.eye(D, dtype=torch.float64) + (1 - a) * (D / 2) * U @ U.T
    assert (got - want).abs().max() < 0.12, (got - want).abs().max()
    assert abs(norm2 - D) < 0.1 * D  # ES's scale
    # a gain of its own: Cov = a I + (1 - a) g^2 U U^T
    got, norm2 = covariance(GuidedNoise(1.0, a=a, basis_key="cov-test", gain=3.0))
    want = a * torch.eye(D, dtype=torch.float64) + (1 - a) * 9.0 * U @ U.T
    assert (got - want).abs().max() < 0.2, (got - want).abs().max()
    assert abs(norm2 - (a * D + (1 - a) * 9.0 * 2)) < 0.1 * D
    # with no subspace installed the noise is plain ES's
    install_basis(model, "cov-test", None)
    plain = GuidedNoise(1.0, a=a, basis_key="cov-test")
    assert torch.equal(plain.eps(5, 1, params[1]), GuidedNoise(1.0).eps(5, 1, params[1]))


def test_a_basis_drops_directions_that_add_nothing():
    g = torch.randn(6, generator=torch.Generator().manual_seed(1))
    basis = orthonormal_basis([g, 2 * g], [6])
    assert basis["k"] == 1 and basis["dim"] == 6
    assert orthonormal_basis([torch.zeros(6)], [6]) is None
    h = torch.randn(6, generator=torch.Generator().manual_seed(2))
    basis = orthonormal_basis([torch.zeros(6), g, 2 * g, h], [6])  # the zero and the repeat go
    assert basis["k"] == 2 and basis["grads"][0] is g and basis["grads"][1] is h


def test_the_basis_is_the_span_of_the_gradients_without_copying_them():
    """U = G C spans what a float64 QR of the gradients spans and is orthonormal, with
    a near-repeat kept (its new part is 1e-2 of its norm; one at 1e-4 is dropped) and the
    gradients held as they are: the subspace costs k weight-sized vectors."""
    gen = torch.Generator().manual_seed(3)
    D = 3000
    grads = [torch.randn(D, generator=gen) for _ in range(3)]
    grads.append(grads[0] + 1e-2 * torch.randn(D, generator=gen))
    assert orthonormal_basis(grads[:3] + [grads[1] + 1e-4 * torch.randn(D, generator=gen)], [D])["k"] == 3
    basis = orthonormal_basis(grads, [1000, 2000])
    assert basis["k"] == 4 and all(a is b for a, b in zip(basis["grads"], grads))
    U = basis_matrix(basis)
    assert torch.allclose(U.T @ U, torch.eye(4, dtype=torch.float64), atol=1e-5)
    Q, _ = torch.linalg.qr(torch.stack(grads, 1).double())
    assert torch.allclose(U @ U.T, Q @ Q.T, atol=1e-5)
    assert basis["offsets"] == [(0, 1000), (1000, 2000)]


def test_the_surrogate_gradient_is_autograd_s(embedded):
    """Accumulated straight into one flat vector, it equals the gradient autograd leaves in
    .grad, and the model's .grad is left empty."""
    from clbench.fisher import completion_log_likelihood

    model, tok = embedded.model, embedded.tokenizer
    pairs = [("cd 7 1 9=3:", "7+1+9"), ("cd 2 3=6:", "2*3")]
    flat = surrogate_gradient(model, tok, pairs)
    assert all(p.grad is None for p in model.parameters())
    model.zero_grad(set_to_none=True)
    for prompt, completion in pairs:
        (completion_log_likelihood(model, tok, prompt, completion) / len(pairs)).backward()
    want = torch.cat([p.grad.reshape(-1) for _, p in model.named_parameters()])
    model.zero_grad(set_to_none=True)
    assert flat.shape == want.shape and torch.equal(flat, want) and flat.abs().sum() > 0


def test_a_member_s_guided_noise_is_the_same_on_every_backend(embedded):
    reg = Registry.load()
    task = reg.task("countdown")
    items = task.split("train")[:6]
    shapes = [p.numel() for _, p in embedded.model.named_parameters()]
    gen = torch.Generator().manual_seed(2)
    basis = orthonormal_basis([torch.randn(sum(shapes), generator=gen) for _ in range(3)], shapes)
    noise = GuidedNoise(0.02, a=0.5, basis_key="backend-test")
    members = [Member(11, 1), Member(11, -1), Member(12, 1), Member(12, -1)]
    results = []
    for kind in ("inprocess", "local"):
        model = copy.deepcopy(embedded.model)
        pop = (InProcessBackend(model, embedded.tokenizer, reg) if kind == "inprocess" else
               LocalProcessBackend(model, embedded.tokenizer, reg, embedded.path, workers=2))
        try:
            pop.apply(install_basis, "backend-test", basis)
            rewards, _ = pop.evaluate(noise, members, [Batch("countdown", items)])
            pop.apply(apply_update, noise, members, [1.0, -1.0, 0.5, -0.5], 0.01, None)
            again, _ = pop.evaluate(noise, members, [Batch("countdown", items)])  # replicas still agree
        finally:
            pop.close()
        results.append((rewards, again, {n: p.detach().clone() for n, p in model.named_parameters()}))
    (r1, a1, w1), (r2, a2, w2) = results
    assert r1 == r2 and a1 == a2
    assert all(torch.equal(w1[n], w2[n]) for n in w1)
    assert any(not torch.equal(w1[n], p) for n, p in embedded.model.named_parameters())  # it moved


QUICK = dict(steps=5, eval_every=1, eval_limit=8, curve_examples=8, backend="inprocess")
SMALL = {"population": 4, "batch_size": 16}


def numbers(r) -> dict:
    d = r.model_dump(mode="json")
    return {k: d[k] for k in ("matrix", "summary", "curves", "geometry")} | {
        "cost": {k: v for k, v in d["cost"].items() if not k.startswith(("wall", "peak"))}}


@pytest.mark.slow
@pytest.mark.ci
def test_a_equal_one_is_es_bit_for_bit(tmp_path):
    es = Runner(RunConfig(method="es", sequence="math-then-code", output=str(tmp_path / "es"),
                          method_config={**SMALL, "sigma": 0.02, "alpha": 0.01}, **QUICK)).run()
    g = Runner(RunConfig(method="es-guided", sequence="math-then-code", output=str(tmp_path / "g"),
                         method_config={**SMALL, "a": 1.0}, **QUICK)).run()
    assert numbers(g) == numbers(es)
    assert es.curves[-1].drift_l2 > 0


class Interrupted(Exception):
    pass


@pytest.mark.slow
@pytest.mark.ci
def test_resume_between_two_refreshes_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    cfg = dict(method="es-guided", sequence="math-then-code",
               method_config={**SMALL, "population": 6, "a": 0.5, "refresh_every": 2}, **QUICK)
    whole_runner = Runner(RunConfig(output=str(tmp_path / "whole"), **cfg))
    whole = whole_runner.run()
    assert whole_runner.method.refreshes["useful"] >= 1  # the subspace was live
    # per task: refreshes at steps 0, 2, 4 sample 4 x 16 completions and give up 2 pairs;
    # 5 steps x 6 members otherwise
    assert whole.cost.members_scored == 2 * (5 * 6 - 3 * 4)
    assert whole.budget.completions_per_task["countdown"] == (5 * 6 - 3 * 4) * 16 + 3 * 4 * 16
    assert whole.cost.backward_tokens > 0

    real = Runner.after_step

    def stop_after_step_three(self, task, steps, reward):
        real(self, task, steps, reward)  # the checkpoint is written first
        if self.state.task_index == 1 and self.state.step_in_task == 3:
            raise Interrupted

    monkeypatch.setattr(Runner, "after_step", stop_after_step_three)
    with pytest.raises(Interrupted):  # killed in the second task, between refreshes at 2 and 4
        Runner(RunConfig(output=str(tmp_path / "cut"), **cfg)).run()
    monkeypatch.setattr(Runner, "after_step", real)
    state = json.loads((tmp_path / "cut" / "checkpoint" / "state.json").read_text())
    assert (state["task_index"], state["step_in_task"]) == (1, 3)
    resumed = Runner(RunConfig(output=str(tmp_path / "cut"), **cfg)).run(resume=True)
    assert numbers(resumed) == numbers(whole)


def test_config_refuses_a_population_with_no_pair_to_give_up():
    with pytest.raises(ValueError, match="at least 6"):  # 4 samples per prompt: 2 pairs given up
        ESGuidedConfig(population=4, a=0.5)
    assert ESGuidedConfig(population=6, a=0.5).pairs_given_up() == 2
    assert ESGuidedConfig(population=30, a=0.5, samples=5).pairs_given_up() == 3
    with pytest.raises(ValueError, match="at least 4"):
        ESGuidedConfig(population=2, a=0.5, surrogate="correct-greedy")
    assert ESGuidedConfig(population=2, a=1.0).population == 2
    assert ESGuidedConfig(population=2, a=0.5, surrogate="reference").population == 2  # gives none up


def test_reference_surrogate_refreshes_from_labels_without_giving_up_a_pair(embedded):
    from clbench.context import RunContext
    from clbench.model import param_copy

    reg = Registry.load()
    task = reg.task("countdown")
    before = param_copy(embedded.model)
    m = ESGuided(ESGuidedConfig(population=4, batch_size=4, a=0.5, refresh_every=1,
                                surrogate="reference"))
    ctx = RunContext(embedded.model, embedded.tokenizer, reg, task, steps=2)
    try:
        m.learn(task, ctx)
    finally:
        with torch.no_grad():
            for n, p in embedded.model.named_parameters():
                p.copy_(before[n])
    st = ctx.recorder.state
    assert m.refreshes == {"useful": 2, "no_correct_answer": 0, "no_direction": 0} and m.basis["k"] == 2
    assert st.cost.members_scored == 2 * 4 and st.cost.completions == 2 * 4 * 4  # no pair given up
    assert st.cost.backward_tokens > 0 and st.cost.forward_tokens > st.cost.backward_tokens


def test_run_pending_registers_a_builtin_for_one_process(monkeypatch, capsys):
    """benchmarks/run_pending.py registers a built-in for one process (the board test
    requires every registered built-in on the board, so the sweep comes first)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "run_pending.py"
    spec = importlib.util.spec_from_file_location("run_pending", path)
    run_pending = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_pending)
    monkeypatch.setattr(Registry, "_cache", None)  # a registry of its own, dropped afterwards
    assert run_pending.main(["clbench.methods.es_guided:ESGuided", "list"]) == 0
    assert "es-guided" in capsys.readouterr().out
    assert run_pending.main(["no-colon"]) == 2


def test_sampled_completions_are_a_function_of_their_seed(embedded):
    """The correct-sampled surrogate's generation: temperature-1 samples that repeat for
    the same seed (so a run stays a pure function of its seed), differ from greedy and
    between seeds, and leave the global RNG as it was."""
    from clbench.generation import generate_for

    task = Registry.load().task("countdown")
    items = task.split("train")[:32]
    greedy, _ = generate_for(task, embedded.model, embedded.tokenizer, items)
    state = torch.random.get_rng_state()
    one, n_one = generate_for(task, embedded.model, embedded.tokenizer, items, sample_seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    again, n_again = generate_for(task, embedded.model, embedded.tokenizer, items, sample_seed=5)
    other, _ = generate_for(task, embedded.model, embedded.tokenizer, items, sample_seed=6)
    assert one == again and n_one == n_again
    assert one != greedy and one != other
    assert greedy == generate_for(task, embedded.model, embedded.tokenizer, items)[0]


def test_a_gradient_that_is_not_finite_or_too_small_is_no_direction():
    g = torch.randn(6, generator=torch.Generator().manual_seed(4))
    assert orthonormal_basis([g, torch.full((6,), float("nan"))], [6])["k"] == 1
    assert orthonormal_basis([g, torch.full((6,), float("inf"))], [6])["k"] == 1
    assert orthonormal_basis([torch.full((6,), float("nan"))], [6]) is None
    assert orthonormal_basis([torch.full((6,), 1e-40)], [6]) is None  # 1 / norm overflows float32


def test_a_bfloat16_model_s_surrogate_gradient_is_summed_in_float32(embedded):
    """Parameters whose .grad cannot be a view of the float32 vector (bfloat16 here, or
    on a GPU) add each pair's gradient into it as it arrives."""
    from clbench.fisher import completion_log_likelihood

    model, tok = copy.deepcopy(embedded.model).to(torch.bfloat16), embedded.tokenizer
    pairs = [("cd 7 1 9=3:", "7+1+9"), ("cd 2 3=6:", "2*3")]
    flat = surrogate_gradient(model, tok, pairs)
    assert all(p.grad is None for p in model.parameters())
    want = torch.zeros_like(flat)
    for prompt, completion in pairs:
        model.zero_grad(set_to_none=True)
        (completion_log_likelihood(model, tok, prompt, completion) / len(pairs)).backward()
        want += torch.cat([p.grad.float().reshape(-1) for _, p in model.named_parameters()])
    model.zero_grad(set_to_none=True)
    assert torch.equal(flat, want) and flat.abs().sum() > 0
