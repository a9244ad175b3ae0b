"""The lm-eval bridge: score an in-memory model on our tasks and lm-eval's own.

HFLM wraps the live model object, so the runner scores after every task and at
every curve point without saving or reloading weights. Our families hand lm-eval
the task config their class generates (TaskFamily.lm_eval_config) through a
TaskManager that indexes nothing (`include_defaults=False`: indexing lm-eval's 14k
tasks costs seconds); names that are not ours go to a second, default TaskManager
built only when needed (lm-eval names not registered here).
Registered lm-eval probes (`LmEvalProbe`) hand over lm-eval's own task object.
Full-scale tasks marked `chat` are scored through the model's chat template, as
their training rewards are (clbench.generation.chat_prompts).
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

from clbench.lm_eval_probe import LmEvalProbe, default_manager
from clbench.registry import Registry


@functools.cache
def _quiet_hflm():
    """HFLM without its tqdm bars: the runner's rich progress is the one display."""
    from lm_eval.models.huggingface import HFLM

    class QuietHFLM(HFLM):
        def loglikelihood(self, requests, disable_tqdm: bool = True):
            return super().loglikelihood(requests, disable_tqdm=True)

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = True):
            return super().loglikelihood_rolling(requests, disable_tqdm=True)

        def generate_until(self, requests, disable_tqdm: bool = True):
            return super().generate_until(requests, disable_tqdm=True)

    return QuietHFLM


@dataclass
class Harness:
    model: object
    tokenizer: object
    batch_size: int = 64
    max_length: int | None = None  # None: the model config's context length
    registry: Registry = field(default_factory=Registry.load)

    def __post_init__(self):
        for name in ("lm-eval", "lm_eval"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.lm = _quiet_hflm()(pretrained=self.model, tokenizer=self.tokenizer,
                       batch_size=self.batch_size, max_length=self.max_length,
                       device=str(next(self.model.parameters()).device))

    @functools.cached_property
    def _manager(self):
        """A TaskManager that indexes nothing (lm-eval's 14k tasks not read): our families
        hand it their generated configs (TaskFamily.lm_eval_config)."""
        from lm_eval.tasks import TaskManager

        return TaskManager(include_defaults=False)

    def our_tasks(self, names: list[str]) -> dict:
        """{lm-eval task name: lm-eval Task} for registered families (not lm-eval probes)."""
        return self._manager.load([self.registry.task(n).lm_eval_config() for n in names])["tasks"]

    def _lm_eval_name(self, name: str) -> str:
        if name in self.registry.tasks:
            return self.registry.tasks[name].obj.lm_eval_task_name()
        return name

    def score(self, tasks: list[str], split: str = "test", limit: int | None = None,
              metric: str = "acc") -> dict[str, float]:
        """{task: accuracy in [0, 1]} on the first `limit` items of `split`."""
        from lm_eval.evaluator import evaluate

        reg = {t: self.registry.tasks[t].obj for t in tasks if t in self.registry.tasks}
        probes = [t for t in tasks if isinstance(reg.get(t), LmEvalProbe)]
        ours = [t for t in reg if t not in probes]
        theirs = [t for t in tasks if t not in reg]
        loaded: dict = {}
        chat: dict = {}
        if ours:
            built = self.our_tasks(ours)
            for t in ours:
                task = built[self._lm_eval_name(t)]
                task.config.test_split = split  # dev for curves, test for the matrix
                (chat if reg[t].chat and getattr(self.tokenizer, "chat_template", None) else loaded)[
                    self._lm_eval_name(t)] = task
        for t in probes:
            loaded[self._lm_eval_name(t)] = reg[t].lm_eval_task  # lm-eval's own task and metric
        if theirs:
            try:
                loaded.update(default_manager().load(theirs)["tasks"])
            except (KeyError, OSError, ConnectionError, ValueError) as e:
                from clbench.errors import UserError

                raise UserError(f"tasks: lm-eval could not load {', '.join(theirs)} ({e}); check the "
                                "name (`lm-eval ls tasks`) and, offline, that its data is in the "
                                "datasets cache") from None
        self.model.eval()
        results = {}
        for group, template in ((loaded, False), (chat, True)):
            if group:
                results.update(evaluate(lm=self.lm, task_dict=group, limit=limit, verbosity="ERROR",
                                        log_samples=False, apply_chat_template=template)["results"])
        scores = {}
        for t in tasks:
            row = results[self._lm_eval_name(t)]
            key = next(k for k in (f"{metric},none", f"{metric},strict-match", "acc,none") if k in row)
            scores[t] = float(row[key])
        return scores
