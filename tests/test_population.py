"""Population backends: the local worker processes give the in-process numbers."""
import random

import pytest

from clbench.methods.es import ES, ESConfig, Noise, _mix, apply_update, zscore
from clbench.model import load_model
from clbench.population import Batch, InProcessBackend, LocalProcessBackend
from clbench.registry import Registry


@pytest.fixture(scope="module")
def two_models():
    return load_model("embedded"), load_model("embedded")


def test_local_backend_matches_inprocess_rewards_and_update(two_models):
    reg = Registry.load()
    a, b = two_models
    items = random.Random(0).sample(reg.task("countdown").split("train"), 8)
    batches = [Batch("countdown", items)]
    es = ES(ESConfig(population=6, batch_size=8))
    noise = Noise(0.03)
    inproc = InProcessBackend(a.model, a.tokenizer, reg)
    local = LocalProcessBackend(b.model, b.tokenizer, reg, b.path, workers=2)
    try:
        for step in range(2):
            members = es.members(_mix(0, 0, step))
            ra, ta = inproc.evaluate(noise, members, batches)
            rb, tb = local.evaluate(noise, members, batches)
            assert ra == rb and ta == tb
            z = zscore([r[0] for r in ra])
            inproc.apply(apply_update, noise, members, z, 0.005, None)
            local.apply(apply_update, noise, members, z, 0.005, None)
        for (n, p), (_, q) in zip(a.model.named_parameters(), b.model.named_parameters()):
            assert p.equal(q), n
    finally:
        local.close()


def test_one_call_for_several_tasks_gives_each_task_its_own_completions():
    """ES+replay scores current and replay items in one generate call; each row must
    come out as it would alone (own token budget, own stop)."""
    from clbench.generation import generate_for, generate_tasks

    reg, lm = Registry.load(), load_model("embedded")
    code, countdown = reg.task("code"), reg.task("countdown")
    a, b = code.split("dev")[:6], countdown.split("dev")[:5]
    together, tokens = generate_tasks([(code, a), (countdown, b)], lm.model, lm.tokenizer)
    assert together == [generate_for(code, lm.model, lm.tokenizer, a)[0],
                        generate_for(countdown, lm.model, lm.tokenizer, b)[0]]
    assert tokens > 0
