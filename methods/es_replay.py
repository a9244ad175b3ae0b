"""ES + replay: fitness mixes the current task with earlier tasks' training data.

A mitigation named in arXiv 2601.20861: fitness = (1 - rho) * reward on the
current batch + rho * reward on a replay batch drawn from a buffer holding the
first `buffer_size` training items of each earlier task. Replay of general data
(the pretraining mixture) is not offered yet; runs that use earlier tasks' data
say so in `data_access.earlier_tasks`.
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


class ESReplay(ES):
    name = "es-replay"
    version = 1
    Config = ESReplayConfig
    needs = frozenset({"replay"})

    def batches(self, task, step_rng: random.Random, ctx) -> list[Batch]:
        current = super().batches(task, step_rng, ctx)
        earlier = ctx.replay_items() if ctx.earlier_tasks else {}
        if not earlier:
            return current
        pool = [(name, item) for name, items in earlier.items() for item in items[: self.config.buffer_size]]
        picked = step_rng.sample(pool, min(self.config.replay_batch, len(pool)))
        by_task: dict[str, list] = {}
        for name, item in picked:
            by_task.setdefault(name, []).append(item)
        return current + [Batch(name, items) for name, items in sorted(by_task.items())]

    def fitness(self, rewards: list[float], batches: list[Batch]) -> float:
        if len(rewards) == 1:
            return rewards[0]
        sizes = [len(b.items) for b in batches[1:]]
        replay = sum(r * n for r, n in zip(rewards[1:], sizes)) / sum(sizes)
        return (1 - self.config.rho) * rewards[0] + self.config.rho * replay
