"""`clbench run` and `clbench analyze` (kept apart from cli.py to keep each short)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import yaml


def add_commands(sub) -> None:
    s = sub.add_parser(
        "run", help="learn a sequence with a method and score forgetting",
        description="Run METHOD on SEQUENCE: score every column before learning and after each "
                    "task (the accuracy matrix), record curves on the dev split, update geometry "
                    "and cost, and write OUT/result.json (also a leaderboard submission). "
                    "Example: clbench run --method es --sequence math-then-code --steps 5")
    s.add_argument("--method", help="method name (see `clbench list`); required unless --config "
                   "or --resume gives it")
    s.add_argument("--sequence", help="sequence name (see `clbench list`); required unless --config "
                   "or --resume gives it")
    s.add_argument("--model", help="'embedded' (default), a saved Hugging Face model folder, or a "
                   "hub name (already in the HF cache, or with HF_HUB_OFFLINE=0 to download it)")
    s.add_argument("--seed", type=int, help="run seed (default 0)")
    s.add_argument("--steps", type=int, help="update steps per task (default: the sequence's "
                   "budget.steps); a run with other steps is only a custom leaderboard entry")
    s.add_argument("--eval-every", type=int, help="steps between curve points (default: the "
                   "sequence's budget.eval_every)")
    s.add_argument("--eval-limit", type=int, help="score only the first N test items per column "
                   "(default: all; a limited run is a custom leaderboard entry)")
    s.add_argument("--curve-examples", type=int, help="dev items per column at each curve point "
                   "(default: the sequence's budget.dev_examples)")
    s.add_argument("--output", help="output folder (default runs/METHOD-SEQUENCE-seedSEED)")
    s.add_argument("--dtype", help="float32 (default), bfloat16 or float16")
    s.add_argument("--device", help="cpu (default), cuda or auto")
    s.add_argument("--data-dir", help="folder of local task data, one sub-folder per task "
                   "(sets CLBENCH_DATA_DIR; see README 'Full scale')")
    s.add_argument("--backend", help="population backend of ES-like methods: local (default: one "
                   "worker process per core), inprocess (the run's own model) or ray; a run setting "
                   "that changes no number (the sequence may choose one: the full-scale ones use inprocess)")
    s.add_argument("--workers", type=int, help="worker processes (local) or Ray actors (default 2)")
    s.add_argument("--ray-address", help="Ray cluster to join with --backend ray (sets RAY_ADDRESS; "
                   "default: RAY_ADDRESS, else a local cluster)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="method hyperparameter, e.g. --set sigma=0.01 (repeatable)")
    s.add_argument("--config", help="YAML file with run fields (method, sequence, seed, "
                   "method_config: {...}); flags override it")
    s.add_argument("--resume", metavar="OUT", help="continue the interrupted run in OUT with the "
                   "settings saved in OUT/config.json (give no other run flags; --data-dir and --ray-address are allowed)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("report", help="figures and an HTML page from one or more runs",
                       description="Write forgetting curves, drift and accuracy-matrix figures "
                                   "(PNG) and one self-contained report.html.")
    s.add_argument("runs", nargs="+", help="run folders holding result.json")
    s.add_argument("--output", help="folder for the figures (default: the first run's report/)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("analyze", help="update geometry between two checkpoints of one architecture",
                       description="Print drift (L2), sparsity (own dtype and bfloat16) by "
                                   "component and layer between BASE and TUNED model folders.")
    s.add_argument("base", help="base model folder, or 'embedded'")
    s.add_argument("tuned", help="tuned model folder, or a run's OUT folder (uses its checkpoint)")
    s.add_argument("--tau", type=_tau, default=1e-6,
                   help="|delta| <= tau counts as unchanged (default 1e-6)")
    s.set_defaults(func=cmd_analyze)


def _tau(text: str) -> float:
    """--tau as a finite, non-negative threshold: a NaN or negative one counts nothing as
    unchanged and prints a sparsity of 0 (or nan) as if it were measured."""
    import argparse
    import math

    try:
        tau = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(tau) or tau < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite threshold >= 0, e.g. 1e-6")
    return tau


def _method_fields(method_cls) -> str:
    return ", ".join(sorted(method_cls.Config.model_fields))


def build_config(args):
    """RunConfig from --config, flags and --set; every problem is a UserError."""
    from pydantic import ValidationError

    from clbench.config import split_legacy
    from clbench.errors import UserError, one_line
    from clbench.config import RunConfig, describe_validation_error
    from clbench.registry import Registry

    fields: dict = {}
    if args.config:
        try:
            fields = yaml.safe_load(Path(args.config).read_text()) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise UserError(f"--config: cannot read {args.config}: {one_line(e)}") from None
        if not isinstance(fields, dict):
            raise UserError(f"--config: {args.config} must hold a mapping of run fields")
    for key in ("method", "sequence", "model", "seed", "steps", "eval_every", "eval_limit", "curve_examples",
                "output", "dtype", "device", "backend", "workers"):
        if getattr(args, key) is not None:
            fields[key] = getattr(args, key)
    mc = fields.get("method_config") or {}
    if not isinstance(mc, dict):
        raise UserError(f"--config: method_config must be a mapping of hyperparameters, e.g. "
                        f"method_config: {{sigma: 0.01}}; got {mc!r}")
    bad_keys = [k for k in mc if not isinstance(k, str)]
    if bad_keys:  # a YAML key like `1:` would reach Config(**mc) as a TypeError
        raise UserError(f"--config: method_config keys are hyperparameter names; got {bad_keys[0]!r}")
    mc = dict(mc)
    for kv in args.set:
        k, v = kv.split("=", 1) if "=" in kv else ("", "")
        if not k.strip():
            raise UserError(f"--set {kv!r}: write KEY=VALUE, e.g. --set sigma=0.01")
        mc[k.strip()] = _set_value(kv, v)
    fields["method_config"] = mc
    for key in ("method", "sequence"):
        if not fields.get(key):
            raise UserError(f"--{key}: required; see `clbench list` for the names")
    fields.setdefault("output", f"runs/{fields['method']}-{fields['sequence']}-seed{fields.get('seed', 0)}")
    try:
        cfg = RunConfig(**fields)
        reg = Registry.load()
        method_cls = reg.method(cfg.method)
        # `--set backend=...`, `--set workers=N`: ES hyperparameters once, run settings now
        mc, legacy = split_legacy(cfg.method_config, method_cls.Config)
        if legacy:
            cfg = RunConfig(**{**legacy, **cfg.model_dump(exclude_unset=True), "method_config": mc})
    except ValidationError as e:
        raise UserError(describe_validation_error(e)) from None
    seq = reg.sequence(cfg.sequence)
    try:
        method_cls.Config(**split_legacy({**seq.method_config.get(cfg.method, {}), **cfg.method_config},
                                         method_cls.Config)[0])
    except ValidationError as e:
        raise UserError(describe_validation_error(e, where="method_config.") +
                        f" (allowed keys for {cfg.method}: {_method_fields(method_cls)})") from None
    return cfg


def _set_value(kv: str, text: str):
    """The value of --set KEY=VALUE, read as YAML (0.01, true, [1, 2]); a string that is
    not valid YAML (an unclosed bracket) is a usage error, not a traceback."""
    from clbench.errors import UserError

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserError(f"--set {kv!r}: the value is not valid YAML ({str(e).splitlines()[0]}); "
                        "quote it, e.g. --set 'key=\"[1\"'") from None


def cmd_run(args) -> int:
    import torch

    from clbench.atomic import write_json
    from clbench.progress import console
    from clbench.errors import UserError
    from clbench.runner import Runner

    if getattr(args, "data_dir", None):
        os.environ["CLBENCH_DATA_DIR"] = str(Path(args.data_dir).expanduser().resolve())
    if getattr(args, "ray_address", None):
        os.environ["RAY_ADDRESS"] = args.ray_address
    if args.resume:
        cfg, resume = _resume_config(args)
    else:
        cfg = build_config(args)
        from clbench.model import check_model

        check_model(cfg.model)  # a missing or broken model is an error before anything is written
        _check_resources(cfg)
        _check_data(cfg)
        _check_context(cfg)
        out = Path(cfg.output)
        if out.exists() and not out.is_dir():
            raise UserError(f"--output: {out} is a file; give a folder for the run")
        if out.exists() and any(out.iterdir()):
            raise UserError(f"--output: {out} is not empty; choose another folder, or continue "
                            f"an interrupted run with --resume {out}")
        try:
            write_json(out / "config.json", cfg.model_dump(mode="json"))
        except OSError as e:  # a parent that is a file, no permission, ...
            raise UserError(f"--output: cannot create {out} ({e.strerror}); give a folder "
                            "you can write") from None
        resume = False
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    con = console()
    result = Runner(cfg, console=con).run(resume=resume)
    _print_summary(con, result, cfg.output)
    return 0


# flags that set the run's config: on --resume the config is the folder's own
RUN_FLAGS = ("method", "sequence", "model", "seed", "steps", "eval_every", "eval_limit",
             "curve_examples", "output", "dtype", "device", "backend", "workers", "config", "set")


def _resume_config(args):
    """(the run's config, whether a checkpoint exists) of the folder given to --resume. The
    folder is the output wherever config.json says it was written: a moved run, or one
    resumed from another working directory, must not write into some other folder."""
    from clbench.checkpoint import Checkpointer
    from pydantic import ValidationError

    from clbench.config import RunConfig, describe_validation_error
    from clbench.errors import UserError, one_line

    given = [f"--{k.replace('_', '-')}" for k in RUN_FLAGS if getattr(args, k, None) not in (None, [])]
    if given:
        raise UserError(f"--resume continues a run with the config it started with; drop "
                        f"{', '.join(given)} (or start a new run in another folder)")
    folder = Path(args.resume)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise UserError(f"--resume: {args.resume} has no config.json; not a clbench run folder")
    try:
        cfg = RunConfig.model_validate(json.loads(cfg_path.read_text()))
    except ValidationError as e:
        raise UserError(f"--resume: {cfg_path} is not a run config ("
                        f"{describe_validation_error(e).replace(chr(10), '; ')}); start a new run "
                        "instead") from None
    except (OSError, ValueError) as e:  # JSON and UTF-8 errors are ValueErrors
        raise UserError(f"--resume: {cfg_path} is unreadable ({one_line(e)}); start a new run "
                        "instead") from None
    if (folder / "result.json").exists():
        raise UserError(f"--resume: {args.resume} already finished (result.json exists)")
    ckpt = Checkpointer(folder)
    if ckpt.exists():
        ckpt.check()
    # killed before its first checkpoint: nothing to keep, so it starts over in place
    return cfg.model_copy(update={"output": str(folder)}), ckpt.exists()


def _check_data(cfg) -> None:
    """Read every column's data and score one of its items now: missing data, a generator
    that repeats itself or a score() that returns no valid Score is exit 2 before anything
    is written, not a failure at the first curve point."""
    from clbench.registry import Registry

    reg = Registry.load()
    seq = reg.sequence(cfg.sequence)
    for name in seq.tasks + seq.probes:
        task = reg.task(name)
        first = task.split("test")[:1]
        task.scores(first, [""] * len(first))


def _check_resources(cfg) -> None:
    """A device or backend this machine lacks fails before config.json is written: a run
    folder left behind would refuse the corrected command ('not empty'), and --resume
    keeps the folder's own device."""
    from clbench.model import check_device

    check_device(cfg.device)
    if cfg.backend == "ray":
        from clbench.population_ray import require_ray

        require_ray()


def _check_context(cfg) -> None:
    """A model whose context cannot hold a task's longest test prompt plus its token budget
    would end in a library assertion mid-run: say so, with both numbers, before anything is
    written. Skipped for a hub name not on this machine (loading it says why)."""
    from transformers import AutoConfig, AutoTokenizer

    from clbench.errors import UserError
    from clbench.generation import task_prompts
    from clbench.model import resolve_model_path
    from clbench.registry import Registry

    path = resolve_model_path(cfg.model)
    try:
        config = AutoConfig.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError):
        return
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if not positions:
        return
    reg = Registry.load()
    seq = reg.sequence(cfg.sequence)
    for name in seq.tasks + seq.probes:
        task = reg.task(name)
        if task.kind != "generate":
            continue
        prompts = task_prompts(task, tokenizer, task.split("test"))
        ids = tokenizer(prompts, add_special_tokens=False)["input_ids"] if prompts else []
        longest = max(map(len, ids), default=0)
        if longest + task.max_new_tokens > positions:
            raise UserError(f"--model: {cfg.model} holds {positions} positions, but task {name!r} needs "
                            f"{longest + task.max_new_tokens} (its longest test prompt, {longest} tokens, "
                            f"plus max_new_tokens {task.max_new_tokens}); use a model with a longer "
                            "context or a sequence whose tasks fit it")


def _print_summary(con, result, out) -> None:
    from rich.table import Table

    m = result.matrix
    t = Table(title=f"{result.method.name} on {result.sequence.name}: accuracy matrix (test split, %)")
    t.add_column("after")
    for c in m.columns:
        t.add_column(c, justify="right")
    for name, row in zip(m.rows, m.values):
        t.add_row(name, *[f"{100 * v:.1f}" for v in row])
    con.print(t)
    s = result.summary

    def fmt(x):
        return "n/a" if x is None else f"{100 * x:+.1f}"

    con.print(f"ACC {100 * s.acc:.1f}  BWT {fmt(s.bwt)}  FWT {fmt(s.fwt)} (vs base)  "
              f"forgetting {fmt(s.forgetting)} (Chaudhry)  probes: "
              + ", ".join(f"{k} {fmt(v)}" for k, v in s.probe_delta.items()))
    last = list(result.geometry.values())[-1] if result.geometry else None
    if last is not None:
        con.print(f"drift L2 {last.drift_l2.overall:.3f}  sparsity(tau 1e-6) "
                  f"{100 * last.sparsity['1e-06'].overall:.1f}%  wall {result.cost.wall_seconds:.0f} s")
    b = result.budget  # both budget units, so methods compare at equal steps or equal samples
    con.print("budget: " + ", ".join(f"{t} {n} steps / {b.completions_per_task.get(t, 0)} completions"
                                     for t, n in b.steps_per_task.items())
              + f" (registered per task: {b.registered_steps} steps / {b.registered_completions} completions)")
    con.print(f"wrote {out}/result.json; figures: clbench report {out}")


def cmd_report(args) -> int:
    from pydantic import ValidationError

    from clbench.progress import console
    from clbench.errors import UserError
    from clbench.report import build_report

    for d in args.runs:
        if not (Path(d) / "result.json").is_file():
            raise UserError(f"report: {d} has no result.json (a finished run folder is needed)")
    out = Path(args.output) if args.output else Path(args.runs[0]) / "report"
    try:
        page = build_report([Path(d) for d in args.runs], out)
    except (ValidationError, ValueError) as e:
        raise UserError(f"report: a result.json is not a valid RunResult: {str(e)[:300]}") from None
    except OSError as e:  # an unreadable result.json, an --output below a file
        raise UserError(f"report: {e.filename}: {e.strerror}; give readable run folders and a "
                        "writable --output folder") from None
    console().print(f"wrote {page}")
    return 0


def cmd_analyze(args) -> int:
    from rich.table import Table

    from clbench import geometry
    from clbench.progress import console
    from clbench.errors import UserError
    from clbench.model import load_model

    def weights(path: str) -> dict:
        ck = Path(path) / "checkpoint" / "weights.safetensors"
        if ck.exists():
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            try:
                return load_file(str(ck))
            except (OSError, SafetensorError) as e:
                raise UserError(f"analyze: {ck} is not readable safetensors ({e}); give a model "
                                "folder or a run folder with an intact checkpoint") from None
        return {n: p.detach() for n, p in load_model(path).model.named_parameters()}

    base, tuned = weights(args.base), weights(args.tuned)
    reshaped = [n for n in base if n in tuned and base[n].shape != tuned[n].shape]
    if set(base) != set(tuned) or reshaped:
        raise UserError("analyze: the two models have different parameters"
                        + (f" ({reshaped[0]}: {tuple(base[reshaped[0]].shape)} vs "
                           f"{tuple(tuned[reshaped[0]].shape)})" if reshaped else "")
                        + "; same architecture needed")
    rep = geometry.geometry_report(base, tuned, taus=(args.tau,))
    con = console()
    key = f"{args.tau:g}"
    con.print(f"drift L2 {rep['drift_l2']['overall']:.6f}   sparsity {100 * rep['sparsity'][key]['overall']:.2f}%"
              f"   sparsity in bfloat16 {100 * rep['sparsity_bf16'][key]['overall']:.2f}%")
    t = Table(title="by component")
    for c in ("component", "drift L2", "sparsity %", "sparsity bf16 %"):
        t.add_column(c)
    for comp, sp in rep["sparsity"][key]["by_component"].items():
        t.add_row(comp, f"{rep['drift_l2']['by_component'].get(comp, 0.0):.4f}", f"{100 * sp:.2f}",
                  f"{100 * rep['sparsity_bf16'][key]['by_component'][comp]:.2f}")
    con.print(t)
    t = Table(title="by layer")
    for c in ("layer", "drift L2", "sparsity %"):
        t.add_column(c)
    for layer, sp in rep["sparsity"][key]["by_layer"].items():
        t.add_row(layer, f"{rep['drift_l2']['by_layer'].get(layer, 0.0):.4f}", f"{100 * sp:.2f}")
    con.print(t)
    return 0
