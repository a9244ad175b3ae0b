"""Sort (generative probe of a prior skill): sort the letters of a string.

Long outputs at the edge of the model's skill break first under drift
(the model card's drift table, clbench/assets/MODEL_CARD.md), which
is why this probe exists: it can show forgetting at CPU budgets.
"""
from __future__ import annotations

import random
import string

from clbench.task import Score, TaskFamily, exact_match


class Sort(TaskFamily):
    name = "sort"
    version = 1
    role = "probe"
    description = "probe: sort the letters of a string (greedy, exact match)"
    max_new_tokens = 12

    def sample(self, rng: random.Random) -> dict:
        word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(6, 10)))
        return {"prompt": f"sort {word}:", "target": "".join(sorted(word))}

    def score(self, item: dict, completion: str) -> Score:
        return exact_match(item, completion)


TASK = Sort()
