"""The common runner: one loop for every method, built-in or plugin.

Scores every column before learning (row 0) and after each task (row i),
calls `method.learn(task, ctx)` with the sequence's budget, and through
`ctx.step()` records cost, curves on a fixed dev subset, update geometry and
checkpoints. Nothing in here names a method or a task.
"""
from __future__ import annotations

import functools
import resource
import time
from pathlib import Path

import torch

from clbench import geometry, metrics
from clbench.backends import open_backend
from clbench.checkpoint import Checkpointer, RunState
from clbench.config import RunConfig, split_legacy
from clbench.context import RunContext, SpendRecorder  # noqa: F401  RunContext: plugins import it from here
from clbench.errors import UserError
from clbench.harness import Harness
from clbench.model import load_model, param_copy, params, weights_fingerprint
from clbench.progress import RunProgress
from clbench.registry import Registry
from clbench.results import (BudgetInfo, Cost, CurvePoint, Matrix, MethodInfo, ModelInfo,
                             PopulationBackend, RunResult, SequenceInfo, Summary, is_curve_step)
from clbench.runinfo import environment, sequence_fingerprint


class Runner:
    def __init__(self, cfg: RunConfig, console=None):
        self.cfg = cfg
        self.registry = Registry.load()
        self.seq = self.registry.sequence(cfg.sequence)
        self.method_cls = self.registry.method(cfg.method)
        tuned = self.seq.method_config.get(cfg.method, {})
        # a config written when the backend was an ES hyperparameter still runs (README, "ES")
        hyper, legacy = split_legacy({**tuned, **cfg.method_config}, self.method_cls.Config)
        self.method = self.method_cls(self.method_cls.Config(**hyper))
        self.backend = cfg.backend or legacy.get("backend") or self.seq.backend or "local"
        self.workers = cfg.workers if "workers" in cfg.model_fields_set else legacy.get("workers", cfg.workers)
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
        """One backend per name for the whole run (workers start once), synced to the
        model's current weights at every request (a task's start, a resume)."""
        if backend not in self._pops:
            self._pops[backend] = open_backend(backend, self.model, self.lm.tokenizer, self.registry,
                                               self.lm.path, self.cfg.dtype, workers)
        pop = self._pops[backend]
        pop.sync()
        return pop

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
    def after_step(self, task, steps: int, reward) -> None:
        """Run by the recorder once a step is counted: a curve point and a checkpoint
        every eval_every steps and at the task's last step, and the progress bar."""
        st = self.state
        self.steps_this_process += 1
        if is_curve_step(st.step_in_task, steps, self.eval_every):
            st.curves.append(self.curve_point(task, st.step_in_task, reward))
            self._checkpoint()
        self.progress.on_step(task.name, st.step_in_task, steps, reward,
                              st.curves[-1].scores if st.curves else None)

    def context(self, ti: int, task) -> RunContext:
        """What the method may use for task `ti`: plain values, the recorder, and the
        runner's backends (no reference to the runner itself)."""
        return RunContext(
            model=self.model, tokenizer=self.lm.tokenizer, registry=self.registry, task=task,
            seed=self.cfg.seed, task_index=ti, steps=self.steps, start_step=self.state.step_in_task,
            budget=self.seq.budget, earlier_tasks=self.tasks[:ti], base_weights=self.base,
            task_start_weights=self.task_start, general_replay=self.seq.general_replay,
            sequence_name=self.seq.name,
            recorder=SpendRecorder(self.state, functools.partial(self.after_step, task, self.steps)),
            backend=self.backend, workers=self.workers, make_population=self.population)

    def _checkpoint(self) -> None:
        self.state.cost.wall_seconds = self.wall()
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
        self.wall_before = self.state.cost.wall_seconds  # time spent before a resume
        with RunProgress(self.console, len(self.tasks), self.steps) as self.progress:
            if not self.state.rows:
                self.progress.note("scoring the base model (row 0)")
                self.state.rows.append(self.score_row())
                self._checkpoint()
            for ti, task in enumerate(self.tasks):
                if ti < len(self.state.rows) - 1:
                    continue  # finished before the interruption
                ctx = self.context(ti, task)
                self.progress.start_task(task.name, ti, self.state.step_in_task)
                if self.state.step_in_task == 0:
                    # the curves start where the task starts: step 0, before any update
                    self.state.curves.append(self.curve_point(task, 0, None))
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
            curves=list(st.curves),
            geometry=st.geometry,
            cost=Cost(wall_seconds=round(self.wall(), 2), peak_rss_bytes=peak,
                      peak_rss_children_bytes=peak_children,
                      peak_gpu_bytes=(torch.cuda.max_memory_allocated() if torch.cuda.is_available()
                                      and torch.cuda.is_initialized() else None),
                      **st.cost.model_dump(exclude={"wall_seconds"})),
            environment=environment(self.cfg.device),
            population_backend=PopulationBackend(name=self.backend, workers=self.workers),
        )
