"""Re-run a submission from what it records and compare: a lie no check on the file can see.

Why: a copy of a valid entry with its rows raised (summary recomputed), its seed
relabelled, its method renamed, its cost counts shrunk or its curve smoothed still
validates. On CPU a clbench run is a pure function of its config and seed, so the
board can do what the Open LLM Leaderboard does and run the evaluation itself: this
module re-runs the entry's method (name, version, config), sequence, seed, model and
budget with the installed code and compares every number the run determines: matrix,
summary, curves, geometry, token/completion/member counts and the identity fields.
Wall time, peak memory and the environment are machine facts, not compared (the board
marks them unverified).

Verdicts: "verified" (identical), "differs" (the first difference in each section; believed only when
this machine runs the entry's own git commit with its python, torch, transformers,
lm_eval, device and CPU kind, otherwise "not reproducible here" with the reason), "cannot re-run"
(invalid entry, method not installed or at another version, a device this machine lacks).
"""
from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from clbench.results import RunResult

NOT_COMPARED = {("cost", "wall_seconds"), ("cost", "peak_rss_bytes"), ("cost", "peak_rss_children_bytes"),
                ("cost", "peak_gpu_bytes")}
SKIPPED_TOP = {"environment", "custom"}  # machine facts; `custom` is the submitter's label
OPTIONAL = {("budget", "eval_every"),  # fields entries may predate: absent in one is no lie
            ("population_backend", "population_backend")}  # a gradient method's older entry
# a difference is believed only where all of these match: matrix kernels may round
# differently on another CPU kind (runinfo.cpu_identity), and an entry that predates `cpu` cannot say
ENV_KEYS = ("git_commit", "python", "torch", "transformers", "lm_eval", "device", "cpu")


@dataclass
class Outcome:
    verdict: str          # "verified", "differs", "not reproducible here", "cannot re-run"
    detail: str = ""
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return {"verified": 0, "differs": 1}.get(self.verdict, 2)


def entry_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_args(r: RunResult, registry) -> list[str]:
    """`clbench run` arguments that repeat the entry: its method config in full (so a
    change of defaults since cannot change the re-run), its seed, model and budget."""
    seq = registry.sequence(r.sequence.name)
    steps = set(r.budget.steps_per_task.values())
    if len(steps) != 1:
        raise ValueError(f"budget.steps_per_task: {r.budget.steps_per_task} differ by task; a run "
                         "gives every task the same steps")
    args = ["--method", r.method.name, "--sequence", r.sequence.name, "--seed", str(r.seed),
            "--model", r.model.name, "--dtype", r.model.dtype, "--steps", str(steps.pop()),
            "--curve-examples", str(r.budget.curve_examples)]
    if r.budget.eval_every is not None:
        args += ["--eval-every", str(r.budget.eval_every)]
    sizes = {c: len(registry.task(c).split("test")) for c in seq.tasks + seq.probes}
    limits = {n for c, n in r.budget.examples_per_column.items() if n < sizes.get(c, n)}
    if limits:
        args += ["--eval-limit", str(max(r.budget.examples_per_column.values()))]
    config, settings = population_settings(r.method.config, r.population_backend, registry, r.method.name)
    for key, value in settings.items():
        args += [f"--{key}", str(value)]
    for key, value in config.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    return args


def population_settings(config: dict, backend, registry, method: str) -> tuple[dict, dict]:
    """(the method config, {backend, workers}) of an entry: from `population_backend`, or
    from the method config of an entry recorded before the field (clbench.backends)."""
    from clbench.config import split_legacy

    try:
        cls = registry.method(method).Config
    except Exception:  # not installed: nothing is a hyperparameter we know
        cls = None
    config, legacy = split_legacy(config, cls)
    if backend is not None:
        legacy = {"backend": backend.name, "workers": backend.workers}
    return config, legacy


def with_population_settings(doc: dict, registry) -> dict:
    """The entry as a run at the installed code records it: settings that an older entry
    carries in its method config moved to `population_backend` (no number changes)."""
    r = doc["method"]
    config, settings = population_settings(r["config"], None, registry, r["name"])
    if doc.get("population_backend") is None and settings:
        doc = copy.deepcopy(doc)
        doc["method"]["config"] = config
        settings = {"backend": "local", "workers": 2, **settings}  # the defaults they had
        doc["population_backend"] = {"name": settings["backend"], "workers": settings["workers"]}
    return doc


def first_difference(a, b, path: str = "") -> str | None:
    """The first field where the entry (a) and the re-run (b) differ, as 'path: a vs b'."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            top = path.split(".")[0] if path else k
            if not path and k in SKIPPED_TOP or (top, k) in NOT_COMPARED:
                continue
            if k not in a and (top, k) in OPTIONAL:  # an entry recorded before the field existed
                continue
            if k not in a:
                return f"{path + '.' if path else ''}{k}: in the re-run, not in the entry"
            if k not in b:
                return f"{path + '.' if path else ''}{k}: in the entry, not in the re-run"
            d = first_difference(a[k], b[k], f"{path + '.' if path else ''}{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items in the entry, {len(b)} in the re-run"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if a != b or type(a) is not type(b):
        return f"{path}: {a!r:.80} in the entry, {b!r:.80} in the re-run"
    return None


def differences(a: dict, b: dict) -> list[str]:
    """The first difference in each top-level section (matrix, summary, curves, geometry,
    cost, ...), so a report shows every section a re-run disagrees with, not just one."""
    out = []
    for k in list(a) + [k for k in b if k not in a]:
        d = first_difference({k: a[k]} if k in a else {}, {k: b[k]} if k in b else {})
        if d:
            out.append(d)
    return out


def fields_the_entry_predates(entry_config: dict, rerun_config: dict, defaults: dict) -> dict:
    """Method config fields the re-run records and the entry lacks, where the re-run holds the
    installed default: a field added to the method after the entry was made, at the value
    that keeps its old behaviour. Any other missing field is left to be reported; and the
    numbers are compared in full either way, so a default that changed behaviour shows."""
    return {k: v for k, v in rerun_config.items()
            if k not in entry_config and k in defaults and defaults[k] == v}


def environment_mismatch(r: RunResult) -> list[str]:
    """Why a difference here would not show the entry is false (empty: same commit and stack)."""
    from clbench.runinfo import environment

    here = environment(r.environment.device)
    ours = r.environment.model_dump()
    return [f"{k} not recorded in the entry, {here[k]} here" if ours[k] is None
            else f"{k} {ours[k]} in the entry, {here[k]} here" for k in ENV_KEYS if ours[k] != here[k]]


def rerun(r: RunResult, registry, work: Path) -> tuple[dict | None, str]:
    """(the re-run's result as a dict, or None, and the failure text) in folder `work`."""
    out = work / "rerun"
    cmd = [sys.executable, "-m", "clbench", "run", *run_args(r, registry), "--output", str(out)]
    if r.environment.device != "cpu":
        cmd += ["--device", r.environment.device]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return None, (p.stderr.strip().splitlines() or ["(no message)"])[-1][:300]
    return json.loads((out / "result.json").read_text()), ""


def verify_file(path: Path, registry=None, work: Path | None = None, cache: dict | None = None) -> Outcome:
    """Re-run one submission and compare. `cache` (run arguments -> re-run result) lets
    several files with the same settings share one re-run."""
    from clbench.leaderboard.validate import method_deviations, validate_file
    from clbench.registry import Registry

    registry = registry or Registry.load()
    v = validate_file(path, registry)
    if not v.ok:
        return Outcome("cannot re-run", f"not a valid entry ({v.problems[0]})")
    r = v.result
    unknown = method_deviations(r, registry)  # a custom entry may pass validation with them
    if unknown:
        return Outcome("cannot re-run", f"its method is not installed here as recorded ({unknown[0]})")
    if r.environment.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return Outcome("cannot re-run", f"the entry ran on {r.environment.device}; this machine has no GPU")
    try:
        key = tuple(run_args(r, registry)) + (r.environment.device,)
    except ValueError as e:
        return Outcome("cannot re-run", str(e))
    start = time.monotonic()
    if cache is not None and key in cache:
        fresh, why = cache[key], ""
    else:
        with tempfile.TemporaryDirectory(prefix="clbench-verify-") as tmp:
            fresh, why = rerun(r, registry, Path(work or tmp))
        if cache is not None and fresh is not None:
            cache[key] = fresh
    seconds = time.monotonic() - start
    if fresh is None:
        return Outcome("cannot re-run", f"the re-run failed: {why}", seconds)
    try:
        defaults = registry.method(r.method.name).Config().model_dump(mode="json")
    except ValueError:  # a plugin Config with required fields has no defaults to fill in
        defaults = {}
    entry = with_population_settings(copy.deepcopy(v.doc), registry)
    entry["method"]["config"].update(fields_the_entry_predates(entry["method"]["config"],
                                                               fresh["method"]["config"], defaults))
    diffs = differences(entry, fresh)
    diff = "; ".join(diffs)
    if not diffs:
        return Outcome("verified", "matrix, summary, curves, geometry and counts are identical", seconds)
    mismatch = environment_mismatch(r)
    if mismatch:
        return Outcome("not reproducible here", f"{diff}; but {'; '.join(mismatch)}", seconds)
    return Outcome("differs", diff, seconds)


def record(path: Path, outcome: Outcome, board: Path) -> Path:
    """A verification record in BOARD/verified/ (never beside the submissions, where it would
    be read as one), bound to the entry's bytes by their sha256."""
    from datetime import datetime, timezone

    from clbench.atomic import write_json
    from clbench.runinfo import environment

    doc = {"entry": Path(path).name, "sha256": entry_sha256(path), "verdict": outcome.verdict,
           "detail": outcome.detail, "rerun_seconds": round(outcome.seconds, 1),
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "environment": environment("cpu")}
    dest = board / "verified" / f"{Path(path).stem}.json"
    write_json(dest, doc)
    return dest


def verified_entries(board: Path) -> set[str]:
    """sha256 of every entry a record says was re-run bit for bit."""
    out = set()
    for f in sorted((board / "verified").glob("*.json")):
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("verdict") == "verified" and isinstance(doc.get("sha256"), str):
            out.add(doc["sha256"])
    return out
