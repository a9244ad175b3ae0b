"""The first leaderboard: every registered method on one sequence, several seeds, submitted and built.

At the registered budget this takes hours of CPU (about 3.3 h for 7 methods x 3 seeds on
2 cores; 8-11 min per run, cost.wall_seconds of the committed submissions), so it is
resumable: a method and seed already filed on the board is skipped (so a fresh clone
resumes from the committed submissions alone), a finished run is reused, an interrupted
one resumed. `--steps`/`--eval-limit` give a smoke run whose
entries are filed as custom ones (ranked apart):

    .venv/bin/python leaderboard/build_first_board.py                      # the real board
    .venv/bin/python leaderboard/build_first_board.py --seeds 1 --steps 1 --eval-limit 16 \\
        --runs /tmp/first-board-runs --board /tmp/first-board             # minutes: plumbing check
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def clbench(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "clbench", *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        sys.exit(f"clbench {' '.join(args)} failed ({p.returncode}):\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return p


def registered_methods() -> list[str]:
    from clbench.registry import Registry

    return sorted(Registry.load().methods)


def filed_entry(method: str, seed: int, args) -> Path | None:
    """The board's standard entry for this method and seed, if one is filed (a smoke build's
    custom entries never count, so they cannot stand in for real runs)."""
    for f in sorted((Path(args.board) / "submissions" / args.sequence).glob(f"{method}-seed{seed}-*.json")):
        doc = json.loads(f.read_text())
        if doc.get("method", {}).get("name") == method and doc.get("seed") == seed and not doc.get("custom"):
            return f
    return None


def run_one(method: str, seed: int, args) -> Path:
    out = Path(args.runs) / f"{method}-{args.sequence}-seed{seed}"
    if (out / "result.json").exists():
        print(f"  {out}: finished earlier, reused")
    elif (out / "config.json").exists():
        print(f"  {out}: resuming")
        clbench("run", "--resume", str(out))
    else:
        extra = [f for k in ("steps", "eval_limit", "eval_every", "curve_examples")
                 if getattr(args, k) is not None for f in (f"--{k.replace('_', '-')}", str(getattr(args, k)))]
        print(f"  {out}: running")
        clbench("run", "--method", method, "--sequence", args.sequence, "--seed", str(seed),
                "--output", str(out), *extra)
    return out


def submit(out: Path, args) -> None:
    custom = []
    if args.steps is not None or args.eval_limit is not None:
        custom = ["--custom", f"smoke run of build_first_board.py: steps {args.steps}, "
                              f"eval_limit {args.eval_limit}"]
    p = clbench("submit", str(out), "--board", args.board, *custom, check=False)
    if p.returncode != 0 and "already submitted" not in p.stdout:
        sys.exit(f"submit {out} failed:\n{p.stdout}{p.stderr}")
    print("  " + (p.stdout.strip().splitlines() or ["already submitted"])[-1][:160])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequence", default="math-then-code", help="sequence to run (default math-then-code)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per method")
    ap.add_argument("--methods", help="comma-separated (default: every registered method)")
    ap.add_argument("--runs", default="runs/first-board", help="folder for the run folders")
    ap.add_argument("--board", default="leaderboard", help="leaderboard folder to submit to and build")
    ap.add_argument("--steps", type=int, help="smoke runs only: steps per task (entries become custom)")
    ap.add_argument("--eval-limit", type=int, help="smoke runs only: test items per column (custom)")
    ap.add_argument("--eval-every", type=int, help="steps between curve points")
    ap.add_argument("--curve-examples", type=int, help="dev items per column per curve point")
    args = ap.parse_args(argv)
    methods = args.methods.split(",") if args.methods else registered_methods()
    print(f"methods: {', '.join(methods)}; seeds 0..{args.seeds - 1}; sequence {args.sequence}")
    for method in methods:
        for seed in range(args.seeds):
            filed = filed_entry(method, seed, args)
            if filed is not None:  # a fresh machine has the board but not the run folders
                print(f"  {method} seed {seed}: filed earlier as {filed.name}, skipped")
                continue
            out = run_one(method, seed, args)
            summary = json.loads((out / "result.json").read_text())["summary"]
            print(f"  ACC {100 * summary['acc']:.1f}  BWT {summary['bwt']}")
            submit(out, args)
    p = clbench("leaderboard", "build", "--board", args.board)
    print(p.stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
