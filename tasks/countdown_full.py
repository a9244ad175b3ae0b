"""Countdown in the papers' format on the public data set (Jiayi-Pan/Countdown-Tasks-3to4).

Rows {"target", "nums"} (3-4 numbers); the prompt and reward are those of
`countdown-full-generated` (arXiv 2509.24372: 0.1 * format + answer, <think>/<answer>
tags), so the real task and its generated stand-in score alike. The data set has
one split: test (500) and dev (200) are carved from it by a seeded shuffle.
Data: $CLBENCH_DATA_DIR/countdown-full/ (see clbench.data_files) or the datasets cache.
"""
from __future__ import annotations

from clbench.data_files import DataSource, DatasetFamily, whole_number
from clbench.tasks.countdown_full_generated import PROMPT, TaggedCountdown


class CountdownFull(TaggedCountdown, DatasetFamily):
    name = "countdown-full"
    version = 2  # 2: the assistant turn opens with <think>; format credit for matched pairs only
    description = "math, papers' Countdown data and format: <think>/<answer> tags, 3-4 numbers"
    source = DataSource("countdown-full", "Jiayi-Pan/Countdown-Tasks-3to4", ("target", "nums"))

    def convert(self, row: dict) -> dict:
        if not isinstance(row["nums"], list) or not row["nums"]:
            raise ValueError(f"column 'nums' must be a list of whole numbers, got {row['nums']!r:.60}")
        nums = [whole_number(n, "nums") for n in row["nums"]]
        goal = whole_number(row["target"], "target")
        return {"prompt": PROMPT.format(nums=nums, target=goal), "target": "", "nums": nums, "goal": goal}

    def lm_eval_task_name(self) -> str:
        return "countdown_full"


TASK = CountdownFull()
