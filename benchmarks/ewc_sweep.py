"""Sweep EWC's lambda on math-then-code; plain GRPO (lambda 0) is the first row.

Each lambda is one `clbench run --method ewc` (sequentially: 2 cores). What EWC is
for is keeping countdown after learning code, so the table shows countdown after
each task, its forgetting (countdown after task 1 minus after task 2, test split),
the code gain and the probes. Choose the largest gain in kept countdown that
does not cost the code gain.
Run: .venv/bin/python benchmarks/ewc_sweep.py --steps 60 --lambdas 0 100 1000 10000 --out runs/ewc-sweep
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sequence", default="math-then-code")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--eval-every", type=int, default=30)
    ap.add_argument("--eval-limit", type=int, default=200, help="test items per column (SE ~3 points at 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lambdas", nargs="+", type=float, default=[0, 100, 1000, 10000])
    ap.add_argument("--set", nargs="*", default=[], help="other method settings, e.g. learning_rate=1e-4")
    ap.add_argument("--out", default="runs/ewc-sweep")
    args = ap.parse_args()
    rows = []
    for lam in args.lambdas:
        out = Path(args.out) / f"{args.sequence}-lambda{lam:g}-s{args.steps}-seed{args.seed}"
        if not (out / "result.json").exists():
            cmd = [sys.executable, "-m", "clbench", "run", "--method", "ewc", "--sequence", args.sequence,
                   "--steps", str(args.steps), "--eval-every", str(args.eval_every), "--seed", str(args.seed),
                   "--eval-limit", str(args.eval_limit), "--output", str(out), "--set", f"ewc_lambda={lam}"]
            cmd += [a for s in args.set for a in ("--set", s)]
            print("$", " ".join(cmd[2:]), flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        rows.append((lam, json.loads((out / "result.json").read_text())))
    print(f"\n{args.sequence}, {args.steps} steps per task, first {args.eval_limit} test items, seed {args.seed}")
    print("| lambda | countdown base -> after countdown -> after code | countdown forgetting | code base -> after "
          "| probes delta (pts) | drift L2 | wall s |")
    print("|---|---|---|---|---|---|---|")
    for lam, r in rows:
        m = [[100 * v for v in row] for row in r["matrix"]["values"]]
        probes = ", ".join(f"{k} {100 * v:+.1f}" for k, v in r["summary"]["probe_delta"].items())
        drift = list(r["geometry"].values())[-1]["drift_l2"]["overall"]
        print(f"| {lam:g} | {m[0][0]:.1f} -> {m[1][0]:.1f} -> {m[2][0]:.1f} | {m[1][0] - m[2][0]:+.1f} "
              f"| {m[0][1]:.1f} -> {m[2][1]:.1f} | {probes} | {drift:.2f} | {r['cost']['wall_seconds']:.0f} |")


if __name__ == "__main__":
    main()
