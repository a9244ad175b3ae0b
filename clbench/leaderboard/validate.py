"""Is a RunResult file a fair leaderboard entry? One line per problem, naming the field.

Order: size and strict JSON (parse.py), then the RunResult schema in strict mode
(no "0.5" for 0.5), then the checks no schema can make: against the registry
(sequence fingerprint, shape, task versions, budget, full test splits, base model
and its registered row 0) and against itself (summary recomputed from the matrix).
Departures from the registered budget or evaluation, or a sequence without a
registered base model, are accepted only when the entry is marked `custom` with
a reason; such entries are ranked apart.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from clbench import metrics
from clbench.leaderboard.parse import ParseError, huge_integers, load_bytes, load_file, non_finite
from clbench.leaderboard.registered import load_base_scores
from clbench.results import SCHEMA_VERSION, RunResult, is_curve_step

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # in file names; fullmatch ("$" allows "es\n")
SUMMARY_TOL = 1e-9  # recomputation is the same float arithmetic; only JSON round-off remains
GRAIN_TOL = 1e-6   # score * items is an integer up to float round-off
ROW0_TOL = 1e-9     # row 0 is greedy, deterministic scoring of fixed weights on fixed items
PARTS_TOL = 1e-9    # relative: an L2 norm against the norm of its parts (float64 pools)
KL_TOL = 1e-6       # a KL divergence is >= 0; float round-off may put a KL of ~0 just below
DTYPES = ("float32", "bfloat16", "float16")  # what `clbench run --dtype` accepts
MAX_REASON = 200    # a custom reason is one line of the board's README


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)     # "field: message", each fatal
    deviations: list[str] = field(default_factory=list)   # accepted only in custom entries
    result: RunResult | None = None
    doc: dict | None = None                                # the parsed JSON, for submit

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def custom(self) -> str | None:
        return self.result.custom if self.result is not None else None


def validate_file(path: str | Path, registry=None, base_scores: dict | None = None) -> Verdict:
    try:
        doc = load_file(path)
    except ParseError as e:
        return Verdict([f"file: {e}"])
    return validate_doc(doc, registry, base_scores)


def validate_bytes(data: bytes, registry=None, base_scores: dict | None = None) -> Verdict:
    try:
        doc = load_bytes(data)
    except ParseError as e:
        return Verdict([f"file: {e}"])
    return validate_doc(doc, registry, base_scores)


def validate_doc(doc, registry=None, base_scores: dict | None = None) -> Verdict:
    if not isinstance(doc, dict):
        return Verdict([f"(root): a JSON object is needed, not {type(doc).__name__}"])
    bad = non_finite(doc)
    if bad:
        return Verdict([f"{p[2:]}: NaN or infinite number; scores must be finite" for p in bad], doc=doc)
    huge = huge_integers(doc)
    if huge:
        return Verdict([f"{p[2:]}: integer beyond 64 bits" for p in huge], doc=doc)
    try:
        r = RunResult.model_validate(doc, strict=True)
    except ValidationError as e:
        return Verdict([f"{'.'.join(str(x) for x in err['loc']) or '(root)'}: {err['msg']}"
                        for err in e.errors()], doc=doc)
    if registry is None:
        from clbench.registry import Registry

        registry = Registry.load()
    base_scores = load_base_scores() if base_scores is None else base_scores
    v = Verdict(result=r, doc=doc)
    _check(r, registry, base_scores, v)
    if r.custom is not None and not r.custom.strip():
        v.problems.append("custom: empty reason; say why the entry departs from the registered setup")
    elif r.custom is not None and not reason_fits(r.custom):
        v.problems.append(f"custom: {r.custom[:60]!r} is shown on the board; give one line of "
                          f"printable text, at most {MAX_REASON} characters")
    if r.custom is None and v.deviations:
        v.problems += [f"{d} (accepted only as a custom entry: clbench submit --custom REASON)"
                       for d in v.deviations]
    return v


def reason_fits(text: str) -> bool:
    """The board renders a custom reason as Markdown: a newline or a control character
    would let it add headings, table rows or terminal escapes of its own."""
    return len(text) <= MAX_REASON and text.isprintable()


def _check(r: RunResult, reg, base_scores: dict, v: Verdict) -> None:
    P = v.problems.append
    if r.schema_version != SCHEMA_VERSION:
        P(f"schema_version: {r.schema_version}; this clbench reads version {SCHEMA_VERSION}")
    _check_environment(r, P)
    if not NAME.fullmatch(r.method.name):
        P(f"method.name: {r.method.name!r} is not a kebab-case registry name (a-z, 0-9, '-', '.', '_')")
    else:  # a standard entry's method is installed; anything else is custom only
        v.deviations += method_deviations(r, reg)
    if r.sequence.name not in reg.sequences:
        P(f"sequence.name: unknown sequence {r.sequence.name!r}; known: {', '.join(sorted(reg.sequences))}")
        return
    seq = reg.sequence(r.sequence.name)
    if not _check_sequence(r, seq, reg, P):
        return  # a different sequence: shape and budget checks would only repeat it
    if _check_matrix(r, seq, P):
        _check_granularity(r, reg, P)
        _check_summary(r, seq, P)
        _check_base(r, seq, reg, base_scores, P, v.deviations.append)
    _check_budget(r, seq, reg, P, v.deviations.append)
    _check_curves(r, seq, P)
    _check_curve_schedule(r, seq, P)
    _check_curve_granularity(r, reg, P)
    _check_geometry(r, seq, P)
    _check_counts(r, P)


def method_deviations(r, reg) -> list[str]:
    """Why the entry's method is not one the installed registry can attribute its numbers to
    (or re-run): an unknown name, another version, a config its Config rejects. Empty: it is."""
    m = r.method
    if m.name not in reg.methods:
        known = ", ".join(sorted(reg.methods)) or "(none)"
        return [f"method.name: {m.name!r} is not an installed method (known: {known}); install "
                "its plugin package"]
    cls, out = reg.method(m.name), []
    if m.version != cls.version:
        out.append(f"method.version: {m.version}; the installed {m.name} is version {cls.version}")
    from clbench.config import split_legacy
    from clbench.results import PopulationBackend

    # `backend` and `workers` in an older entry's config are run settings, not hyperparameters
    hyper, settings = split_legacy(m.config, cls.Config)
    try:
        cls.Config.model_validate(hyper, strict=True)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "(root)"
        out.append(f"method.config.{where}: {err['msg']} (under {m.name}'s Config)")
    if settings and r.population_backend is not None:
        out.append(f"method.config.{next(iter(settings))}: a run setting, recorded in "
                   "population_backend; an entry carries it in one place")
    try:
        PopulationBackend.model_validate({"name": settings.get("backend", "local"),
                                          "workers": settings.get("workers", 1)}, strict=True)
    except ValidationError as e:
        err = e.errors()[0]
        key = {"name": "backend"}.get(str(err["loc"][0]), str(err["loc"][0]))
        out.append(f"method.config.{key}: {err['msg']} (a run setting: --{key})")
    return out


def _check_sequence(r, seq, reg, P) -> bool:
    from clbench.runinfo import sequence_fingerprint

    ok = True
    if r.sequence.tasks != seq.tasks:
        ok = False
        P(f"sequence.tasks: {r.sequence.tasks} differs from the registered {seq.tasks}")
    if r.sequence.probes != seq.probes:
        ok = False
        P(f"sequence.probes: {r.sequence.probes} differs from the registered {seq.probes}")
    try:
        expected = sequence_fingerprint(seq, reg)
    except Exception as e:  # full-scale data not on this machine: say so, never crash
        P(f"sequence.fingerprint: cannot compute {seq.name}'s registered fingerprint here ({e})")
        return ok
    if r.sequence.fingerprint != expected:
        P(f"sequence.fingerprint: {r.sequence.fingerprint} does not match the registered "
          f"{r.sequence.name} ({expected}); its spec or generated data differ from this clbench")
    versions = {c: reg.task(c).version for c in seq.tasks + seq.probes}
    if r.sequence.task_versions != versions:
        P(f"sequence.task_versions: {r.sequence.task_versions} differs from the registered {versions}")
    return ok


def _check_matrix(r, seq, P) -> bool:
    m, ok = r.matrix, True
    if m.rows != ["base"] + seq.tasks:
        ok = False
        P(f"matrix.rows: {m.rows}; expected {['base'] + seq.tasks}")
    if m.columns != seq.tasks + seq.probes:
        ok = False
        P(f"matrix.columns: {m.columns}; expected {seq.tasks + seq.probes}")
    try:
        metrics.validate(m.values, seq.tasks, seq.probes)
    except ValueError as e:
        ok = False
        P(f"matrix.values: {e}")
    return ok


def _check_granularity(r, reg, P) -> None:
    """A score of our own task is correct answers / items scored, so times the items it is
    a whole number: 0.7312 on 200 items is an edited number, not a run's."""
    from clbench.lm_eval_probe import LmEvalProbe

    for j, col in enumerate(r.matrix.columns):
        n = r.budget.examples_per_column.get(col)
        if not n or isinstance(reg.task(col), LmEvalProbe):  # n < 1: refused by the schema; lm-eval's metric
            continue
        for i, row in enumerate(r.matrix.values):
            if not _whole_count(row[j], n):
                P(f"matrix.values[{i}][{j}]: {col} = {row[j]} is not a whole number of correct "
                  f"answers out of the {n} scored (budget.examples_per_column.{col})")


def _whole_count(score: float, n: int) -> bool:
    return abs(score * n - round(score * n)) <= GRAIN_TOL


def _check_curve_granularity(r, reg, P) -> None:
    """A curve point scores a generated task's first min(curve_examples, dev size) dev
    items, so its scores are whole counts of those too: an edited learning curve is not
    a run's. Data-file tasks (dev size set by the data) and lm-eval probes are skipped."""
    from clbench.data_files import DatasetFamily
    from clbench.lm_eval_probe import LmEvalProbe

    sizes = {}
    for col in r.matrix.columns:
        fam = reg.task(col) if col in reg.tasks else None
        if fam is not None and not isinstance(fam, (LmEvalProbe, DatasetFamily)):
            sizes[col] = min(r.budget.curve_examples, fam.split_sizes["dev"])
    for i, c in enumerate(r.curves):
        for col, x in c.scores.items():
            n = sizes.get(col)
            if n and 0.0 <= x <= 1.0 and not _whole_count(x, n):
                P(f"curves[{i}].scores.{col}: {x} is not a whole number of correct answers out of "
                  f"the {n} dev items a curve point scores (budget.curve_examples {r.budget.curve_examples})")


def _close(a, b, tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=0, abs_tol=tol)


def _check_summary(r, seq, P) -> None:
    want = metrics.summarize(r.matrix.values, seq.tasks, seq.probes)
    got = r.summary.model_dump()
    for k in ("acc", "bwt", "fwt", "forgetting", "forgetting_avalanche"):
        if not _close(got[k], want[k], SUMMARY_TOL):
            P(f"summary.{k}: {got[k]} does not match {want[k]} recomputed from matrix.values")
    if set(got["probe_delta"]) != set(want["probe_delta"]):
        P(f"summary.probe_delta: keys {sorted(got['probe_delta'])}; expected {sorted(want['probe_delta'])}")
    else:
        for k, x in want["probe_delta"].items():
            if not _close(got["probe_delta"][k], x, SUMMARY_TOL):
                P(f"summary.probe_delta.{k}: {got['probe_delta'][k]} does not match {x} "
                  "recomputed from matrix.values")


def _test_size(reg, name: str) -> int | None:
    try:
        return len(reg.task(name).split("test"))
    except Exception:  # data not on this machine (full scale): size unknown, not checked
        return None


def _check_base(r, seq, reg, base_scores, P, D) -> None:
    if seq.base_model_fingerprint is None:
        D(f"model.fingerprint: sequence {seq.name} registers no base model, so its row 0 "
          "cannot be checked")
        return
    if r.model.fingerprint != seq.base_model_fingerprint:
        P(f"model.fingerprint: {r.model.fingerprint} is not the base model {seq.name} names "
          f"({seq.model}, {seq.base_model_fingerprint})")
        return
    if r.model.name != seq.model:  # the board shows the name: the fingerprint's, not a label of choice
        P(f"model.name: {r.model.name!r} is not {seq.model!r}, the model of fingerprint "
          f"{seq.base_model_fingerprint} that {seq.name} names")
    entry = base_scores.get(r.model.fingerprint)
    if entry is None:
        P(f"model.fingerprint: no registered base scores for {r.model.fingerprint} "
          "(run `clbench leaderboard register-base`)")
        return
    if entry.get("dtype") and r.model.dtype != entry["dtype"]:
        D(f"model.dtype: {r.model.dtype}; {seq.name}'s base is registered and compared in "
          f"{entry['dtype']} (--dtype {entry['dtype']})")
    for j, col in enumerate(r.matrix.columns):
        reg_col = entry["columns"].get(col)
        if reg_col is None:  # e.g. a plugin's task on the embedded base: unchecked, so custom only
            D(f"matrix.values[0][{j}]: no registered base score for column {col!r}, so row 0 "
              "cannot be checked")
        elif r.budget.examples_per_column.get(col) == reg_col["examples"] and r.budget.eval_split == "test":
            if not _close(r.matrix.values[0][j], reg_col["score"], ROW0_TOL):
                P(f"matrix.values[0][{j}]: row 0 {col} = {r.matrix.values[0][j]} differs from the "
                  f"registered base score {reg_col['score']}")


def _check_budget(r, seq, reg, P, D) -> None:
    b, reg_b = r.budget, seq.budget
    if b.registered_steps != reg_b.steps:
        P(f"budget.registered_steps: {b.registered_steps}; the sequence registers {reg_b.steps}")
    if b.registered_completions != reg_b.completions:
        P(f"budget.registered_completions: {b.registered_completions}; the sequence registers "
          f"{reg_b.completions}")
    if set(b.steps_per_task) != set(seq.tasks):
        P(f"budget.steps_per_task: keys {sorted(b.steps_per_task)}; expected {sorted(seq.tasks)}")
    for t, n in b.steps_per_task.items():
        if n != reg_b.steps:
            D(f"budget.steps_per_task.{t}: {n} steps; the sequence's budget is {reg_b.steps}")
    unreported = [t for t in seq.tasks if b.steps_per_task.get(t, 0) > 0 and t not in b.completions_per_task]
    if unreported:  # the runner counts every step, so a missing key hides what was spent
        P(f"budget.completions_per_task: no count for trained task(s) {unreported}")
    for t, n in b.completions_per_task.items():
        if t not in seq.tasks:
            P(f"budget.completions_per_task.{t}: not a task of {seq.name}")
        elif n > reg_b.completions:
            D(f"budget.completions_per_task.{t}: {n} completions exceed the budget's {reg_b.completions}")
    if b.eval_split != "test":
        D(f"budget.eval_split: {b.eval_split!r}; the matrix must be scored on 'test'")
    if b.curve_split != "dev":
        D(f"budget.curve_split: {b.curve_split!r}; curves are scored on 'dev', the split no "
          "matrix score comes from")
    if b.curve_examples != reg_b.dev_examples:
        D(f"budget.curve_examples: {b.curve_examples} dev items per curve point; the sequence "
          f"registers {reg_b.dev_examples}")
    if b.eval_every != reg_b.eval_every:
        D(f"budget.eval_every: {b.eval_every}; the sequence registers a curve point every "
          f"{reg_b.eval_every} steps")
    columns = seq.tasks + seq.probes
    if set(b.examples_per_column) != set(columns):
        P(f"budget.examples_per_column: keys {sorted(b.examples_per_column)}; expected {sorted(columns)}")
    for c, n in b.examples_per_column.items():
        size = _test_size(reg, c) if c in columns else None
        if size is None:
            continue
        if n > size:
            P(f"budget.examples_per_column.{c}: {n} is more than the {size} test examples")
        elif n < size:
            D(f"budget.examples_per_column.{c}: evaluated on {n} of {size} test examples (eval_limit)")


def _check_environment(r, P) -> None:
    """An environment of empty strings is a missing one: the run cannot be reproduced."""
    for k, x in r.environment.model_dump().items():
        if isinstance(x, str) and not x.strip():
            P(f"environment.{k}: empty; record the version or platform the run used")


def _check_curves(r, seq, P) -> None:
    columns = set(seq.tasks + seq.probes)
    steps = r.budget.steps_per_task
    total = sum(steps.values())
    last = -1
    for i, c in enumerate(r.curves):
        if c.task not in seq.tasks:
            P(f"curves[{i}].task: {c.task!r} is not a task of the sequence {seq.tasks}")
        if c.step > steps.get(c.task, c.step) or c.global_step > total:
            P(f"curves[{i}].step: step {c.step}, global_step {c.global_step} beyond the budget run "
              f"(budget.steps_per_task {steps})")
        every = r.budget.eval_every
        if every and c.step % every and c.step != steps.get(c.task):
            P(f"curves[{i}].step: step {c.step} is off the recorded schedule (budget.eval_every "
              f"{every}: step 0, every {every} steps and the task's last step)")
        extra, missing = set(c.scores) - columns, columns - set(c.scores)
        if extra:
            P(f"curves[{i}].scores: unknown column(s) {sorted(extra)}")
        elif missing:
            P(f"curves[{i}].scores: no score for {sorted(missing)}; every point scores every column")
        if c.global_step < last:
            P(f"curves[{i}].global_step: {c.global_step} goes backwards (previous {last})")
        last = c.global_step
    missing = [t for t in seq.tasks if t not in r.geometry]
    if missing:
        P(f"geometry: no entry for task(s) {missing}")


def scheduled_points(steps_per_task: dict[str, int], tasks: list[str], every: int) -> list[tuple[str, int, int]]:
    """(task, step, global_step) of every curve point a run records, in order: each task's
    step 0, every `every` steps and its last step (clbench/runner.py, after_step)."""
    out, offset = [], 0
    for t in tasks:
        n = steps_per_task.get(t, 0)
        out += [(t, s, offset + s) for s in range(n + 1) if is_curve_step(s, n, every)]
        offset += n
    return out


def _check_curve_schedule(r, seq, P) -> None:
    """The runner records a fixed set of curve points; an entry with some left out, moved
    or reordered has been edited (or its method stopped before the steps it reports).
    Entries that predate eval_every carry
    no schedule to check (a deviation, see _check_budget)."""
    if r.budget.eval_every is None or set(r.budget.steps_per_task) != set(seq.tasks):
        return
    want = scheduled_points(r.budget.steps_per_task, seq.tasks, r.budget.eval_every)
    got = [(c.task, c.step, c.global_step) for c in r.curves]
    if got != want:
        i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        said = f"(task, step, global_step) {got[i]}" if i < len(got) else "no point"
        P(f"curves[{i}]: {said} where the run's schedule has "
          f"{want[i] if i < len(want) else 'no more points'} ({len(got)} points; the schedule of "
          f"budget.eval_every {r.budget.eval_every} over steps {r.budget.steps_per_task} has {len(want)})")


def _check_geometry(r, seq, P) -> None:
    """The parts of one measurement must agree with each other and with the model: an
    edited drift or sparsity figure (the board shows them) rarely keeps them in step."""
    from clbench.geometry import RUN_TAUS, tau_key

    extra = sorted(set(r.geometry) - set(seq.tasks))
    if extra:
        P(f"geometry: entries for {extra}, which are not tasks of {seq.name}")
    taus = sorted(tau_key(t) for t in RUN_TAUS)
    for t, g in r.geometry.items():
        where = f"geometry.{t}"
        if g.n_entries != r.model.parameters:
            P(f"{where}.n_entries: {g.n_entries}; model.parameters is {r.model.parameters}, and the "
              "geometry measures every weight")
        d = g.drift_l2
        parts = math.sqrt(math.fsum(x * x for x in d.by_component.values()))
        if not math.isclose(parts, d.overall, rel_tol=PARTS_TOL, abs_tol=1e-12):
            P(f"{where}.drift_l2.overall: {d.overall} is not the L2 norm of its by_component parts "
              f"({parts}); every weight is in one component")
        layers = math.sqrt(math.fsum(x * x for x in d.by_layer.values()))
        if layers > d.overall * (1 + PARTS_TOL) + 1e-12:
            P(f"{where}.drift_l2.by_layer: their L2 norm {layers} exceeds overall {d.overall}")
        if g.kl_from_base < -KL_TOL:
            P(f"{where}.kl_from_base: {g.kl_from_base}; a KL divergence is never negative")
        for name, shares in (("sparsity", g.sparsity), ("sparsity_bf16", g.sparsity_bf16)):
            if sorted(shares) != taus:
                P(f"{where}.{name}: thresholds {sorted(shares)}; a run records {taus}")
        _check_geometry_against_curve(r, t, g, P)


def _check_geometry_against_curve(r, task: str, g, P) -> None:
    """The runner measures a task's geometry on the weights its last curve point scores
    (clbench/runner.py), with the same functions: the drift column the board shows must
    be that point's drift, so halving it (parts and all) does not pass."""
    from clbench.geometry import CURVE_TAU, tau_key

    last = r.budget.steps_per_task.get(task)
    point = next((c for c in r.curves if c.task == task and c.step == last), None)
    if point is None:
        return  # no point at the task's last step: _check_curve_schedule names it
    shares = g.sparsity.get(tau_key(CURVE_TAU))
    pairs = [("drift_l2.overall", g.drift_l2.overall, "drift_l2", point.drift_l2),
             ("drift_l2_task", g.drift_l2_task, "drift_l2_task", point.drift_l2_task)]
    if shares is not None:
        pairs.append((f"sparsity.{tau_key(CURVE_TAU)}.overall", shares.overall, "sparsity", point.sparsity))
    for name, value, curve_name, curve_value in pairs:
        if not math.isclose(value, curve_value, rel_tol=1e-12, abs_tol=1e-12):
            P(f"geometry.{task}.{name}: {value}; the curve point at {task}'s last step (step "
              f"{last}) records {curve_name} {curve_value}, measured on the same weights")


def _check_counts(r, P) -> None:
    """Counts that one run records twice, and the model it names, must agree."""
    per_task = sum(r.budget.completions_per_task.values())
    if r.cost.completions != per_task:
        P(f"cost.completions: {r.cost.completions}; budget.completions_per_task adds up to {per_task}")
    if r.model.dtype not in DTYPES:
        P(f"model.dtype: {r.model.dtype!r}; a run records one of {', '.join(DTYPES)}")
