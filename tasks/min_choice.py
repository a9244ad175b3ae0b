"""Min-choice (multiple-choice probe, our HellaSwag stand-in): a graded preference, by log-likelihood.

Prompt `min qdbhx:`; the four choices are the word's four smallest letters, and the
right one is the smallest. In pretraining the answer is *sampled* by rank (36%, 27%,
21%, 16%), so a model that learned the task prefers the right choice by about
log(36/27) = 0.29 nats over the next, not by the ~15 nats that sort-choice's near-miss
distractors get. That is what HellaSwag measures in a real model (a calibrated
preference among plausible endings, not a certainty), and why this probe moves under
drift where sort-choice does not: a random drift moves log-likelihood margins by a
few nats (model card), which flips a fraction-of-a-nat preference among four close
choices and leaves a 15-nat one alone.
"""
from __future__ import annotations

import random
import string

from clbench.task import Score, TaskFamily, choice_match

# Share of the smallest, second, third and fourth smallest letter among pretraining answers.
RANK_WEIGHTS = (0.36, 0.27, 0.21, 0.16)


class MinChoice(TaskFamily):
    name = "min-choice"
    version = 1
    kind = "choice"
    role = "probe"
    description = ("probe: pick a word's smallest letter, a preference pretraining taught as "
                   "graded (log-likelihood, 4 choices)")
    max_new_tokens = 1

    @staticmethod
    def word(rng: random.Random) -> str:
        return "".join(rng.sample(string.ascii_lowercase, rng.randint(6, 9)))  # distinct letters

    def sample(self, rng: random.Random) -> dict:
        w = self.word(rng)
        ranked = sorted(w)
        choices = ranked[:4]
        rng.shuffle(choices)
        return {"prompt": f"min {w}:", "target": ranked[0], "choices": choices,
                "label": choices.index(ranked[0])}

    def pretraining_sample(self, rng: random.Random) -> dict:
        """The answer drawn by rank: what makes the learned preference graded. The item
        also carries its four choices, the right one first, so that a general replay set
        drawn from the pretraining stream is scored by `score` like any test item (the
        smallest letter is right, whichever letter pretraining showed)."""
        w = self.word(rng)
        choices = sorted(w)[:4]
        return {"prompt": f"min {w}:", "target": rng.choices(choices, RANK_WEIGHTS)[0],
                "choices": choices, "label": 0}

    def score(self, item: dict, completion: str) -> Score:
        return choice_match(item, completion)

    def lm_eval_task_name(self) -> str:
        return "min_choice"


TASK = MinChoice()
