"""Reverse (generative probe of a prior skill): write a string backwards."""
from __future__ import annotations

import random
import string

from clbench.task import Score, TaskFamily, exact_match


class Reverse(TaskFamily):
    name = "reverse"
    version = 1
    role = "probe"
    description = "probe: reverse a string (greedy, exact match)"
    max_new_tokens = 12

    def sample(self, rng: random.Random) -> dict:
        word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(6, 11)))
        return {"prompt": f"rev {word}:", "target": word[::-1]}

    def score(self, item: dict, completion: str) -> Score:
        return exact_match(item, completion)


TASK = Reverse()
