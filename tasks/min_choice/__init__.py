"""Min-choice (multiple-choice probe, our HellaSwag stand-in): a graded preference, by log-likelihood.

Prompt `min qdbhx:`; the four choices are letters of the word, and the right one is its
smallest letter. In pretraining the answer is *sampled*: the smallest letter 42% of the
time, the second smallest 33%, the third 25%, so a model that learned the task prefers
the right choice by about log(42/33) = 0.24 nats, not by the ~15 nats that
sort-choice's near-miss distractors get. That is what HellaSwag measures in a real model
(a calibrated preference among plausible endings, not a certainty), and why this probe
can move under drift where sort-choice does not: a 40% random drift moves sort-choice's
margins by a few nats (model card), which flips a fraction-of-a-nat preference and
leaves a 15-nat one alone.
"""
from __future__ import annotations

import random
import string

from clbench.task import Score, TaskFamily

# Share of the smallest, second and third smallest letter among pretraining answers.
RANK_WEIGHTS = (0.42, 0.33, 0.25)


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
        choices = ranked[:3] + [rng.choice(ranked[3:])]
        rng.shuffle(choices)
        return {"prompt": f"min {w}:", "target": ranked[0], "choices": choices,
                "label": choices.index(ranked[0])}

    def pretraining_sample(self, rng: random.Random) -> dict:
        """The answer drawn by rank: what makes the learned preference graded."""
        w = self.word(rng)
        return {"prompt": f"min {w}:", "target": rng.choices(sorted(w)[:3], RANK_WEIGHTS)[0]}

    def score(self, item: dict, completion: str) -> Score:
        """`completion` is the chosen continuation (highest log-likelihood)."""
        ok = completion == item["choices"][item["label"]]
        return Score(reward=float(ok), correct=ok)

    def lm_eval_task_name(self) -> str:
        return "min_choice"


TASK = MinChoice()
