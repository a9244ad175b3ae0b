"""lm-eval entry points for this family (see clbench.lm_eval_hooks)."""
from clbench.lm_eval_hooks import hooks_for
from clbench.tasks.min_choice import TASK

dataset, process_results = hooks_for(TASK)
