"""Compare methods (or configurations) at one budget and print a markdown table.

Each entry is `LABEL=METHOD[,key=value...]`; every entry runs once per seed with
`clbench run` (sequentially: the machine has 2 cores), existing result.json files
are reused, and the table shows mean ± half-range over seeds of: each new task's
gain (R[i][i] - R[0][i]), the probes' mean change from row 0, BWT and Chaudhry's
forgetting, final drift L2, sparsity at tau 1e-6 in float32 and bfloat16, scored
completions and wall time. All numbers are read from result.json.

Issue 6's table:
  .venv/bin/python benchmarks/compare_methods.py --sequence math-then-code --steps 60 \
      --common alpha=0.01 --seeds 0 1 2 --entries es=es "es-sparse random=es-sparse,mask=random" ...
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path


def run_one(label: str, method: str, sets: list[str], args, seed: int) -> dict:
    tag = label.replace(" ", "_").replace("/", "-")
    out = Path(args.out) / f"{args.sequence}-s{args.steps}-{tag}-seed{seed}"
    if not (out / "result.json").exists():
        cmd = [sys.executable, "-m", "clbench", "run", "--method", method, "--sequence", args.sequence,
               "--steps", str(args.steps), "--eval-every", str(args.eval_every), "--seed", str(seed),
               "--output", str(out)] + [a for s in args.common + sets for a in ("--set", s)]
        if args.eval_limit:
            cmd += ["--eval-limit", str(args.eval_limit)]
        print("$", " ".join(cmd[2:]), flush=True)
        if args.lock:  # share the cores politely with other heavy jobs
            cmd = ["flock", args.lock] + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "result.json").read_text())


def figures(r: dict) -> dict[str, float | None]:
    m, tasks = r["matrix"]["values"], r["sequence"]["tasks"]
    s, last = r["summary"], r["sequence"]["tasks"][-1]
    geo = r["geometry"][last]
    f = {f"{t} gain": 100 * (m[i + 1][i] - m[0][i]) for i, t in enumerate(tasks)}
    deltas = list(s["probe_delta"].values())
    f["probe change"] = 100 * sum(deltas) / len(deltas) if deltas else None
    f["BWT"] = None if s["bwt"] is None else 100 * s["bwt"]
    f["forgetting"] = None if s["forgetting"] is None else 100 * s["forgetting"]
    f["drift L2"] = geo["drift_l2"]["overall"]
    f["sparsity fp32 %"] = 100 * geo["sparsity"]["1e-06"]["overall"]
    f["sparsity bf16 %"] = 100 * geo["sparsity_bf16"]["1e-06"]["overall"] if "sparsity_bf16" in geo else None
    f["completions"] = sum(r["budget"]["completions_per_task"].values())
    f["wall s"] = r["cost"]["wall_seconds"]
    return f


def cell(values: list) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "–"
    mean = statistics.fmean(vals)
    fmt = (lambda x: f"{x:,.0f}") if abs(mean) >= 1000 else (lambda x: f"{x:.1f}")
    if len(vals) == 1:
        return fmt(mean)
    return f"{fmt(mean)} ± {(max(vals) - min(vals)) / 2:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequence", default="math-then-code")
    ap.add_argument("--steps", type=int, default=60, help="update steps per task")
    ap.add_argument("--eval-every", type=int, default=20)
    ap.add_argument("--eval-limit", type=int, help="test items per column (default all)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--common", nargs="*", default=[], help="key=value set on every entry")
    ap.add_argument("--entries", nargs="+", required=True, help='"LABEL=METHOD[,key=value...]"')
    ap.add_argument("--out", default="runs/compare")
    ap.add_argument("--lock", help="run each `clbench run` under `flock LOCK` (one heavy job at a time)")
    args = ap.parse_args()
    table = []
    for entry in args.entries:
        label, _, spec = entry.partition("=")
        method, *sets = spec.split(",")
        rows = [figures(run_one(label, method, sets, args, seed)) for seed in args.seeds]
        table.append((label, rows))
    cols = list(table[0][1][0])
    print(f"\n{args.sequence}, {args.steps} steps per task, seeds {args.seeds}, common: {args.common or '-'}"
          " (points; mean ± half-range over seeds)\n")
    print("| entry | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for label, rows in table:
        print(f"| {label} | " + " | ".join(cell([r[c] for r in rows]) for c in cols) + " |")


if __name__ == "__main__":
    main()
