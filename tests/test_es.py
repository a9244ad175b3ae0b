"""ES engine pieces against hand computations, on a tiny model."""
import pytest
import torch

from clbench.methods.es import ES, ESConfig, Noise, _mix, apply_update, zscore
from clbench.population import Member


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.zeros(3, 2))
        self.b = torch.nn.Parameter(torch.zeros(3, 2))  # same shape as a: must get other noise


def test_zscore_by_hand():
    # mean 2, population std sqrt(2/3)
    z = zscore([1.0, 2.0, 3.0])
    s = (2 / 3) ** 0.5
    assert z == pytest.approx([-1 / s, 0.0, 1 / s])
    assert zscore([0.5, 0.5]) == [0.0, 0.0]  # all equal: no step at all


def test_centered_rank_by_hand():
    from clbench.methods.es import centered_rank

    assert centered_rank([0.3, 0.1, 0.2]) == pytest.approx([0.5, -0.5, 0.0])
    # ties share their mean rank: ranks (0, 1.5, 1.5, 3) / 3 - 0.5
    assert centered_rank([0.0, 0.4, 0.4, 0.9]) == pytest.approx([-0.5, 0.0, 0.0, 0.5])
    assert centered_rank([0.5, 0.5]) == [0.0, 0.0]
    assert centered_rank([1e-9, 0.0, 1e6]) == centered_rank([0.2, 0.1, 0.3])  # scale-free


def test_noise_is_seeded_per_tensor_and_regenerated_identically():
    m = Tiny()
    n = Noise(sigma=0.1)
    e0 = n.eps(7, 0, m.a)
    assert torch.equal(e0, n.eps(7, 0, m.a))
    assert not torch.equal(e0, n.eps(7, 1, m.b))  # per-tensor seeds
    shared = Noise(sigma=0.1, shared_seed=True)
    assert torch.equal(shared.eps(7, 0, m.a), shared.eps(7, 1, m.b))  # the original's behaviour


def test_perturb_then_restore_returns_the_weights():
    m = Tiny()
    torch.manual_seed(0)
    with torch.no_grad():
        m.a.normal_()
    before = m.a.detach().clone()
    n = Noise(sigma=0.02)
    n.perturb(m, Member(3, -1), +1.0)
    expected = before - 0.02 * n.eps(3, 0, m.a)
    assert torch.allclose(m.a, expected)
    n.perturb(m, Member(3, -1), -1.0)
    assert torch.allclose(m.a, before, atol=1e-7)


def test_update_matches_formula():
    m = Tiny()
    n = Noise(sigma=0.02)
    members = [Member(1, 1), Member(1, -1), Member(2, 1), Member(2, -1)]
    z = [1.0, -1.0, 0.5, 0.25]
    apply_update(m, n, members, z, alpha=0.1)
    want = 0.1 / 4 * sum(w * mem.sign * n.eps(mem.seed, 0, m.a) for mem, w in zip(members, z))
    assert torch.allclose(m.a, want, atol=1e-7)


def test_members_are_mirrored_pairs_and_derive_from_step_seed():
    es = ES(ESConfig(population=6))
    ms = es.members(_mix(0, 0, 5))
    assert [m.sign for m in ms] == [1, -1] * 3 and ms[0].seed == ms[1].seed
    assert es.members(_mix(0, 0, 5)) == ms and es.members(_mix(0, 0, 6)) != ms


def test_odd_mirrored_population_is_a_config_error():
    with pytest.raises(ValueError, match="even"):
        ESConfig(population=5)
    assert ESConfig(population=5, mirrored=False).population == 5


def _es_on_quadratic(steps: int, ascend: bool = True) -> float:
    """Run ES's own perturb / restore / z-score / update on reward -||theta - target||^2
    and return the final distance to the target."""
    m = Tiny()
    target = {"a": torch.full((3, 2), 1.0), "b": torch.full((3, 2), -1.0)}
    es = ES(ESConfig(population=10))
    noise = Noise(sigma=0.1)

    def reward() -> float:
        return -sum(float(((p.detach() - target[n]) ** 2).sum()) for n, p in m.named_parameters())

    for step in range(steps):
        members = es.members(_mix(0, 0, step))
        rewards = []
        for mem in members:
            noise.perturb(m, mem, +1.0)
            rewards.append(reward())
            noise.perturb(m, mem, -1.0)
        z = zscore(rewards)
        apply_update(m, noise, members, z if ascend else [-w for w in z], alpha=0.05)
    return (-reward()) ** 0.5


def test_es_climbs_a_reward_it_can_see():
    """The estimator's sign, the noise regenerated for the update and the restore must
    agree, or ES is a pure random walk (which a drift-only check cannot tell apart)."""
    start = 12 ** 0.5  # distance from zeros to the target
    assert _es_on_quadratic(150) < 0.05 * start
    assert _es_on_quadratic(150, ascend=False) > 2 * start  # the wrong sign walks away
