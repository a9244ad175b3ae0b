from clbench.lm_eval_hooks import hooks_for
from clbench_example_plugin import UPPER

dataset, process_results = hooks_for(UPPER)
