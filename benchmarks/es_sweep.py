"""Sweep a method's hyperparameters on one sequence (ES by default; `--method grpo` for
GRPO's); prints a markdown table from result.json files.

Each configuration is one `clbench run` (sequentially: the machine has 2 cores and
ES already uses both). Selection uses the dev-split curves; test numbers are
printed for the record only.
Run: .venv/bin/python benchmarks/es_sweep.py --sequence math-only --steps 60 \
        --grid "sigma=0.01,alpha=0.005" "sigma=0.03,alpha=0.005" --out runs/sweep
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="es", help="registered method to sweep (default es)")
    ap.add_argument("--sequence", default="math-only")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--eval-every", type=int, default=20)
    ap.add_argument("--curve-examples", type=int, default=200, help="dev items per column per curve point")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grid", nargs="+", required=True, help='e.g. "sigma=0.02,alpha=0.005"')
    ap.add_argument("--out", default="runs/sweep")
    ap.add_argument("--pending", metavar="MODULE:CLASS", help="a built-in method not registered yet "
                    "(benchmarks/run_pending.py registers it for each run)")
    args = ap.parse_args()
    rows = []
    prefix = "" if args.method == "es" else f"{args.method}-"  # es keeps its old folder names
    for point in args.grid:
        sets = [kv for kv in point.split(",") if kv]
        tag = "_".join(s.replace("=", "") for s in sets)
        out = Path(args.out) / f"{prefix}{args.sequence}-{tag or 'defaults'}-s{args.steps}-seed{args.seed}"
        if not (out / "result.json").exists():
            clbench = ([str(Path(__file__).with_name("run_pending.py")), args.pending] if args.pending
                       else ["-m", "clbench"])
            cmd = [sys.executable, *clbench, "run", "--method", args.method, "--sequence", args.sequence,
                   "--steps", str(args.steps), "--eval-every", str(args.eval_every), "--seed", str(args.seed),
                   "--curve-examples", str(args.curve_examples),
                   "--output", str(out)] + [a for s in sets for a in ("--set", s)]
            print("$", " ".join(cmd[len(clbench) + 1:]), flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        r = json.loads((out / "result.json").read_text())
        first = r["sequence"]["tasks"][0]
        dev = [c["scores"][first] for c in r["curves"] if c["task"] == first]
        m = r["matrix"]["values"]
        rows.append((point, dev, m, r))
    print(f"\n| config | dev {first} over curve points | test {first} base -> after | probes delta (pts) | drift L2 | wall s |")
    print("|---|---|---|---|---|---|")
    for point, dev, m, r in rows:
        probes = ", ".join(f"{k} {100 * v:+.1f}" for k, v in r["summary"]["probe_delta"].items())
        print(f"| {point} | {' '.join(f'{100 * d:.0f}' for d in dev)} | {100 * m[0][0]:.1f} -> {100 * m[1][0]:.1f} "
              f"| {probes} | {r['curves'][-1]['drift_l2']:.2f} | {r['cost']['wall_seconds']:.0f} |")


if __name__ == "__main__":
    main()
