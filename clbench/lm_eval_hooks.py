"""The two callables a family's generated lm-eval config names (TaskFamily.lm_eval_config):
its documents (`custom_dataset`) and its metric (`process_results`), which is the
family's own `score`, the same code that gives training rewards."""
from __future__ import annotations


def hooks_for(task):
    """(dataset, process_results) of one clbench.task.TaskFamily (it imports this module,
    so this one names no import of it)."""
    def dataset(**_: object):
        return task.as_dataset()

    def process_results(doc: dict, results: list) -> dict:
        s = task.scores([doc], [results[0]])[0]
        return {"acc": float(s.correct), "reward": float(s.reward)}

    return dataset, process_results
