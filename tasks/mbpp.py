"""MBPP (Austin et al., arXiv 2108.07732) as the full-scale code task, execution-scored.

Rows {"task_id", "text", "code", "test_list"} (plus optional "test_setup_code").
The prompt is MBPP's own (the description and its three asserts); the answer is
the last ```python fenced block of the completion (or the whole completion). It
runs only in `clbench.sandbox` (program mode: the answer, then each assert, in a
throw-away child): reward = share of asserts passed, correct = all passed.
Test = the public test split (500), dev = validation (90).
Data: $CLBENCH_DATA_DIR/mbpp/ (see clbench.data_files) or the datasets cache.
"""
from __future__ import annotations

import re

from clbench.data_files import DataSource, DatasetFamily, text, whole_number
from clbench.task import Score

PROMPT = ("You are an expert Python programmer, and here is your task: {text} Your code should "
          "pass these tests:\n\n{tests}\n\nWrite the function in one ```python code block.")
FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|$)", re.DOTALL)


def extract_code(completion: str) -> str:
    """The last fenced block (an unclosed last fence counts), else the whole text."""
    blocks = FENCE.findall(completion)
    return (blocks[-1] if blocks else completion).strip()


class MBPP(DatasetFamily):
    name = "mbpp"
    version = 1
    description = "code: write a Python function that passes MBPP's asserts (sandboxed)"
    max_new_tokens = 512
    dev_split = "validation"
    source = DataSource("mbpp", "google-research-datasets/mbpp", ("task_id", "text", "code", "test_list"),
                        hub_config="full")

    def convert(self, row: dict) -> dict:
        tests = row["test_list"]
        if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
            # a string would be read as one assert per character; none would score 0 always
            raise ValueError(f"column 'test_list' must be a non-empty list of assert lines, got {tests!r:.60}")
        setup = text(row.get("test_setup_code") or "", "test_setup_code")
        return {"prompt": PROMPT.format(text=text(row["text"], "text").strip(), tests="\n".join(tests)),
                "target": text(row["code"], "code"), "task_id": whole_number(row["task_id"], "task_id"), "tests": tests,
                "setup": setup}

    def score(self, item: dict, completion: str) -> Score:
        return self.score_many([item], [completion])[0]

    def score_many(self, items: list[dict], completions: list[str]) -> list[Score]:
        from clbench import sandbox  # imported late: only scoring runs model code

        shares = sandbox.score_programs(
            [((i["setup"] + "\n" if i["setup"] else "") + extract_code(c), i["tests"])
             for i, c in zip(items, completions)])
        return [Score(reward=s, correct=s == 1.0) for s in shares]

    def lm_eval_task_name(self) -> str:
        return "clbench_mbpp"  # lm-eval has its own `mbpp`; ours must not shadow it


TASK = MBPP()
