"""Time the main command with default settings and print its headline numbers.

Target (issue: runner and ES): `clbench run --method es --sequence math-then-code`
finishes in at most 15 minutes on the 2-core machine, raises countdown by >= 10
points and code by >= 5 over the base model.
Run: .venv/bin/python benchmarks/default_run.py [--method es] [--sequence math-then-code] [--seed 0]
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="es")
    ap.add_argument("--sequence", default="math-then-code")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", default=None)
    ap.add_argument("extra", nargs="*", help="more clbench run arguments, after --")
    args = ap.parse_args()
    out = Path(args.output or f"runs/bench-{args.method}-{args.sequence}-seed{args.seed}-{int(time.time())}")
    cmd = [sys.executable, "-m", "clbench", "run", "--method", args.method, "--sequence", args.sequence,
           "--seed", str(args.seed), "--output", str(out), *args.extra]
    print("$", " ".join(cmd[2:]), flush=True)
    t = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.time() - t
    r = json.loads((out / "result.json").read_text())
    m, cols = r["matrix"]["values"], r["matrix"]["columns"]
    print(f"wall_seconds {wall:.0f} (target <= 900)")
    for j, c in enumerate(cols):
        print(f"{c:12s} " + " -> ".join(f"{100 * row[j]:5.1f}" for row in m))
    s = r["summary"]
    print("gains: " + ", ".join(f"{t} {100 * (m[i + 1][i] - m[0][i]):+.1f}" for i, t in enumerate(r['sequence']['tasks'])))
    print(f"bwt {s['bwt']}  forgetting {s['forgetting']}  probe_delta {s['probe_delta']}")
    last = list(r["geometry"].values())[-1]
    print(f"drift_l2 {last['drift_l2']['overall']:.2f}  sparsity {last['sparsity']['1e-06']['overall']:.4f}  "
          f"sparsity_bf16 {last['sparsity_bf16']['1e-06']['overall']:.4f}")


if __name__ == "__main__":
    main()
