"""ES + replay: fitness mixes the current task with replayed data.

A mitigation named in arXiv 2601.20861: fitness = (1 - rho) * reward on the
current batch + rho * reward on a replay batch. The replay pool holds the first
`buffer_size` training items of each earlier task and, with `general: true`, the
general replay set the sequence declares (at the embedded scale, samples of the
pretraining mixture: the probes' own distribution). Runs say which they used in
`data_access` (`earlier_tasks`, `general`), and the leaderboard keeps them apart.
"""
from __future__ import annotations

import random

from pydantic import Field

from clbench.methods.es import ES, ESConfig
from clbench.population import Batch


class ESReplayConfig(ESConfig):
    rho: float = Field(0.5, ge=0, le=1, description="weight of the replay reward in the fitness")
    buffer_size: int = Field(256, ge=1, description="training items kept per earlier task")
    replay_batch: int = Field(16, ge=1, description="replay items scored per member and step")
    general: bool = Field(False, description="also replay the sequence's general replay set "
                          "(trains on the probes' distribution; recorded in data_access.general)")


class ESReplay(ES):
    name = "es-replay"
    version = 2
    Config = ESReplayConfig
    needs = frozenset({"replay"})

    def requirements(self) -> frozenset[str]:
        return self.needs | ({"general_replay"} if self.config.general else set())

    def replay_pool(self, ctx) -> list[tuple[str, dict]]:
        """(family, item) pairs the replay batch is drawn from, in a fixed order."""
        pool = []
        if ctx.earlier_tasks:
            for name, items in ctx.replay_items().items():
                pool += [(name, item) for item in items[: self.config.buffer_size]]
        if self.config.general:
            pool += ctx.general_items()
        return pool

    def batches(self, task, step_rng: random.Random, ctx) -> list[Batch]:
        current = super().batches(task, step_rng, ctx)
        pool = self.replay_pool(ctx)
        if not pool:
            return current
        picked = step_rng.sample(pool, min(self.config.replay_batch, len(pool)))
        by_family: dict[str, list] = {}
        for name, item in picked:
            by_family.setdefault(name, []).append(item)
        return current + [Batch(name, items) for name, items in sorted(by_family.items())]

    def fitness(self, rewards: list[float], batches: list[Batch]) -> float:
        if len(rewards) == 1:
            return rewards[0]
        sizes = [len(b.items) for b in batches[1:]]
        replay = sum(r * n for r, n in zip(rewards[1:], sizes)) / sum(sizes)
        return (1 - self.config.rho) * rewards[0] + self.config.rho * replay
