"""Cipher (third new task): decode letters shifted forward by a stated amount.

Prompt `dec 2 jgnnq:` -> `hello`. Exists so that `math-code-cipher` has three
tasks: with two, Chaudhry's forgetting equals minus BWT (REFERENCE.md).
"""
from __future__ import annotations

import random
import string

from clbench.task import Score, TaskFamily

LETTERS = string.ascii_lowercase


def shift(text: str, k: int) -> str:
    return "".join(LETTERS[(LETTERS.index(c) + k) % 26] for c in text)


class Cipher(TaskFamily):
    name = "cipher"
    version = 1
    description = "decode a word whose letters were shifted forward by the stated amount"
    max_new_tokens = 8

    def sample(self, rng: random.Random) -> dict:
        word = "".join(rng.choice(LETTERS) for _ in range(rng.randint(3, 5)))
        k = rng.randint(1, 3)
        return {"prompt": f"dec {k} {shift(word, k)}:", "target": word}

    def score(self, item: dict, completion: str) -> Score:
        ok = completion.strip() == item["target"]
        return Score(reward=float(ok), correct=ok)


TASK = Cipher()
