"""GSM8K (Cobbe et al., arXiv 2110.14168) as a second full-scale math task.

Rows {"question", "answer"}; the gold number follows `#### ` at the end of the
answer. Asked in the papers' tagged format (as the ES papers ask Countdown) and
rewarded alike: 0.1 * format + answer, where answer is 1 when the last <answer>
tag holds the gold number (commas, `$` and a trailing period ignored).
Test = the public test split (1319); dev is carved from train.
Data: $CLBENCH_DATA_DIR/gsm8k/ (see clbench.data_files) or the datasets cache.
"""
from __future__ import annotations

import re

from clbench.data_files import DataSource, DatasetFamily, text
from clbench.task import Score
from clbench.tasks.countdown.scoring import tagged_answer

PROMPT = ("{question}\nShow your work in <think> </think> tags. And return the final answer, "
          "a number only, in <answer> </answer> tags, for example <answer> 42 </answer>.")
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def gold_number(answer: str) -> str:
    """The number after the last '####' of a GSM8K answer, commas dropped."""
    return answer.rsplit("####", 1)[-1].strip().replace(",", "")


def parse_number(text: str) -> float | None:
    t = text.strip().replace(",", "").replace("$", "").rstrip(".").strip()
    return float(t) if NUMBER.match(t) else None


def score_gsm8k(completion: str, gold: str) -> Score:
    fmt, answer = tagged_answer(completion)
    value = parse_number(answer) if answer is not None else None
    ok = value is not None and abs(value - float(gold)) < 1e-6
    return Score(reward=0.1 * fmt + float(ok), correct=ok)


class GSM8K(DatasetFamily):
    name = "gsm8k"
    version = 2  # 2: the assistant turn opens with <think>; format credit for matched pairs only
    description = "math word problems (GSM8K), <think>/<answer> tags, exact number"
    max_new_tokens = 512
    assistant_prefix = "<think>"  # as the papers' Countdown prompt, whose reward this shares
    source = DataSource("gsm8k", "openai/gsm8k", ("question", "answer"), hub_config="main")

    def convert(self, row: dict) -> dict:
        gold = gold_number(text(row["answer"], "answer"))
        if parse_number(gold) is None:  # scoring would raise on it mid-run
            raise ValueError(f"column 'answer' must end with '#### NUMBER', got {row['answer'][-60:]!r}")
        return {"prompt": PROMPT.format(question=text(row["question"], "question").strip()), "target": gold}

    def score(self, item: dict, completion: str) -> Score:
        return score_gsm8k(completion, item["target"])

    def lm_eval_task_name(self) -> str:
        return "clbench_gsm8k"  # lm-eval has its own `gsm8k`; ours must not shadow it


TASK = GSM8K()
