"""Glue that lets a task family's lm-eval YAML reach the family's Python.

Each family folder has a two-line `lm_eval_hooks.py` calling `hooks_for(TASK)`;
the YAML names `!function lm_eval_hooks.dataset` and `...process_results`. The
metric is the family's own `score`, the same code that gives training rewards.
"""
from __future__ import annotations

from clbench.task import TaskFamily


def hooks_for(task: TaskFamily):
    def dataset(**_: object):
        return task.as_dataset()

    def process_results(doc: dict, results: list) -> dict:
        s = task.scores([doc], [results[0]])[0]
        return {"acc": float(s.correct), "reward": float(s.reward)}

    return dataset, process_results
