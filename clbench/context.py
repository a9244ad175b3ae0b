"""What a method may use during one task, and the recorder of what it spends.

A method sees the run only through `RunContext` (README, "Write your own method"): the
model, the task's data, seeded randomness, the weights it started from, and `step()`,
which it calls after every update. The context holds no reference to the runner: what
the runner does at a step (curve points, checkpoints, progress) reaches it as one
callback inside a `SpendRecorder`, so a test or a benchmark builds a context from plain
values (README, "Write your own method").
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from clbench.checkpoint import RunState
from clbench.errors import UserError


@dataclass
class SpendRecorder:
    """Counts what a method spends into the run's state (the typed `Spend` that becomes
    `results.Cost`), notes what data it learned from, and calls `after_step` once the
    step is counted (the runner's curve points and checkpoints; nothing by default)."""

    state: RunState = field(default_factory=RunState.fresh)
    after_step: Callable[[Optional[float]], None] = lambda reward: None

    def step(self, task: str, forward_tokens: int = 0, backward_tokens: int = 0,
             members_scored: int = 0, completions: int = 0, reward: float | None = None) -> None:
        st = self.state
        st.step_in_task += 1
        st.global_step += 1
        st.cost.add(forward_tokens=forward_tokens, backward_tokens=backward_tokens,
                    members_scored=members_scored, completions=completions)
        st.completions_per_task[task] = st.completions_per_task.get(task, 0) + int(completions)
        self.after_step(reward)

    def note_data_access(self, **flags: bool) -> None:
        for k, v in flags.items():
            setattr(self.state.data_access, k, getattr(self.state.data_access, k) or v)


@dataclass
class RunContext:
    """Everything a method may use; nothing else is global, so a run is a function of its
    config and seed (README, "What a run measures")."""

    model: torch.nn.Module
    tokenizer: object
    registry: object  # clbench.registry.Registry
    task: object  # the TaskFamily being learned (the hooks receive it too)
    seed: int = 0
    task_index: int = 0
    steps: int = 0  # update steps for this task (the budget, or --steps)
    start_step: int = 0  # > 0 when resuming mid-task
    budget: object = None
    earlier_tasks: list = field(default_factory=list)
    base_weights: dict[str, torch.Tensor] = field(default_factory=dict)
    task_start_weights: dict[str, torch.Tensor] = field(default_factory=dict)  # anchors, per-task drift
    general_replay: object = None  # the sequence's declared general set, or None
    sequence_name: str = ""
    recorder: SpendRecorder = field(default_factory=SpendRecorder)
    # the run's population settings (RunConfig.backend/workers); standalone, the run's own model
    backend: str = "inprocess"
    workers: int = 2
    # (backend, workers) -> a population backend synced to ctx.model; the runner's keeps one per backend
    make_population: Optional[Callable[[str, int], object]] = None

    @property
    def task_name(self) -> str:
        return self.task.name

    def step_rng(self, step: int) -> random.Random:
        """A seeded RNG for one update step: derived from (seed, task, step), so a
        resumed run draws exactly what an uninterrupted one would."""
        return random.Random(f"{self.seed}/{self.task_index}/{step}")

    def train_items(self, task) -> list[dict]:
        return task.split("train")

    def replay_items(self) -> dict[str, list[dict]]:
        """Earlier tasks' training data (methods that use it must declare `replay`)."""
        self.recorder.note_data_access(earlier_tasks=True)
        return {t.name: t.split("train") for t in self.earlier_tasks}

    def general_items(self) -> list[tuple[str, dict]]:
        """The sequence's general replay set, (family, item) pairs; marks the run as
        having learned from general data (the probes' distribution)."""
        if self.general_replay is None:
            raise UserError(f"sequence {self.sequence_name!r} declares no general_replay set; "
                            "turn general replay off or pick a sequence that declares one")
        from clbench.general_data import general_items

        self.recorder.note_data_access(general=True)
        return general_items(self.general_replay)

    def generate(self, prompts: list[str], max_new_tokens: int, chat: bool = False,
                 stop: tuple[str, ...] = ("\n",), prefix: str = "") -> tuple[list[str], int]:
        """Batched greedy completions of ctx.model and the tokens processed (`chat`, `stop`
        and `prefix` as the task asks: see clbench.generation.generate)."""
        from clbench.generation import generate

        return generate(self.model, self.tokenizer, prompts, max_new_tokens, chat=chat, stop=stop,
                        prefix=prefix)

    def score(self, task, items: list[dict]) -> tuple[list[float], int]:
        """Rewards of ctx.model's greedy answers by the task's own scoring, and tokens."""
        from clbench.generation import generate_for

        comps, tokens = generate_for(task, self.model, self.tokenizer, items)
        return [s.reward for s in task.scores(items, comps)], tokens

    def population(self, backend: str | None = None, workers: int | None = None):
        """The run's population backend over ctx.model, synced to its current weights
        (README, "Write your own method"); `backend` and `workers` override the run's
        settings (the older call `population(backend, workers)` still works). Without a
        runner (a test, a benchmark) each call opens one of its own."""
        backend, workers = backend or self.backend, workers or self.workers
        if self.make_population is not None:
            return self.make_population(backend, workers)
        from clbench.backends import open_backend

        return open_backend(backend, self.model, self.tokenizer, self.registry, workers=workers)

    def step(self, forward_tokens: int = 0, backward_tokens: int = 0, members_scored: int = 0,
             completions: int = 0, reward: float | None = None) -> None:
        """Call after every update: cost, curve points, geometry, checkpoints."""
        self.recorder.step(self.task.name, forward_tokens, backward_tokens, members_scored,
                           completions, reward)
