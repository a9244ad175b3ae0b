"""ES + replay: fitness mixes the current task with replayed data.

A mitigation named in arXiv 2601.20861: fitness = (1 - rho) * reward on the
current batch + rho * reward on a replay batch. The replay pool holds the first
`buffer_size` training items of each earlier task and, with `general: true`, the
general replay set the sequence declares (at the embedded scale, samples of the
pretraining mixture: the probes' own distribution). Runs say which they used in
`data_access` (`earlier_tasks`, `general`), and the leaderboard keeps them apart.

Replay is budget-neutral: once there is something to replay, `replay_batch` of the
`batch_size` prompts a member scores come from the pool, so a run scores the
sequence's registered completions (scoring them on top cost 1.5x and put a default
run off the board).
"""
from __future__ import annotations

import random

from pydantic import Field, model_validator

from clbench.methods.es import ES, ESConfig
from clbench.population import Batch


class ESReplayConfig(ESConfig):
    rho: float = Field(0.5, ge=0, le=1, description="weight of the replay reward in the fitness")
    buffer_size: int = Field(256, ge=1, description="training items kept per earlier task")
    replay_batch: int = Field(16, ge=1, description="of batch_size items per member and step, how "
                              "many are replayed (the rest are the current task's)")
    general: bool = Field(False, description="also replay the sequence's general replay set "
                          "(trains on the probes' distribution; recorded in data_access.general)")

    @model_validator(mode="after")
    def _room_for_the_current_task(self):
        if self.replay_batch >= self.batch_size:
            raise ValueError(f"replay_batch ({self.replay_batch}) must be below batch_size "
                             f"({self.batch_size}): the rest of the batch is the current task")
        return self


class ESReplay(ES):
    name = "es-replay"
    version = 3
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
        pool = self.replay_pool(ctx)
        if not pool:
            return super().batches(task, step_rng, ctx)
        items = ctx.train_items(task)
        n_replay = min(self.config.replay_batch, len(pool))
        current = Batch(task.name, step_rng.sample(items, min(self.config.batch_size - n_replay, len(items))))
        by_family: dict[str, list] = {}
        for name, item in step_rng.sample(pool, n_replay):
            by_family.setdefault(name, []).append(item)
        return [current] + [Batch(name, items) for name, items in sorted(by_family.items())]

    def fitness(self, rewards: list[float], batches: list[Batch]) -> float:
        if len(rewards) == 1:
            return rewards[0]
        sizes = [len(b.items) for b in batches[1:]]
        replay = sum(r * n for r, n in zip(rewards[1:], sizes)) / sum(sizes)
        return (1 - self.config.rho) * rewards[0] + self.config.rho * replay
