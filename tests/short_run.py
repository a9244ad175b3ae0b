"""One real, short ES run per test session, shared by test_leaderboard and test_report.

Full test-split evaluation (no --eval-limit), so row 0 is the registered base
scores; one step per task, so as run it departs from the budget (a custom entry).
Both test files ask for it; the first to ask runs it, under the session's basetemp.
"""
import os
import subprocess
import sys
from pathlib import Path

RUN = ["--method", "es", "--sequence", "math-then-code", "--steps", "1", "--eval-every", "1",
       "--curve-examples", "4", "--set", "population=4", "--set", "batch_size=4",
       "--set", "backend=inprocess"]


def clbench(*args, check=True, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-m", "clbench", *args], capture_output=True, text=True,
                       env=env, timeout=900, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError(f"clbench {' '.join(args)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p


def short_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.getbasetemp() / "short-es-run"
    if not (out / "result.json").exists():
        p = clbench("run", *RUN, "--output", str(out))
        (out.parent / "short-es-run.stdout").write_text(p.stdout)
    return out
