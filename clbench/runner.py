"""The common runner: one loop for every method, built-in or plugin.

Scores every column before learning (row 0) and after each task (row i),
calls `method.learn(task, ctx)` with the sequence's budget, and through
`ctx.step()` records cost, curves on a fixed dev subset, update geometry and
checkpoints. Nothing in here names a method or a task.
"""
from __future__ import annotations

import random
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from clbench import geometry, metrics
from clbench.checkpoint import Checkpointer, RunState
from clbench.config import RunConfig
from clbench.errors import UserError
from clbench.harness import Harness
from clbench.model import load_model, param_copy, params, weights_fingerprint
from clbench.progress import RunProgress
from clbench.registry import Registry
from clbench.results import (BudgetInfo, Cost, CurvePoint, Matrix, MethodInfo,
                             ModelInfo, RunResult, SequenceInfo, Summary)
from clbench.runinfo import environment, sequence_fingerprint


@dataclass
class RunContext:
    """Everything a method may use; nothing else is global (STYLE.md rule 6)."""

    model: torch.nn.Module
    tokenizer: object
    registry: Registry
    base_weights: dict[str, torch.Tensor]
    seed: int
    task_index: int
    steps: int  # update steps for this task (the budget, or --steps)
    start_step: int  # > 0 when resuming mid-task
    budget: object
    earlier_tasks: list
    runner: "Runner"
    task_name: str = ""

    def step_rng(self, step: int) -> random.Random:
        """A seeded RNG for one update step: derived from (seed, task, step), so a
        resumed run draws exactly what an uninterrupted one would."""
        return random.Random(f"{self.seed}/{self.task_index}/{step}")

    def train_items(self, task) -> list[dict]:
        return task.split("train")

    def replay_items(self) -> dict[str, list[dict]]:
        """Earlier tasks' training data (methods that use it must declare `replay`)."""
        self.runner.note_data_access(earlier_tasks=True)
        return {t.name: t.split("train") for t in self.earlier_tasks}

    def general_items(self) -> list[tuple[str, dict]]:
        """The sequence's general replay set, (family, item) pairs; marks the run as
        having learned from general data (the probes' distribution)."""
        spec = self.runner.seq.general_replay
        if spec is None:
            raise UserError(f"sequence {self.runner.seq.name!r} declares no general_replay set; "
                            "turn general replay off or pick a sequence that declares one")
        from clbench.general_data import general_items

        self.runner.note_data_access(general=True)
        return general_items(spec)

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

    @property
    def task_start_weights(self) -> dict[str, torch.Tensor]:
        """The weights when the current task began (anchors, per-task drift)."""
        return self.runner.task_start

    def population(self, backend: str, workers: int = 2):
        return self.runner.population(backend, workers)

    def step(self, forward_tokens: int = 0, backward_tokens: int = 0, members_scored: int = 0,
             completions: int = 0, reward: float | None = None) -> None:
        """Call after every update: cost, curve points, geometry, checkpoints."""
        self.runner.on_step(self, forward_tokens, backward_tokens, members_scored, completions, reward)


class Runner:
    def __init__(self, cfg: RunConfig, console=None):
        self.cfg = cfg
        self.registry = Registry.load()
        self.seq = self.registry.sequence(cfg.sequence)
        self.method_cls = self.registry.method(cfg.method)
        tuned = self.seq.method_config.get(cfg.method, {})
        self.method = self.method_cls(self.method_cls.Config(**{**tuned, **cfg.method_config}))
        self.tasks = [self.registry.task(t) for t in self.seq.tasks]
        if "general_replay" in self.method.requirements() and self.seq.general_replay is None:
            raise UserError(f"method {cfg.method!r} is set to replay general data but sequence "
                            f"{cfg.sequence!r} declares no general_replay set; set general=false "
                            "or pick a sequence that declares one")
        self.columns = self.seq.tasks + self.seq.probes
        self.steps = cfg.steps or self.seq.budget.steps
        self.eval_every = cfg.eval_every or self.seq.budget.eval_every
        self.curve_examples = min(cfg.curve_examples or self.seq.budget.dev_examples,
                                  cfg.eval_limit or 10**9)
        self.out = Path(cfg.output)
        self.ckpt = Checkpointer(self.out)
        self.console = console
        self._pops: dict = {}
        self.steps_this_process = 0

    # ---- setup -------------------------------------------------------------
    def _load(self) -> None:
        torch.manual_seed(self.cfg.seed)
        self.lm = load_model(self.cfg.model, dtype=self.cfg.dtype, device=self.cfg.device)
        self.model = self.lm.model
        self.base_fingerprint = weights_fingerprint(self.model)
        self.base = param_copy(self.model)
        self.harness = Harness(self.model, self.lm.tokenizer)
        self.kl_prompts = [i["prompt"] for p in self.seq.probes
                           for i in self.registry.task(p).split("dev")[:16]]
        self.base_logits = self._last_logits()

    def _last_logits(self) -> torch.Tensor:
        tok = self.lm.tokenizer
        enc = tok(self.kl_prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            return self.model(**enc.to(self.model.device)).logits[:, -1, :].float().cpu()  # (P, V)

    def population(self, backend: str, workers: int):
        from clbench.population import InProcessBackend, LocalProcessBackend

        if backend not in self._pops:
            if backend == "local":
                self._pops[backend] = LocalProcessBackend(self.model, self.lm.tokenizer, self.registry,
                                                          self.lm.path, self.cfg.dtype, workers)
            elif backend == "ray":  # optional extra, in its own module
                from clbench.population_ray import RayBackend

                self._pops[backend] = RayBackend(self.model, self.lm.tokenizer, self.registry,
                                                 self.lm.path, self.cfg.dtype, workers)
            else:
                self._pops[backend] = InProcessBackend(self.model, self.lm.tokenizer, self.registry)
        pop = self._pops[backend]
        pop.sync()
        return pop

    def note_data_access(self, **flags) -> None:
        for k, v in flags.items():
            setattr(self.state.data_access, k, getattr(self.state.data_access, k) or v)

    # ---- evaluation ------------------------------------------------------------
    def score_row(self) -> list[float]:
        s = self.harness.score(self.columns, split="test", limit=self.cfg.eval_limit)
        return [s[c] for c in self.columns]

    def curve_point(self, task, step: int, reward) -> CurvePoint:
        cur = params(self.model)
        scores = self.harness.score(self.columns, split="dev", limit=self.curve_examples)
        return CurvePoint(
            task=task.name, step=step, global_step=self.state.global_step, scores=scores,
            reward=reward, drift_l2=geometry.drift_l2(self.base, cur),
            drift_l2_task=geometry.drift_l2(self.task_start, cur),
            sparsity=geometry.sparsity(self.base, cur)["overall"],
        )

    def task_geometry(self) -> dict:
        cur = params(self.model)
        rep = geometry.geometry_report(self.base, cur)
        rep["drift_l2_task"] = geometry.drift_l2(self.task_start, cur)
        rep["kl_from_base"] = geometry.kl_from_base(self.base_logits, self._last_logits())
        return rep

    # ---- the step hook ---------------------------------------------------------
    def on_step(self, ctx, fwd, bwd, members, completions, reward) -> None:
        st = self.state
        st.step_in_task += 1
        st.global_step += 1
        self.steps_this_process += 1
        st.cost["forward_tokens"] += int(fwd)
        st.cost["backward_tokens"] += int(bwd)
        st.cost["members_scored"] += int(members)
        st.cost["completions"] += int(completions)
        st.completions_per_task[ctx.task_name] = st.completions_per_task.get(ctx.task_name, 0) + int(completions)
        task = self.tasks[ctx.task_index]
        if st.step_in_task % self.eval_every == 0 or st.step_in_task == ctx.steps:
            st.curves.append(self.curve_point(task, st.step_in_task, reward).model_dump())
            self._checkpoint()
        self.progress.on_step(task.name, st.step_in_task, ctx.steps, reward,
                              st.curves[-1]["scores"] if st.curves else None)

    def _checkpoint(self) -> None:
        self.state.cost["wall_seconds"] = self.wall()
        self.ckpt.save(self.model, self.task_start, self.state, self.method.state_dict())

    def wall(self) -> float:
        return self.wall_before + (time.time() - self.t0)

    # ---- the loop --------------------------------------------------------------
    def run(self, resume: bool = False) -> RunResult:
        self._load()
        self.t0 = time.time()
        if resume:
            self.state = self.ckpt.load(self.model, self.method)
            self.task_start = self.ckpt.load_task_start(self.model)
        else:
            self.state = RunState.fresh()
            self.task_start = param_copy(self.model)
        self.state.resumes += int(resume)
        self.wall_before = self.state.cost.get("wall_seconds", 0.0)  # time spent before a resume
        with RunProgress(self.console, len(self.tasks), self.steps) as self.progress:
            if not self.state.rows:
                self.progress.note("scoring the base model (row 0)")
                self.state.rows.append(self.score_row())
                self._checkpoint()
            for ti, task in enumerate(self.tasks):
                if ti < len(self.state.rows) - 1:
                    continue  # finished before the interruption
                ctx = RunContext(self.model, self.lm.tokenizer, self.registry, self.base,
                                 self.cfg.seed, ti, self.steps, self.state.step_in_task,
                                 self.seq.budget, self.tasks[:ti], self, task.name)
                self.progress.start_task(task.name, ti, self.state.step_in_task)
                if self.state.step_in_task == 0:
                    # the curves start where the task starts: step 0, before any update
                    self.state.curves.append(self.curve_point(task, 0, None).model_dump())
                    self.method.begin_task(task, ctx)
                if self.state.step_in_task < self.steps:
                    self.method.learn(task, ctx)
                self.method.end_task(task, ctx)
                self.progress.note(f"scoring after {task.name} (row {ti + 1})")
                self.state.geometry[task.name] = self.task_geometry()
                self.state.rows.append(self.score_row())
                self.state.task_index = ti + 1
                self.state.step_in_task = 0
                self.task_start = param_copy(self.model)
                self._checkpoint()
        for pop in self._pops.values():
            pop.close()
        result = self.result()
        result.write(self.out / "result.json")
        self.ckpt.log_process(self.steps_this_process, resume)
        return result

    # ---- the document ----------------------------------------------------------
    def result(self) -> RunResult:
        st, seq = self.state, self.seq
        n_eval = {c: len(self.registry.task(c).split("test")[: self.cfg.eval_limit]) for c in self.columns}
        summary = metrics.summarize(st.rows, seq.tasks, seq.probes)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        return RunResult(
            method=MethodInfo(name=self.method_cls.name, version=self.method_cls.version,
                              config=self.method.config.model_dump(mode="json")),
            sequence=SequenceInfo(name=seq.name, fingerprint=sequence_fingerprint(seq, self.registry),
                                  tasks=seq.tasks, probes=seq.probes,
                                  task_versions={c: self.registry.task(c).version for c in self.columns}),
            budget=BudgetInfo(steps_per_task={t: self.steps for t in seq.tasks},
                              completions_per_task=st.completions_per_task,
                              registered_steps=seq.budget.steps,
                              registered_completions=seq.budget.completions,
                              eval_split="test", examples_per_column=n_eval,
                              curve_examples=self.curve_examples, eval_every=self.eval_every),
            data_access=st.data_access,
            model=ModelInfo(name=self.lm.name, fingerprint=self.base_fingerprint,
                            parameters=sum(p.numel() for p in self.base.values()), dtype=self.cfg.dtype),
            seed=self.cfg.seed,
            matrix=Matrix(rows=["base"] + seq.tasks, columns=self.columns, values=st.rows),
            summary=Summary(**summary),
            curves=[CurvePoint(**c) for c in st.curves],
            geometry=st.geometry,
            cost=Cost(wall_seconds=round(self.wall(), 2), peak_rss_bytes=peak,
                      peak_rss_children_bytes=peak_children,
                      peak_gpu_bytes=(torch.cuda.max_memory_allocated() if torch.cuda.is_available()
                                      and torch.cuda.is_initialized() else None),
                      **{k: v for k, v in st.cost.items() if k != "wall_seconds"}),
            environment=environment(self.cfg.device),
        )
