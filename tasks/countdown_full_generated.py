"""Countdown in the papers' full-size format, generated (a stand-in for the real data).

Numbers 1-99 (3 or 4 of them), the papers' instruction to think in <think> tags
and answer in <answer> tags, and their reward (arXiv 2509.24372): 0.1 * format +
answer. For real models; the embedded tiny model cannot read this prompt. It
carries its own name so it is never mistaken for the public Countdown data set.
"""
from __future__ import annotations

import random

from clbench.task import Score, TaskFamily
from clbench.tasks.countdown import reachable_problem
from clbench.tasks.countdown.scoring import score_tagged

PROMPT = ("Using the numbers {nums}, create an equation that equals {target}. You can use basic "
          "arithmetic operations (+, -, *, /) and each number can only be used once. Show your work "
          "in <think> </think> tags. And return the final answer in <answer> </answer> tags, for "
          "example <answer> (1 + 2) / 3 </answer>.")


class TaggedCountdown:
    """The papers' Countdown contract, shared by the generated and the real-data task:
    long tagged answers from a chat model, scored by `score_tagged`."""

    max_new_tokens = 1024
    stop = ()
    chat = True
    assistant_prefix = "<think>"  # the papers open the assistant turn with it

    def score(self, item: dict, completion: str) -> Score:
        return score_tagged(completion, item["nums"], item["goal"])


class CountdownFullGenerated(TaggedCountdown, TaskFamily):
    name = "countdown-full-generated"
    version = 2  # 2: the assistant turn opens with <think>; format credit for matched pairs only
    description = "math, papers' format: <think>/<answer> tags, numbers 1-99 (generated stand-in)"

    def sample(self, rng: random.Random) -> dict:
        nums, expr, target = reachable_problem(rng, largest=99, max_target=999)
        return {"prompt": PROMPT.format(nums=nums, target=target),
                "target": f"...</think>\n<answer>{expr}</answer>", "nums": nums, "goal": target}

    def lm_eval_task_name(self) -> str:
        return "countdown_full_generated"


TASK = CountdownFullGenerated()
