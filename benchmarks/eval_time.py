"""Time `clbench eval`'s scoring of every math-then-code column on its full test split.

Target (issue: embedded benchmark): at most 30 s on the 2-core machine.
Run: .venv/bin/python benchmarks/eval_time.py
"""
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402

from clbench.harness import Harness  # noqa: E402
from clbench.model import load_model  # noqa: E402
from clbench.registry import Registry  # noqa: E402

torch.set_num_threads(os.cpu_count() or 1)
seq = Registry.load().sequence("math-then-code")
columns = seq.tasks + seq.probes
lm = load_model("embedded")
h = Harness(lm.model, lm.tokenizer)
h.score(columns, limit=8)  # warm-up: imports, task index, sandbox start
start = time.time()
scores = h.score(columns)
seconds = time.time() - start
for c in columns:
    n = len(Registry.load().task(c).split("test"))
    print(f"{c:12s} {100 * scores[c]:5.1f}%  ({n} test items)")
print(f"eval_seconds {seconds:.1f} (target <= 30)")
