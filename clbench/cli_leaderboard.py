"""`clbench submit` and `clbench leaderboard validate|build|verify|register-base`.

Validation failures are exit 1 with one line per problem (`FILE: field: message`);
exit 2 stays for usage errors (a missing file, a bad flag).
"""
from __future__ import annotations

import sys
from pathlib import Path

EXIT_INVALID = 1


def _say(line: str) -> None:
    """Print a line that quotes an untrusted file: control characters (terminal escapes
    that could redraw "ok") and lone surrogates (which crash a UTF-8 stdout) are escaped."""
    print("".join(c if c.isprintable() else ascii(c)[1:-1] for c in line))


def add_commands(sub) -> None:
    s = sub.add_parser("submit", help="validate a run's result.json and file it on the leaderboard",
                       description="Validate OUT/result.json and copy it to "
                                   "BOARD/submissions/<sequence>/ under a name that never "
                                   "overwrites; exit 1 with the problems if it is not a valid entry.")
    s.add_argument("run", help="run folder holding result.json (or the JSON file itself)")
    s.add_argument("--custom", metavar="REASON",
                   help="file as a custom entry, ranked apart, with this one-line reason (at most "
                        "200 characters): needed when the budget or evaluation departs from the "
                        "sequence's registered ones, or the sequence registers no base model; a "
                        "different base model is refused even as custom")
    s.add_argument("--board", default="leaderboard", help="leaderboard folder (default: leaderboard)")
    s.set_defaults(func=cmd_submit)

    lb = sub.add_parser("leaderboard", help="validate submissions, build the board, register base scores")
    lsub = lb.add_subparsers(dest="leaderboard_command", required=True, metavar="ACTION")
    s = lsub.add_parser("validate", help="check RunResult files as leaderboard entries (exit 1 if any fails)",
                        description="Validate result.json files as leaderboard entries without "
                                    "filing them: one line per problem (FILE: field: message); exit 0 "
                                    "if all pass, 1 if any fails, 2 if a file is missing.")
    s.add_argument("files", nargs="+", help="RunResult JSON files (a run's OUT/result.json)")
    s.set_defaults(func=cmd_validate)
    s = lsub.add_parser("build", help="write BOARD/README.md and BOARD/index.html from the submissions",
                        description="Rank the entries under BOARD/submissions/ and write BOARD/README.md "
                                    "and BOARD/index.html; writes nothing and exits 1 while any "
                                    "submission is invalid.")
    s.add_argument("--board", default="leaderboard", help="leaderboard folder (default: leaderboard)")
    s.set_defaults(func=cmd_build)
    s = lsub.add_parser("verify", help="re-run submissions from what they record and compare (minutes each)",
                        description="Re-run each submission's method (name, version, config), sequence, "
                                    "seed, model and budget with the installed code and compare matrix, "
                                    "summary, curves, geometry and cost counts with it (not wall time, "
                                    "peak memory or environment). Exit 0 when every file is identical; "
                                    "1 naming the first differing field, when this machine runs the "
                                    "entry's own git commit with its python, torch, transformers, lm_eval "
                                    "and device; 2 otherwise ('not reproducible here', and why) or when "
                                    "a file cannot be re-run. A re-run takes as long as the run did.")
    s.add_argument("files", nargs="+", help="submission JSON files (e.g. leaderboard/submissions/*/*.json)")
    s.add_argument("--record", action="store_true",
                   help="write a verification record per file to BOARD/verified/ (the board's "
                        "'verified' column reads them); a file already verified is skipped, so a pass "
                        "over the board resumes where it stopped")
    s.add_argument("--board", default="leaderboard", help="leaderboard folder for --record (default: leaderboard)")
    s.set_defaults(func=cmd_verify)
    s = lsub.add_parser("register-base",
                        help="score a base model on every column of the built-in sequences naming it "
                             "and register the scores and its fingerprint (after retraining it)",
                        description="Score MODEL on the full test split of every column of the built-in "
                                    "sequences that name it (as the runner scores row 0), then register "
                                    "the scores and its fingerprint in clbench/assets/base_scores.json, "
                                    "where those sequences read their base_model_fingerprint from. If "
                                    "the fingerprint changes, entries filed against the old one stop "
                                    "validating.")
    s.add_argument("--model", default="embedded", help="model name the sequences give (default embedded)")
    s.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                   help="where the model is scored; auto = cuda when available (default cpu)")
    s.set_defaults(func=cmd_register_base)


def cmd_validate(args) -> int:
    from clbench.errors import UserError
    from clbench.leaderboard.registered import load_base_scores
    from clbench.leaderboard.validate import validate_file

    for f in args.files:
        if not Path(f).is_file():
            raise UserError(f"validate: {f} is not a file; give RunResult JSON files")
    failed = 0
    base_scores = load_base_scores()  # once, not per file
    for f in args.files:
        v = validate_file(f, base_scores=base_scores)
        if v.ok:
            note = f" (custom: {v.custom}; departs: {'; '.join(v.deviations) or 'nothing'})" if v.custom else ""
            _say(f"{f}: ok{note}")
        else:
            failed += 1
            for p in v.problems:
                _say(f"{f}: {p}")
    if failed:
        print(f"{failed} of {len(args.files)} file(s) invalid", file=sys.stderr)
    return EXIT_INVALID if failed else 0


def cmd_verify(args) -> int:
    import os

    import torch

    from clbench.errors import UserError
    from clbench.leaderboard.verify import entry_sha256, record, verified_entries, verify_file

    for f in args.files:
        if not Path(f).is_file():
            raise UserError(f"verify: {f} is not a file; give submission JSON files")
    board = _board_folder(args.board, "leaderboard verify")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    codes, reruns = [], {}  # entries with the same settings share one re-run
    done = verified_entries(board) if args.record else set()
    for f in args.files:
        if entry_sha256(Path(f)) in done:
            _say(f"{f}: verified earlier ({board / 'verified'}), skipped")
            continue
        outcome = verify_file(Path(f), cache=reruns)
        _say(f"{f}: {outcome.verdict}: {outcome.detail} ({outcome.seconds:.0f} s)")
        if args.record:
            print(f"  recorded in {_writing('leaderboard verify', board, record, Path(f), outcome, board)}")
        codes.append(outcome.exit_code)
    return 1 if 1 in codes else max(codes, default=0)


def cmd_submit(args) -> int:
    from clbench.errors import UserError
    from clbench.leaderboard.submit import SubmitError, submit

    path = Path(args.run)
    if path.is_dir():
        path = path / "result.json"
    if not path.is_file():
        raise UserError(f"submit: {path} does not exist; give a finished run folder (with result.json)")
    _board_folder(args.board, "submit")
    if args.custom is not None:  # a bad flag is exit 2, before the file is read
        from clbench.leaderboard.validate import MAX_REASON, reason_fits

        if not args.custom.strip() or not reason_fits(args.custom):
            raise UserError(f"submit: --custom needs a reason of one printable line, at most "
                            f"{MAX_REASON} characters, e.g. --custom 'smoke test, 1 step per task'")
    try:
        dest = _writing("submit", Path(args.board), submit, path, Path(args.board), custom=args.custom)
    except SubmitError as e:
        for line in str(e).splitlines():
            _say(f"{path}: {line}")
        print("not submitted", file=sys.stderr)
        return EXIT_INVALID
    print(f"submitted {dest}; rebuild the board with `clbench leaderboard build --board {args.board}`")
    return 0


def _board_folder(board: str, command: str) -> Path:
    """--board as a folder (it may not exist yet); a file there is a usage error, not a
    traceback from deep inside writing the board."""
    from clbench.atomic import existing_ancestor
    from clbench.errors import UserError

    path = Path(board)
    if path.exists() and not path.is_dir():
        raise UserError(f"{command}: --board {board} is not a folder (it is a file); give the board folder "
                        "that `clbench submit --board` files results into")
    above = existing_ancestor(path)
    if not path.exists() and not above.is_dir():
        raise UserError(f"{command}: --board {board} cannot be created: {above} is a file; give a "
                        "board folder whose parents are folders")
    for name in ("README.md", "index.html"):  # what build writes; checked before it writes either
        if (path / name).is_dir():
            raise UserError(f"{command}: {path / name} is a folder; the board writes its page there "
                            "(move that folder away)")
    for name in ("submissions", "verified"):
        if (path / name).exists() and not (path / name).is_dir():
            raise UserError(f"{command}: {path / name} is a file; the board keeps a folder there "
                            "(move that file away)")
    return path


def _writing(command: str, board: Path, fn, *args, **kwargs):
    """fn(...), with a write the file system refuses (no permission, a full disk) as a usage
    error naming the board, not a traceback."""
    from clbench.errors import UserError, one_line

    try:
        return fn(*args, **kwargs)
    except OSError as e:
        raise UserError(f"{command}: cannot write under --board {board} ({one_line(e)}); give a "
                        "board folder you can write") from None


def cmd_build(args) -> int:
    from clbench.leaderboard.build import build

    board = _board_folder(args.board, "leaderboard build")
    problems = _writing("leaderboard build", board, build, board)
    if problems:
        for p in problems:
            _say(p)
        print("board not written: fix or remove the invalid submissions (a stale entry is rerun, "
              "not kept)", file=sys.stderr)
        return EXIT_INVALID
    print(f"wrote {board / 'README.md'} and {board / 'index.html'}")
    return 0


def cmd_register_base(args) -> int:
    import os

    import torch

    from clbench.leaderboard.register_base import register_base

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    register_base(args.model, device=args.device)
    return 0
