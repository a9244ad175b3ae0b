"""`clbench`: the command line. The only module that reads the environment.

Bad input (an unknown name, a bad value, a bad file) is one line naming the
field and the fix, exit code 2, no traceback, and nothing written.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

EXIT_USAGE = 2


from clbench.atomic import existing_ancestor  # noqa: E402
from clbench.errors import UserError  # noqa: E402  (re-exported for plugins)
from clbench.progress import console  # noqa: E402


def _offline_defaults() -> None:
    # The default path never touches a hub; a user who wants one unsets these.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # lm-eval's and HF's bars; ours are rich's
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="lm_eval")


# ----------------------------------------------------------------------------- list
def cmd_list(args) -> int:
    from rich.table import Table

    from clbench.registry import Registry

    reg = Registry.load()
    con = console()
    t = Table(title="methods")
    for col in ("name", "needs", "origin"):
        t.add_column(col)
    for name, e in sorted(reg.methods.items()):
        t.add_row(name, ", ".join(sorted(e.obj.needs)) or "-", e.origin)
    con.print(t)
    t = Table(title="tasks")
    for col in ("name", "role", "kind", "version", "description", "origin"):
        t.add_column(col)
    for name, e in sorted(reg.tasks.items()):
        f = e.obj
        t.add_row(name, f.role, f.kind, str(f.version), f.description, e.origin)
    con.print(t)
    t = Table(title="sequences")
    for col in ("name", "tasks", "probes", "steps/task", "origin"):
        t.add_column(col)
    for name, e in sorted(reg.sequences.items()):
        s = e.obj
        t.add_row(name, " -> ".join(s.tasks), ", ".join(s.probes), str(s.budget.steps), e.origin)
    con.print(t)
    return 0


# ----------------------------------------------------------------------------- eval
def _eval_task_names(args) -> list[str]:
    from clbench.registry import Registry

    reg = Registry.load()
    if bool(args.sequence) == bool(args.tasks):
        raise UserError("eval: give exactly one of --sequence NAME or --tasks a,b")
    if args.sequence:
        seq = reg.sequence(args.sequence)
        return seq.tasks + seq.probes
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not names:
        raise UserError("--tasks: empty list; give comma-separated task names (see `clbench list`)")
    for n in names:
        if n not in reg.tasks and not args.allow_lm_eval:
            reg.task(n)  # raises UnknownName listing the known ones
    return names


def cmd_eval(args) -> int:
    import time

    import torch
    from rich.table import Table

    from clbench.atomic import write_json
    from clbench.harness import Harness
    from clbench.model import load_model, weights_fingerprint

    names = _eval_task_names(args)
    if args.output:
        _check_output_file(args.output)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    lm = load_model(args.model, dtype=args.dtype, device=args.device)
    start = time.time()
    scores = Harness(lm.model, lm.tokenizer).score(names, split=args.split, limit=args.limit)
    seconds = time.time() - start
    table = Table(title=f"{lm.name}: {args.split} split" + (f", first {args.limit}" if args.limit else ""))
    table.add_column("task")
    table.add_column("accuracy", justify="right")
    for n in names:
        table.add_row(n, f"{100 * scores[n]:.1f}%")
    con = console()
    con.print(table)
    con.print(f"scored in {seconds:.1f} s")
    if args.output:
        write_json(args.output, {"model": lm.name, "model_fingerprint": weights_fingerprint(lm.model),
                                 "split": args.split, "limit": args.limit, "scores": scores,
                                 "seconds": round(seconds, 2)})
        con.print(f"wrote {args.output}")
    return 0


def _check_output_file(path: str) -> None:
    """--output must be a file that can be written, known before the model is scored:
    a folder, or a path below a file, used to fail only after all the scoring work."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"--output: {path} is a folder; give a file name like scores.json")
    parent = existing_ancestor(p)
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UserError(f"--output: cannot write {path} ({parent} is not a writable folder); "
                        "give a file name in a folder you can write")


# ----------------------------------------------------------------------------- pretrain
def _check_model_output(output: Path) -> None:
    """pretrain-base replaces its output folder whole once training ends: refuse, before
    minutes of training, a file there, a folder that is not a model (its files would be
    lost), or a parent that cannot hold a folder."""
    if output.exists() and not output.is_dir():
        raise UserError(f"--output: {output} is a file; give a folder for the model")
    if output.is_dir() and any(output.iterdir()) and not (output / "pretrain_recipe.json").is_file():
        raise UserError(f"--output: {output} is a non-empty folder that holds no pretrained model "
                        "(no pretrain_recipe.json); give a new folder, or one pretrain-base wrote")
    above = existing_ancestor(output)
    if not above.is_dir():
        raise UserError(f"--output: cannot create {output}: {above} is a file; give a folder path")


def cmd_pretrain(args) -> int:
    import torch

    from pydantic import ValidationError

    from clbench.config import describe_validation_error
    from clbench.model import EMBEDDED_DIR
    from clbench.pretrain import pretrain
    from clbench.recipe import DEFAULT_RECIPE, load_recipe

    recipe = load_recipe(args.recipe or DEFAULT_RECIPE)
    flags = {k: getattr(args, k) for k in ("steps", "batch_size", "lr", "seed") if getattr(args, k) is not None}
    try:
        recipe = recipe.model_validate({**recipe.model_dump(), **flags})
    except ValidationError as e:
        raise UserError(describe_validation_error(e, "--")) from None
    output = Path(args.output) if args.output else EMBEDDED_DIR
    if args.output:
        _check_model_output(output)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    console().print(pretrain(recipe, output=output))
    return 0


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clbench",
        description="Continual-learning benchmark for LLM post-training: how much does a "
                    "method forget while it learns? Start with `clbench list`, then "
                    "`clbench run --method es --sequence math-then-code`.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("list", help="show methods, tasks and sequences with their origin",
                       description="List every registered method (with what it needs from the runner), "
                                   "task (role, kind, version) and sequence (tasks, probes, steps per "
                                   "task), each with the package it came from. Method hyperparameters "
                                   "are not listed: a bad `clbench run --set KEY=...` names them.")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("eval", help="score a model on a sequence's columns or on named tasks",
                       description="Score a model through the lm-eval harness and print a table.")
    s.add_argument("--model", default="embedded",
                   help="'embedded' (the shipped tiny model, default), a saved Hugging Face model "
                        "folder, or a hub name (already in the HF cache, or with HF_HUB_OFFLINE=0 "
                        "to download it)")
    s.add_argument("--sequence", help="score every task and probe of this sequence "
                   "(give exactly one of --sequence and --tasks)")
    s.add_argument("--tasks", help="comma-separated task names (ours, see `clbench list`)")
    s.add_argument("--split", default="test", choices=["dev", "test"],
                   help="test for reported numbers (default), dev for tuning")
    s.add_argument("--limit", type=_positive_int, default=None,
                   help="score only the first N items of each task (quick checks; default: all)")
    s.add_argument("--output", help="write {model, scores, ...} to this JSON file")
    s.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="weight dtype the model is loaded in (default float32)")
    s.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                   help="where the model runs; auto = cuda when available (default cpu)")
    s.add_argument("--allow-lm-eval", action="store_true",
                   help="allow names of lm-eval's own tasks in --tasks (full scale)")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("pretrain-base", help="reproduce the embedded base model from a recipe",
                       description="Pretrain the embedded tiny model on a recipe's mixture (a YAML "
                                   "file: optimizer settings and each task family's share, split "
                                   "among its pretraining variants). The flags below override the "
                                   "recipe's values.")
    s.add_argument("--recipe", help="recipe YAML (default: clbench/assets/recipes/latent.yaml, "
                   "which reproduces the shipped model)")
    s.add_argument("--steps", type=_positive_int, default=None, help="optimizer steps (recipe: 1500)")
    s.add_argument("--batch-size", type=_positive_int, default=None, help="sequences per step (recipe: 128)")
    s.add_argument("--lr", type=float, default=None, help="peak AdamW learning rate (recipe: 3e-3)")
    s.add_argument("--seed", type=int, default=None,
                   help="seeds the initial weights and the mixture's item stream (recipe: 0)")
    s.add_argument("--output", help="model folder (default: the shipped clbench/assets/tiny-llama); replaced whole, so it must be new or one pretrain-base wrote")
    s.set_defaults(func=cmd_pretrain)

    from clbench import cli_run  # the run/analyze commands live in their own module

    cli_run.add_commands(sub)
    from clbench import cli_leaderboard  # submit, leaderboard validate/build/register-base

    cli_leaderboard.add_commands(sub)
    return p


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return v


def main(argv: list[str] | None = None) -> int:
    _offline_defaults()
    from pydantic import ValidationError

    from clbench.config import describe_validation_error
    from clbench.model import ModelNotFound
    from clbench.registry import UnknownName

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (UserError, UnknownName, ModelNotFound) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ValidationError as e:
        print(f"error: {describe_validation_error(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted; resume with `clbench run --resume OUT`", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
