"""Build the next board against a frozen new base, on main, without touching the current one.

The board's 21 runs take about 3.3 hours on the 2-core machine, longer than a session, and
a fresh machine starts from main alone, so the next board is built where no test reads
it: `leaderboard/next/`. Its `tree/` holds the files that will replace the shipped ones
at the switch, at their final repository paths (the new model folder, `base_scores.json`,
the sequence YAMLs, the model card). While a run is made those files are laid over the
working tree and put back afterwards, so every run records exactly what it would record
after the switch: model name `embedded`, the same weights, sequence and data fingerprints.
Nothing in `tree/` may change once the first run exists (its submissions would stop
validating), and the switch is one commit that moves `tree/` into place and
`next/submissions/` over `leaderboard/submissions/`.

    .venv/bin/python leaderboard/build_next_board.py stage --model PATH   # freeze a base into tree/
    .venv/bin/python leaderboard/build_next_board.py build [--methods es,grpo] [--seeds 3]
    .venv/bin/python leaderboard/build_next_board.py exec -- CMD...       # a sweep on the staged files
    .venv/bin/python leaderboard/build_next_board.py switch               # when all runs exist

`build` resumes where it stopped (a finished run is reused, an interrupted one resumed,
a filed submission skipped): see build_first_board.py.
"""
from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NEXT = REPO / "leaderboard" / "next"
TREE = NEXT / "tree"
MODEL = Path("clbench/assets/tiny-llama")
STAGED = [MODEL, Path("clbench/assets/base_scores.json"), Path("clbench/assets/MODEL_CARD.md"),
          Path("tasks/sequences")]


def staged_files() -> list[Path]:
    """Repository-relative paths of every file in tree/."""
    return sorted(p.relative_to(TREE) for p in TREE.rglob("*") if p.is_file())


@contextlib.contextmanager
def overlaid():
    """tree/ laid over the working tree for the duration; the originals put back after,
    even on an error or Ctrl-C. The model folder is swapped whole (no stale weights)."""
    if not (TREE / MODEL / "config.json").exists():
        sys.exit(f"{TREE}: nothing staged; run `stage --model PATH` first")
    backup = Path(tempfile.mkdtemp(prefix="clbench-next-"))
    moved: list[Path] = []
    # `kill` (SIGTERM) would end the process without running `finally`, leaving tree/ in place
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        shutil.move(str(REPO / MODEL), str(backup / "model"))
        shutil.copytree(TREE / MODEL, REPO / MODEL)
        for rel in staged_files():
            if MODEL in rel.parents:
                continue
            if (REPO / rel).exists():
                (backup / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, backup / rel)
            moved.append(rel)
            (REPO / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TREE / rel, REPO / rel)
        yield
    finally:
        for rel in moved:
            if (backup / rel).exists():
                shutil.copy2(backup / rel, REPO / rel)
            else:
                (REPO / rel).unlink()
        if (backup / "model").exists():
            shutil.rmtree(REPO / MODEL, ignore_errors=True)
            shutil.move(str(backup / "model"), str(REPO / MODEL))
        shutil.rmtree(backup, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


def stage(model: Path) -> None:
    """Copy a pretrained base into tree/, register its row-0 scores and fingerprint in the
    staged base_scores.json (which the sequences resolve their base fingerprint from; edit
    the YAMLs in tree/ first: probes, budget, method_config; a sequence left out of tree/
    stays as main has it), and refuse if a staged run already exists."""
    if any((NEXT / "submissions").rglob("*.json")):
        sys.exit("next/submissions already holds runs of the staged base: it is frozen")
    for rel in STAGED[1:]:  # start from the shipped files unless tree/ already has them
        if not (TREE / rel).exists():
            (TREE / rel).parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if (REPO / rel).is_dir() else shutil.copy2)(REPO / rel, TREE / rel)
    shutil.rmtree(TREE / MODEL, ignore_errors=True)
    shutil.copytree(model, TREE / MODEL)
    with overlaid():
        subprocess.run([sys.executable, "-m", "clbench", "leaderboard", "register-base"], check=True)
        for rel in staged_files():  # register-base wrote into the overlaid copy: keep it
            if MODEL not in rel.parents:
                shutil.copy2(REPO / rel, TREE / rel)
    print(f"staged {model} in {TREE}")


def build(argv: list[str]) -> None:
    sys.path.insert(0, str(REPO / "leaderboard"))
    import build_first_board

    with overlaid():
        build_first_board.main(["--board", str(NEXT), "--runs", str(REPO / "runs" / "next-board"), *argv])


def exec_overlaid(cmd: list[str]) -> int:
    """Run any command against the staged files (a sweep or benchmark on the next base with
    its sequences, before the switch); its exit code is returned."""
    if not cmd:
        sys.exit("exec: give a command after `--`, e.g. exec -- .venv/bin/python benchmarks/ewc_sweep.py")
    with overlaid():
        return subprocess.run(cmd).returncode


def switch() -> None:
    """Move tree/ into place and the next board over the current one (then commit once)."""
    for rel in staged_files():
        if MODEL not in rel.parents:
            (REPO / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TREE / rel, REPO / rel)
    shutil.rmtree(REPO / MODEL)
    shutil.copytree(TREE / MODEL, REPO / MODEL)
    board = REPO / "leaderboard"
    shutil.rmtree(board / "submissions")
    shutil.copytree(NEXT / "submissions", board / "submissions")
    subprocess.run([sys.executable, "-m", "clbench", "leaderboard", "build", "--board", str(board)], check=True)
    shutil.rmtree(NEXT)
    print("switched: review `git status`, then commit base, scores, sequences, submissions, board "
          "and README together")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stage", help="freeze a pretrained base into leaderboard/next/tree")
    s.add_argument("--model", required=True, type=Path, help="the pretrained model folder")
    sub.add_parser("build", help="run and file the next board's entries (resumable); other "
                   "arguments go to build_first_board.py (--methods, --seeds)")
    sub.add_parser("switch", help="move the staged files and board into place")
    sub.add_parser("exec", help="run a command (after --) with the staged files in place")
    args, rest = ap.parse_known_args()
    if args.cmd == "stage":
        stage(args.model)
    elif args.cmd == "build":
        build(rest)
    elif args.cmd == "exec":
        return exec_overlaid(rest[1:] if rest[:1] == ["--"] else rest)
    else:
        switch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
