"""Sort-choice (multiple-choice probe, our HellaSwag stand-in), scored by log-likelihood.

Four continuations: the sorted string and three hard distractors, each one
adjacent swap away from it. An early trial found easy distractors (letter swaps
of a reversed string) never move under drift; near-misses are needed for the
probe to see anything.
"""
from __future__ import annotations

import random
import string

from clbench.task import Score, TaskFamily, choice_match


def near_misses(answer: str, rng: random.Random, n: int = 3) -> list[str]:
    """Distinct strings made by swapping two adjacent, different letters."""
    spots = [i for i in range(len(answer) - 1) if answer[i] != answer[i + 1]]
    rng.shuffle(spots)
    out: list[str] = []
    for i in spots:
        s = answer[:i] + answer[i + 1] + answer[i] + answer[i + 2 :]
        if s not in out:
            out.append(s)
        if len(out) == n:
            break
    return out


class SortChoice(TaskFamily):
    name = "sort-choice"
    version = 1
    kind = "choice"
    role = "probe"
    description = "probe: pick the sorted string among near-miss distractors (log-likelihood)"

    def sample(self, rng: random.Random) -> dict:
        while True:
            word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(7, 10)))
            answer = "".join(sorted(word))
            wrong = near_misses(answer, rng)
            if len(wrong) == 3:
                break
        choices = wrong + [answer]
        rng.shuffle(choices)
        return {"prompt": f"sort {word}:", "target": answer, "choices": choices,
                "label": choices.index(answer)}

    def score(self, item: dict, completion: str) -> Score:
        return choice_match(item, completion)

    def lm_eval_task_name(self) -> str:
        return "sort_choice"


TASK = SortChoice()
