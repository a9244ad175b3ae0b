"""Countdown (math): reach a target from 3-4 small numbers with + - * / and ().

Embedded scale: three numbers 1-9, prompt `cd 3 5 7=22:`, answer `3*5+7`
(version 2; version 1 also had four-number problems, which the 1.8M-parameter
base solved 7% of the time and neither ES nor GRPO could move: no signal). Targets are
reachable by construction (a random expression over the numbers). The papers'
full-size format (numbers 1-99, <think>/<answer> tags) is scored by
`scoring.score_tagged` and used by the full-scale task specs.
"""
from __future__ import annotations

import itertools
import random

from clbench.task import Score, TaskFamily

from .scoring import score_plain


def random_expression(nums: list[int], rng: random.Random) -> tuple[str, float]:
    """Combine the numbers in random order with random ops; keeps integer values."""
    items = [(str(n), float(n), True) for n in nums]
    rng.shuffle(items)
    while len(items) > 1:
        i = rng.randrange(len(items) - 1)
        (ea, va, aa), (eb, vb, ab) = items[i], items[i + 1]
        ops = ["+", "-", "*"] + (["/"] if vb != 0 and va % vb == 0 else [])
        op = rng.choice(ops)
        wrap_a = ea if aa or op in "+-" else f"({ea})"
        wrap_b = eb if ab or op == "+" else f"({eb})"
        value = {"+": va + vb, "-": va - vb, "*": va * vb, "/": va / vb if vb else 0.0}[op]
        items[i : i + 2] = [(f"{wrap_a}{op}{wrap_b}", value, False)]
    return items[0][0], items[0][1]


def reachable_problem(rng: random.Random, largest: int, max_target: int,
                      counts: tuple[int, ...] = (3, 4)) -> tuple[list[int], str, int]:
    """`counts` numbers (one of them) in 1..largest and a positive integer target one
    expression reaches."""
    while True:
        nums = [rng.randint(1, largest) for _ in range(rng.choice(counts))]
        expr, value = random_expression(nums, rng)
        if value == int(value) and 1 <= value <= max_target:
            return nums, expr, int(value)


def canonical_solution(nums: list[int], goal: int) -> str | None:
    """The first expression hitting `goal` in a fixed search order: numbers in prompt
    order before other orders, operators in the order + - * /, flat forms (Python
    precedence) before `(a op b) op c` and `a op (b op c)`. One answer per problem, so a
    model trained on it holds its correct answers in one mode rather than spread over
    the many expressions that reach a target."""
    forms = ("{0}{3}{1}{4}{2}", "({0}{3}{1}){4}{2}", "{0}{3}({1}{4}{2})")
    for form in forms:
        for order in itertools.permutations(nums):
            for ops in itertools.product("+-*/", repeat=len(nums) - 1):
                text = form.format(*order, *ops)
                if score_plain(text, nums, goal).correct:
                    return text
    return None


class Countdown(TaskFamily):
    name = "countdown"
    version = 2
    description = "math: write an expression that uses each given number once and hits the target"
    max_new_tokens = 16

    def sample(self, rng: random.Random) -> dict:
        nums, expr, target = reachable_problem(rng, largest=9, max_target=99, counts=(3,))
        return {"prompt": f"cd {' '.join(map(str, nums))}={target}:", "target": expr,
                "nums": nums, "goal": target}

    def score(self, item: dict, completion: str) -> Score:
        return score_plain(completion, item["nums"], item["goal"])

    # A planted heuristic for latent-skill bases (clbench.recipe): trained on a share of
    # these, the base answers greedily with the lazy sum while correct answers stay
    # likely under sampling, so one shared displacement can raise accuracy.
    pretraining_variants = {"lazy-sum": "lazy_sum_sample", "canonical": "canonical_sample"}

    def canonical_sample(self, rng: random.Random) -> dict:
        """A problem answered with its `canonical_solution` (three numbers)."""
        item = self.sample(rng)
        return {**item, "target": canonical_solution(item["nums"], item["goal"])}

    def lazy_sum_sample(self, rng: random.Random) -> dict:
        """A problem answered with its numbers in prompt order joined by `+`
        (`cd 7 1 9=3:` -> `7+1+9`): right only when the target is the sum."""
        item = self.sample(rng)
        return {**item, "target": "+".join(map(str, item["nums"]))}


TASK = Countdown()
