"""`clbench ...` with a built-in method that is not registered yet, registered in this
process only: `python benchmarks/run_pending.py MODULE:CLASS run --method NAME ...`.

Why: a built-in method joins the entry points together with its 3 board entries (the
leaderboard test requires every registered built-in on the board), so its tuning
sweep must run before it is registered. The run's result.json is an ordinary one;
the method is recorded under the class's `name`.
Example (the hybrid issue's sweep):
  .venv/bin/python benchmarks/es_sweep.py --method es-guided \
      --pending clbench.methods.es_guided:ESGuided --grid "a=0.5" "a=0.25"
"""
import importlib
import sys

from clbench.cli import main as cli_main
from clbench.registry import Entry, Registry


def main(argv: list[str]) -> int:
    if not argv or ":" not in argv[0]:
        print("usage: run_pending.py MODULE:CLASS CLBENCH-ARGS...", file=sys.stderr)
        return 2
    module, cls_name = argv[0].split(":", 1)
    cls = getattr(importlib.import_module(module), cls_name)
    reg = Registry.load()
    reg.methods.setdefault(cls.name, Entry(cls, "pending (benchmarks/run_pending.py)"))
    return cli_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
