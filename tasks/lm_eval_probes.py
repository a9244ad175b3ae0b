"""lm-eval's own tasks registered as clbench probes, under lm-eval's names.

The paper's prior ability is HellaSwag; ARC-Easy, PIQA and a few MMLU subjects
widen the view. A plugin registers more the same way: `LmEvalProbe("boolq")`.
"""
from clbench.lm_eval_probe import LmEvalProbe

PROBES = [
    LmEvalProbe("hellaswag", "probe: commonsense sentence completion (the paper's prior ability)"),
    LmEvalProbe("arc_easy", "probe: grade-school science questions, easy set"),
    LmEvalProbe("piqa", "probe: physical commonsense, two solutions"),
    LmEvalProbe("mmlu_high_school_mathematics", "probe: MMLU subject, high-school mathematics"),
    LmEvalProbe("mmlu_college_computer_science", "probe: MMLU subject, college computer science"),
    LmEvalProbe("mmlu_world_religions", "probe: MMLU subject, world religions"),
]
