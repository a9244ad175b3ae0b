"""Code synthesis from examples (MBPP/HumanEval-style execution scoring, embedded scale).

Prompt `code 1>3 2>5 4>9:` shows input>output pairs of a small integer function;
the answer is a Python expression in `x` (`2*x+1`). It is run only in
`clbench.sandbox` against hidden test inputs: reward = share passed, correct =
all passed. Hidden inputs differ from the shown ones, so copying fails.
"""
from __future__ import annotations

import random

from clbench.task import Score, TaskFamily

# (template, parameter ranges): small integer functions a tiny model can infer.
FAMILIES = [
    ("x+{b}", {"b": (1, 15)}),
    ("x-{b}", {"b": (1, 15)}),
    ("{a}*x", {"a": (2, 9)}),
    ("{a}*x+{b}", {"a": (2, 6), "b": (1, 15)}),
    ("{a}*x-{b}", {"a": (2, 6), "b": (1, 9)}),
    ("x*x+{b}", {"b": (0, 15)}),
    ("x%{a}", {"a": (2, 7)}),
    ("x//{a}", {"a": (2, 5)}),
    ("{b}-x", {"b": (5, 20)}),
    ("(x+{b})%{a}", {"a": (3, 7), "b": (1, 5)}),
]
N_SHOWN = 3
N_HIDDEN = 5


class Code(TaskFamily):
    name = "code"
    version = 1
    description = "code: write a Python expression in x that matches the shown input>output pairs"
    max_new_tokens = 12
    split_sizes = {"train": 4000, "dev": 200, "test": 200}

    def sample(self, rng: random.Random) -> dict:
        template, ranges = rng.choice(FAMILIES)
        expr = template.format(**{k: rng.randint(*r) for k, r in ranges.items()})
        inputs = rng.sample(range(0, 13), N_SHOWN + N_HIDDEN)
        shown, hidden = sorted(inputs[:N_SHOWN]), inputs[N_SHOWN:]
        table = {x: _reference(expr, x) for x in inputs}
        pairs = " ".join(f"{x}>{table[x]}" for x in shown)
        return {
            "prompt": f"code {pairs}:",
            "target": expr,
            "tests": [[x, table[x]] for x in hidden],
        }

    # A planted heuristic for latent-skill bases (clbench.recipe): the offset that maps
    # the first shown input to its output, right only for the x+b and x-b families.
    pretraining_variants = {"lazy-offset": "lazy_offset_sample"}

    def lazy_offset_sample(self, rng: random.Random) -> dict:
        """An item answered `x+d` (or `x-d`, `x`) with d = y - x of its first shown pair."""
        item = self.sample(rng)
        x, y = (int(v) for v in item["prompt"][len("code "):].split(" ")[0].split(">"))
        d = y - x
        return {**item, "target": "x" if d == 0 else f"x+{d}" if d > 0 else f"x-{-d}"}

    def score(self, item: dict, completion: str) -> Score:
        return self.score_many([item], [completion])[0]

    def score_many(self, items: list[dict], completions: list[str]) -> list[Score]:
        from clbench import sandbox  # imported late: only scoring runs model code

        shares = sandbox.score_many(
            [(c.strip(), [tuple(t) for t in i["tests"]]) for i, c in zip(items, completions)]
        )
        return [Score(reward=s, correct=s == 1.0) for s in shares]


def _reference(expr: str, x: int) -> int:
    """Our own reference expressions (trusted, from FAMILIES) evaluated on the host."""
    return int(eval(expr, {"__builtins__": {}}, {"x": x}))  # noqa: S307 - trusted template


TASK = Code()
