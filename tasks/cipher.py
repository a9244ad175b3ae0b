"""Cipher (third new task): decode letters shifted forward by a stated amount.

Prompt `dec 2 jgnnq:` -> `hello`, shifts 1-7. Pretraining shows only shifts 1
and 2, so the base model solves about that share and must learn the rest.
Exists so that `math-code-cipher` has three tasks: with two, Chaudhry's
forgetting equals minus BWT (Chaudhry et al., arXiv 1801.10112; README
'What a run measures').
"""
from __future__ import annotations

import random
import string

from clbench.task import Score, TaskFamily, exact_match

LETTERS = string.ascii_lowercase


def shift(text: str, k: int) -> str:
    return "".join(LETTERS[(LETTERS.index(c) + k) % 26] for c in text)


class Cipher(TaskFamily):
    name = "cipher"
    version = 1
    description = "decode a word whose letters were shifted forward by the stated amount"
    max_new_tokens = 8

    def sample(self, rng: random.Random, shifts: tuple[int, int] = (1, 7)) -> dict:
        word = "".join(rng.choice(LETTERS) for _ in range(rng.randint(3, 6)))
        k = rng.randint(*shifts)
        return {"prompt": f"dec {k} {shift(word, k)}:", "target": word}

    def pretraining_sample(self, rng: random.Random) -> dict:
        return self.sample(rng, shifts=(1, 2))

    # Variants for latent-skill bases (clbench.recipe): every shift answered correctly,
    # and a planted heuristic that copies the shifted word unchanged.
    pretraining_variants = {"all-shifts": "sample", "lazy-copy": "lazy_copy_sample"}

    def lazy_copy_sample(self, rng: random.Random) -> dict:
        """An item (any shift) answered with its shifted word, undecoded."""
        item = self.sample(rng)
        return {**item, "target": item["prompt"].rstrip(":").split(" ")[2]}

    def score(self, item: dict, completion: str) -> Score:
        return exact_match(item, completion)


TASK = Cipher()
