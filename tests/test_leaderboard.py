"""Leaderboard: validation verdicts and messages, submit, reproducible build, ranking,
registered base scores, and the committed submissions against the current registry.

Valid submissions are built from one real short run (the `run_dir` fixture in tests/conftest.py): as run
it is a custom entry (1 step per task); its "standard" twin sets the registered steps per task and
curve schedule, with the run's curve points repeated over it, which the validator cannot tell apart.
"""
import copy
import json
import shutil
from pathlib import Path

import pytest

from clbench import metrics
from clbench.cli import main
from clbench.errors import UserError
from clbench.leaderboard.registered import load_base_scores, with_registered_base
from clbench.atomic import write_bytes
from clbench.leaderboard.validate import scheduled_points, validate_doc, validate_file
from clbench.registry import Entry, Registry

REPO = Path(__file__).resolve().parents[1]
# the registered budget, so the verdicts below follow a changed budget (issue 16's switch)
BUDGET = Registry.load().sequence("math-then-code").budget
STEPS, EVERY = BUDGET.steps, BUDGET.eval_every
FIRST_CODE = len(scheduled_points({"countdown": STEPS}, ["countdown"], EVERY))  # index of code's step 0


@pytest.fixture(scope="session")
def raw_doc(run_dir):
    return json.loads((run_dir / "result.json").read_text())


def resummarize(doc):
    doc["summary"] = metrics.summarize(doc["matrix"]["values"], doc["sequence"]["tasks"],
                                       doc["sequence"]["probes"])
    return doc


@pytest.fixture
def std_doc(raw_doc):
    """The run as a standard entry: the registered steps per task and curve schedule, its
    curve points repeated over that schedule (step 0's at step 0, the last step's at every
    later point), all else as run."""
    doc = copy.deepcopy(raw_doc)
    budget = Registry.load().sequence(doc["sequence"]["name"]).budget
    steps = {t: budget.steps for t in doc["budget"]["steps_per_task"]}
    doc["budget"].update(steps_per_task=steps, eval_every=budget.eval_every,
                         curve_examples=budget.dev_examples)
    ran = {(c["task"], c["step"] > 0): c for c in doc["curves"]}
    doc["curves"] = [{**ran[t, s > 0], "step": s, "global_step": g}
                     for t, s, g in scheduled_points(steps, doc["sequence"]["tasks"], budget.eval_every)]
    return doc


def dump(path: Path, doc_or_bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = doc_or_bytes if isinstance(doc_or_bytes, bytes) else json.dumps(doc_or_bytes, indent=2).encode()
    path.write_bytes(data)
    return path


def cli(capsys, *args):
    capsys.readouterr()
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out + out.err


# ----------------------------------------------------------------------------- validate
def test_valid_standard_entry_passes(std_doc, tmp_path, capsys):
    f = dump(tmp_path / "ok.json", std_doc)
    rc, out = cli(capsys, "leaderboard", "validate", str(f))
    assert rc == 0, out
    assert f"{f}: ok" in out
    assert "custom" not in out


def test_run_as_is_is_only_a_custom_entry(run_dir, raw_doc, tmp_path, capsys):
    rc, out = cli(capsys, "leaderboard", "validate", str(run_dir / "result.json"))
    assert rc == 1
    assert f"budget.steps_per_task.countdown: 1 steps; the sequence's budget is {STEPS}" in out
    assert "--custom" in out
    doc = copy.deepcopy(raw_doc)
    doc["custom"] = "smoke test: 1 step per task"
    rc, out = cli(capsys, "leaderboard", "validate", str(dump(tmp_path / "c.json", doc)))
    assert rc == 0, out
    assert "ok (custom: smoke test: 1 step per task; departs: budget.steps_per_task.countdown" in out


def _set(path, value):
    def f(doc):
        *head, last = path
        node = doc
        for k in head:
            node = node[k]
        node[last] = value
        return doc
    return f


def _delete(key):
    def f(doc):
        del doc[key]
        return doc
    return f


def _edit(fn, resum=False):
    def f(doc):
        fn(doc)
        return resummarize(doc) if resum else doc
    return f


def _text(fn):
    """A defect that only exists in the text (not expressible as a parsed dict)."""
    def f(doc):
        return fn(json.dumps(doc, indent=2)).encode()
    return f


def _nested(depth):
    x = 0
    for _ in range(depth):
        x = [x]
    return x


# (id, mutation of the valid standard doc, text that must appear in the message)
def _halve_drift(drift: dict) -> None:
    """Every part of a drift scaled alike: the parts still add up, only the curve disagrees."""
    drift["overall"] /= 2
    for parts in (drift["by_component"], drift["by_layer"]):
        parts.update({k: v / 2 for k, v in parts.items()})


BROKEN = [
    ("truncated-json", _text(lambda t: t[: len(t) // 2]), "file: not valid JSON"),
    ("not-an-object", lambda d: b"[1, 2]", "(root): a JSON object is needed"),
    ("wrong-type-seed", _set(["seed"], "0"), "seed: Input should be a valid integer"),
    ("wrong-type-score", _set(["matrix", "values", 1, 0], "0.3"), "matrix.values.1.0: Input should be a valid number"),
    ("nan-literal", _text(lambda t: t.replace('"acc": ', '"acc": NaN, "x": ', 1)), "file: NaN is not a JSON number"),
    ("infinite-number", _text(lambda t: t.replace('"seed": 0', '"seed": 0, "drift": 1e999', 1)),
     "drift: NaN or infinite number"),
    ("score-1.5", _set(["matrix", "values", 2, 3], 1.5), "matrix.values: Value error, score 1.5 outside [0, 1]"),
    ("tampered-summary", _edit(lambda d: d["summary"].update(acc=d["summary"]["acc"] + 0.05)),
     "does not match"),
    ("tampered-matrix-old-summary", _set(["matrix", "values", 2, 0], 0.9), "summary.acc:"),
    ("matrix-shape", _edit(lambda d: [row.pop() for row in d["matrix"]["values"]]),
     "matrix.values: matrix row 0 has 4 columns; expected T+P = 5"),
    ("matrix-rows", _set(["matrix", "rows"], ["base", "code", "countdown"]), "matrix.rows:"),
    ("sequence-fingerprint", _set(["sequence", "fingerprint"], "0" * 16), "sequence.fingerprint: 0000000000000000 does not match"),
    ("sequence-unknown", _set(["sequence", "name"], "no-such-seq"), "sequence.name: unknown sequence 'no-such-seq'"),
    ("task-version", _set(["sequence", "task_versions", "code"], 99), "sequence.task_versions:"),
    ("model-fingerprint", _set(["model", "fingerprint"], "f" * 16), "model.fingerprint: ffffffffffffffff is not the base model"),
    ("row0-not-registered", _edit(lambda d: d["matrix"]["values"][0].__setitem__(1, 0.125), resum=True),
     "matrix.values[0][1]: row 0 code = 0.125 differs from the registered base score"),
    ("missing-seed", _delete("seed"), "seed: Field required"),
    ("missing-environment", _delete("environment"), "environment: Field required"),
    ("extra-field", _set(["hacked"], True), "hacked: Extra inputs are not permitted"),
    ("over-5MB", _set(["method", "config", "pad"], "x" * (5 * 1024 * 1024)), "MB exceeds the 5 MB limit"),
    ("duplicate-key", _text(lambda t: '{"seed": 7,' + t[1:]), "file: duplicate key 'seed'"),
    ("deep-nesting", _set(["method", "config", "junk"], _nested(200)), "file: nested deeper than 24 levels"),
    ("budget-steps-not-custom", _set(["budget", "steps_per_task", "code"], 300),
     f"budget.steps_per_task.code: 300 steps; the sequence's budget is {STEPS} (accepted only as a custom entry"),
    ("eval-limit-not-custom", _set(["budget", "examples_per_column", "sort"], 100),
     "budget.examples_per_column.sort: evaluated on 100 of 500 test examples (eval_limit)"),
    ("more-examples-than-split", _set(["budget", "examples_per_column", "sort"], 501),
     "budget.examples_per_column.sort: 501 is more than the 500 test examples"),
    ("registered-budget-lie", _set(["budget", "registered_steps", ], 1), f"budget.registered_steps: 1; the sequence registers {STEPS}"),
    ("completions-over-budget", _set(["budget", "completions_per_task", "code"], 10**9),
     "budget.completions_per_task.code: 1000000000 completions exceed"),
    ("empty-custom-reason", _set(["custom"], "  "), "custom: empty reason"),
    ("bad-method-name", _set(["method", "name"], "../../etc"), "method.name: '../../etc' is not a kebab-case"),
    ("curve-score", _set(["curves", 0, "scores", "sort"], 2.0), "curves.0.scores.sort: Input should be less than or equal to 1"),
    ("curve-task", _set(["curves", 0, "task"], "gsm8k"), "curves[0].task: 'gsm8k' is not a task of the sequence"),
    ("curve-step", _set(["curves", 0, "step"], -3), "curves.0.step: Input should be greater than or equal to 0"),
    ("curve-drift", _set(["curves", 0, "drift_l2"], -1.0), "curves.0.drift_l2: Input should be greater than or equal to 0"),
    ("curve-sparsity", _set(["curves", 0, "sparsity"], 7.0), "curves.0.sparsity: Input should be less than or equal to 1"),
    ("geometry-drift", _set(["geometry", "code", "drift_l2", "overall"], -2.0),
     "geometry.code.drift_l2.overall: Input should be greater than or equal to 0"),
    ("geometry-sparsity", _set(["geometry", "code", "sparsity", "1e-06", "by_layer", "0"], 1.5),
     "geometry.code.sparsity.1e-06.by_layer.0: Input should be less than or equal to 1"),
    ("geometry-entries", _set(["geometry", "code", "n_entries"], -5),
     "geometry.code.n_entries: Input should be greater than or equal to 0"),
    ("geometry-extra-key", _set(["geometry", "code", "looks_good"], True),
     "geometry.code.looks_good: Extra inputs are not permitted"),
    ("geometry-kl-string", _set(["geometry", "code", "kl_from_base"], "0.0"),
     "geometry.code.kl_from_base: Input should be a valid number"),
    ("method-name-newline", _set(["method", "name"], "es\n"), "method.name: 'es\\n' is not a kebab-case"),
    ("method-unregistered", _set(["method", "name"], "my-es"),
     "method.name: 'my-es' is not an installed method (known: es, es-awd"),
    ("method-version", _set(["method", "version"], 99), "method.version: 99; the installed es is version 1"),
    ("method-renamed", _set(["method", "name"], "grpo"), "method.config.population: Extra inputs are not permitted"),
    ("method-config-bound", _set(["method", "config", "sigma"], -1.0),
     "method.config.sigma: Input should be greater than 0 (under es's Config)"),
    ("method-config-type", _set(["method", "config", "population"], "30"),
     "method.config.population: Input should be a valid integer"),
    ("schema-version", _set(["schema_version"], 999), "schema_version: 999; this clbench reads version 1"),
    ("completions-hidden", _set(["budget", "completions_per_task"], {}),
     "budget.completions_per_task: no count for trained task(s) ['countdown', 'code']"),
    ("model-name-label", _set(["model", "name"], "gpt-5"), "model.name: 'gpt-5' is not 'embedded'"),
    ("custom-multiline", _set(["custom"], "smoke\n\n## Fake heading"), "custom: 'smoke\\n\\n## Fake heading' is shown"),
    ("environment-empty", _set(["environment", "python"], " "), "environment.python: empty"),
    ("cost-negative", _set(["cost", "forward_tokens"], -1), "cost.forward_tokens: Input should be greater than or equal to 0"),
    ("huge-seed", _set(["seed"], 10**4000), "seed: integer beyond 64 bits"),
    # numbers one run records twice, or the model and schedule it names, must agree
    ("geometry-drift-edited", _set(["geometry", "code", "drift_l2", "overall"], 0.5),
     "geometry.code.drift_l2.overall: 0.5 is not the L2 norm of its by_component parts"),
    ("geometry-layers-exceed", _set(["geometry", "code", "drift_l2", "by_layer", "0"], 1e6),
     "geometry.code.drift_l2.by_layer: their L2 norm 1000000.0000569817 exceeds overall"),
    ("geometry-entries-zero", _set(["geometry", "code", "n_entries"], 0),
     "geometry.code.n_entries: 0; model.parameters is"),
    ("geometry-kl-negative", _set(["geometry", "code", "kl_from_base"], -1.0),
     "geometry.code.kl_from_base: -1.0; a KL divergence is never negative"),
    ("geometry-threshold", _edit(lambda d: d["geometry"]["code"]["sparsity"].update(
        banana=d["geometry"]["code"]["sparsity"].pop("1e-06"))),
     "geometry.code.sparsity: thresholds ['banana']; a run records ['1e-06']"),
    ("geometry-extra-task", _edit(lambda d: d["geometry"].update({"not-a-task": d["geometry"]["code"]})),
     "geometry: entries for ['not-a-task'], which are not tasks of math-then-code"),
    ("geometry-drift-halved", _edit(lambda d: _halve_drift(d["geometry"]["code"]["drift_l2"])),
     f"the curve point at code's last step (step {STEPS}) records drift_l2 "),
    ("geometry-task-drift-edited", _edit(lambda d: d["geometry"]["code"].update(
        drift_l2_task=d["geometry"]["code"]["drift_l2_task"] / 2)),
     f"records drift_l2_task "),
    ("cost-completions", _set(["cost", "completions"], 1), "cost.completions: 1; budget.completions_per_task adds up to"),
    ("dtype-unknown", _set(["model", "dtype"], "int4"), "model.dtype: 'int4'; a run records one of float32"),
    ("dtype-not-registered", _set(["model", "dtype"], "bfloat16"),
     "model.dtype: bfloat16; math-then-code's base is registered and compared in float32 (--dtype "
     "float32) (accepted only as a custom entry"),
    ("curves-empty", _set(["curves"], []), "curves[0]: no point where the run's schedule has ('countdown', 0, 0)"),
    ("curve-point-dropped", _edit(lambda d: d["curves"].pop(1)),
     f"curves[1]: (task, step, global_step) ('countdown', {2 * EVERY}, {2 * EVERY}) where the run's schedule has "
     f"('countdown', {EVERY}, {EVERY})"),
    ("curve-global-step", _edit(lambda d: [c.update(global_step=2 * STEPS) for c in d["curves"] if c["task"] == "code"]),
     f"curves[{FIRST_CODE}]: (task, step, global_step) ('code', 0, {2 * STEPS}) where the run's schedule has "
     f"('code', 0, {STEPS})"),
    ("curve-scores-dropped", _set(["curves", 0, "scores"], {}), "curves[0].scores: no score for ['code', 'countdown'"),
    ("curve-schedule-not-custom", _set(["budget", "eval_every"], STEPS),
     f"budget.eval_every: {STEPS}; the sequence registers a curve point every {EVERY} steps (accepted only as a custom"),
    ("curve-examples-not-custom", _set(["budget", "curve_examples"], 0),
     f"budget.curve_examples: 0 dev items per curve point; the sequence registers {BUDGET.dev_examples}"),
    ("curve-split-not-custom", _set(["budget", "curve_split"], "test"), "budget.curve_split: 'test'; curves are scored on 'dev'"),
    ("huge-tokens", _set(["cost", "forward_tokens"], 10**400), "cost.forward_tokens: integer beyond 64 bits"),
]


@pytest.mark.parametrize("name,mutate,message", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_submission_is_rejected_naming_the_field(std_doc, tmp_path, capsys, name, mutate, message):
    f = dump(tmp_path / f"{name}.json", mutate(copy.deepcopy(std_doc)))
    rc, out = cli(capsys, "leaderboard", "validate", str(f))
    assert rc == 1, out
    assert message in out, out
    lines = [ln for ln in out.splitlines() if ln.startswith(f"{f}: ")]
    assert lines and all(": " in ln[len(str(f)) + 2:] for ln in lines)  # every line "FILE: field: message"


def test_several_files_one_bad_is_exit_1_and_missing_file_is_usage(std_doc, tmp_path, capsys):
    good = dump(tmp_path / "good.json", std_doc)
    bad = dump(tmp_path / "bad.json", _delete("seed")(copy.deepcopy(std_doc)))
    rc, out = cli(capsys, "leaderboard", "validate", str(good), str(bad))
    assert rc == 1 and f"{good}: ok" in out and f"{bad}: seed: Field required" in out
    rc, out = cli(capsys, "leaderboard", "validate", str(tmp_path / "nope.json"))
    assert rc == 2 and "is not a file" in out


def test_control_characters_in_messages_are_escaped(std_doc, tmp_path, capsys):
    """A key quoted in a message may hold terminal escapes (redrawing a line as "ok") or a
    lone surrogate (which crashes printing to a UTF-8 stdout): both are printed escaped."""
    doc = copy.deepcopy(std_doc)
    doc["budget"]["completions_per_task"]["\x1b[2K\x1b[1Agood.json: ok"] = 1
    doc["budget"]["completions_per_task"]["\ud800"] = 1
    rc, out = cli(capsys, "leaderboard", "validate", str(dump(tmp_path / "esc.json", doc)))
    assert rc == 1
    assert "\x1b" not in out and "\ud800" not in out
    assert "budget.completions_per_task.\\x1b[2K\\x1b[1Agood.json: ok: not a task" in out
    assert "budget.completions_per_task.\\ud800: not a task" in out


def test_depth_check_is_linear_in_the_size():
    """The depth scan runs before the JSON parser on any 5 MB text; a regex that rescans
    from every quote took minutes on an unterminated string of escaped quotes."""
    import time

    from clbench.leaderboard.parse import _depth, load_bytes, ParseError

    text = "[" + '"' + '\\"' * 100_000
    t0 = time.perf_counter()
    assert _depth(text) == 1
    with pytest.raises(ParseError, match="not valid JSON"):
        load_bytes(text.encode())
    assert time.perf_counter() - t0 < 2
    assert _depth('["[[\\"[", {"a": [[1]]}]') == 4  # brackets in strings, escaped quotes


def test_another_base_model_is_refused_even_as_custom(std_doc):
    """README, Leaderboard: a custom entry with other weights could show itself as the
    registered model; nothing would anchor its row 0."""
    doc = copy.deepcopy(std_doc)
    doc["model"]["fingerprint"] = "f" * 16
    doc["custom"] = "my own base model"
    v = validate_doc(doc, Registry.load())
    assert not v.ok and any(p.startswith("model.fingerprint: ffffffffffffffff is not the base model")
                            for p in v.problems), v.problems


def test_sequence_without_registered_base_model_is_custom_only(std_doc):
    from clbench.runinfo import sequence_fingerprint

    reg = Registry.load()
    seq = reg.sequence("math-then-code").model_copy(update={"base_model_fingerprint": None})
    reg2 = Registry(methods=reg.methods, tasks=reg.tasks,
                    sequences={**reg.sequences, seq.name: Entry(seq, "test")})
    doc = copy.deepcopy(std_doc)
    doc["sequence"]["fingerprint"] = sequence_fingerprint(seq, reg2)
    v = validate_doc(doc, reg2)
    assert v.problems == ["model.fingerprint: sequence math-then-code registers no base model, so its "
                          "row 0 cannot be checked (accepted only as a custom entry: clbench submit "
                          "--custom REASON)"]
    doc["custom"] = "a base model of my own"
    assert validate_doc(doc, reg2).ok


def test_unregistered_method_or_version_is_custom_only(std_doc):
    """A plugin nobody here can install, or another version of a built-in, is shown apart."""
    for where, value in ((["method", "name"], "my-es"), (["method", "version"], 2)):
        doc = copy.deepcopy(std_doc)
        doc[where[0]][where[1]] = value
        assert len(validate_doc(doc).problems) == 1
        doc["custom"] = "my own method"
        assert validate_doc(doc).ok


# ----------------------------------------------------------------------------- submit
def test_submit_files_once_and_never_overwrites(std_doc, raw_doc, run_dir, tmp_path, capsys):
    board = tmp_path / "board"
    src = dump(tmp_path / "std" / "result.json", std_doc)
    rc, out = cli(capsys, "submit", str(src.parent), "--board", str(board))
    assert rc == 0, out
    filed = sorted((board / "submissions" / "math-then-code").glob("*.json"))
    assert len(filed) == 1 and filed[0].name.startswith("es-seed0-")
    assert filed[0].read_bytes() == src.read_bytes()
    rc, out = cli(capsys, "submit", str(src.parent), "--board", str(board))
    assert rc == 1 and "already submitted" in out
    assert sorted((board / "submissions" / "math-then-code").glob("*.json")) == filed
    with pytest.raises(FileExistsError):
        write_bytes(filed[0], b"{}", exclusive=True)
    assert filed[0].read_bytes() == src.read_bytes()
    # as run (1 step per task): refused without --custom, filed apart with it
    rc, out = cli(capsys, "submit", str(run_dir), "--board", str(board))
    assert rc == 1 and "budget.steps_per_task.countdown" in out and "not submitted" in out
    rc, out = cli(capsys, "submit", str(run_dir), "--board", str(board), "--custom", "smoke test")
    assert rc == 0, out
    new = set((board / "submissions" / "math-then-code").glob("*.json")) - set(filed)
    assert len(new) == 1 and json.loads(new.pop().read_text())["custom"] == "smoke test"
    bad = dump(tmp_path / "bad" / "result.json", _set(["seed"], "x")(copy.deepcopy(std_doc)))
    rc, out = cli(capsys, "submit", str(bad.parent), "--board", str(board))
    assert rc == 1 and "seed: Input should be a valid integer" in out
    assert len(list((board / "submissions" / "math-then-code").glob("*.json"))) == 2


def test_submit_to_a_board_that_is_a_file_is_a_usage_error(std_doc, tmp_path, capsys):
    src = dump(tmp_path / "std" / "result.json", std_doc)
    rc, out = cli(capsys, "submit", str(src.parent), "--board", str(src))
    assert rc == 2 and "--board" in out and "is not a folder" in out and "Traceback" not in out


# ----------------------------------------------------------------------------- build
def _learner(std_doc, seed: int):
    """The run, with countdown 5 points higher after each task (+ a seed-dependent wiggle)."""
    d = copy.deepcopy(std_doc)
    d["seed"] = seed
    for i in (1, 2):
        d["matrix"]["values"][i][0] = round(d["matrix"]["values"][i][0] + 0.05 + 0.002 * seed, 6)
    return resummarize(d)


def _noop(std_doc, seed: int):
    """A run that learns nothing and forgets nothing: every row equals row 0 (filed as a
    registered method, grpo at its defaults, since validate refuses unknown ones)."""
    d = copy.deepcopy(std_doc)
    d["seed"] = seed
    d["method"] = {"name": "grpo", "version": 1, "config": {}}
    d["matrix"]["values"] = [list(d["matrix"]["values"][0]) for _ in d["matrix"]["values"]]
    for c in d["curves"]:  # its seeds drew other batches: rewards differ, the scores do not
        c["reward"] = (c["reward"] or 0.0) + 0.01 * seed
    return resummarize(d)


@pytest.fixture
def board(std_doc, raw_doc, tmp_path):
    b = tmp_path / "board"
    sub = b / "submissions" / "math-then-code"
    for s in (0, 1, 2):
        dump(sub / f"es-seed{s}.json", _learner(std_doc, s))
    for s in (0, 1):
        dump(sub / f"noop-seed{s}.json", _noop(std_doc, s))
    custom = copy.deepcopy(raw_doc)
    custom["custom"] = "smoke test: 1 step per task"
    dump(sub / "es-custom.json", custom)
    return b


def test_build_is_byte_reproducible(board, tmp_path, capsys):
    rc, out = cli(capsys, "leaderboard", "build", "--board", str(board))
    assert rc == 0, out
    first = {n: (board / n).read_bytes() for n in ("README.md", "index.html")}
    for n in first:
        (board / n).unlink()
    rc, _ = cli(capsys, "leaderboard", "build", "--board", str(board))
    assert rc == 0
    assert {n: (board / n).read_bytes() for n in first} == first
    copy_ = tmp_path / "elsewhere" / "b"
    shutil.copytree(board / "submissions", copy_ / "submissions")
    assert cli(capsys, "leaderboard", "build", "--board", str(copy_))[0] == 0
    assert {n: (copy_ / n).read_bytes() for n in first} == first
    page = first["index.html"].decode()
    assert "<svg" in page and "sortBy" in page and "src=\"http" not in page and "<script src" not in page


def test_ranking_puts_a_learner_above_a_method_that_learns_nothing(board, std_doc, capsys):
    assert cli(capsys, "leaderboard", "build", "--board", str(board))[0] == 0
    text = (board / "README.md").read_text()
    assert "**Ranking rule.**" in text and text.index("Ranking rule") < text.index("| # |")
    standard, custom = text.split("### Custom entries")
    rows = [ln for ln in standard.splitlines() if ln.startswith("| 1 |") or ln.startswith("| 2 |")]
    assert rows[0].startswith("| 1 | es |") and rows[1].startswith("| 2 | grpo |")
    cols = [c.strip() for c in rows[1].split("|")[1:-1]]
    head = [c.strip() for c in standard.splitlines()[[i for i, ln in enumerate(standard.splitlines())
                                                       if ln.startswith("| # |")][0]].split("|")[1:-1]]
    noop = dict(zip(head, cols))
    es = dict(zip(head, [c.strip() for c in rows[0].split("|")[1:-1]]))
    # noop forgets nothing (forgetting 0, BWT 0) and still ranks below the learner
    assert noop["forgetting"] == "0.0 ± 0.0" and noop["BWT"] == "+0.0 ± 0.0" and noop["seeds"] == "2"
    assert float(es["forgetting"].split()[0]) > 0 and es["seeds"] == "3"
    base_mean = 100 * sum(std_doc["matrix"]["values"][0]) / 5
    assert float(noop["final score"].split()[0]) == pytest.approx(base_mean, abs=0.05)
    assert float(es["final score"].split()[0]) > float(noop["final score"].split()[0])
    assert "| 1 | es |" in custom and "smoke test: 1 step per task" in custom


def test_board_markdown_escapes_submitter_text(board, raw_doc, capsys):
    """A custom reason or a config value is the submitter's text: on the README it must
    not become an HTML tag, a table cell or the end of a code span."""
    doc = copy.deepcopy(raw_doc)
    doc["custom"] = "smoke | <img src=http://x/y.png> test"
    doc["method"]["config"]["note"] = "`<b>x</b>`"
    dump(board / "submissions" / "math-then-code" / "es-hostile.json", doc)
    rc, out = cli(capsys, "leaderboard", "build", "--board", str(board))
    assert rc == 0, out
    text = (board / "README.md").read_text()
    assert "<img" not in text and "smoke \\| &lt;img src=http://x/y.png&gt; test" in text
    line = [ln for ln in text.splitlines() if '"note"' in ln][0]
    assert line.count("`") == 4 and '"note": "\\u0060<b>x</b>\\u0060"' in line  # inside the span


def test_build_refuses_an_invalid_submission(board, capsys, std_doc):
    assert cli(capsys, "leaderboard", "build", "--board", str(board))[0] == 0
    before = (board / "README.md").read_bytes()
    dump(board / "submissions" / "math-then-code" / "stale.json",
         _set(["sequence", "fingerprint"], "0" * 16)(copy.deepcopy(std_doc)))
    rc, out = cli(capsys, "leaderboard", "build", "--board", str(board))
    assert rc == 1 and "stale.json: sequence.fingerprint" in out
    assert (board / "README.md").read_bytes() == before


def test_board_that_is_a_file_is_exit_2_and_kept(tmp_path, capsys):
    f = tmp_path / "board.txt"
    f.write_text("keep me")
    rc, out = cli(capsys, "leaderboard", "build", "--board", str(f))
    assert rc == 2 and "is a file" in out and f.read_text() == "keep me"


def test_empty_board_builds(tmp_path, capsys):
    assert cli(capsys, "leaderboard", "build", "--board", str(tmp_path))[0] == 0
    assert "No submissions yet" in (tmp_path / "README.md").read_text()


# ----------------------------------------------------------------------------- registry
def committed_submissions() -> list[Path]:
    return sorted((REPO / "leaderboard" / "submissions").glob("*/*.json"))


def test_committed_submissions_match_current_registry():
    """Every file under leaderboard/submissions must validate against today's registry
    (sequence fingerprint, base model, base scores): a change that alters results fails
    here until the board is rerun (`leaderboard/build_first_board.py`)."""
    files = committed_submissions()
    assert files, "the committed board is empty"
    problems = [f"{f}: {p}" for f in files for p in validate_file(f).problems]
    assert not problems, "\n".join(problems)


def test_committed_board_holds_every_builtin_method_with_three_seeds():
    """The first board is real data: each registered method, standard entries (registered
    budget, full test splits, not custom), seeds 0, 1 and 2, at its default config."""
    from importlib.metadata import entry_points

    from clbench.results import RunResult

    seeds: dict[str, set[int]] = {}
    for f in committed_submissions():
        r = RunResult.model_validate_json(f.read_bytes())
        if r.sequence.name == "math-then-code" and r.custom is None:
            seeds.setdefault(r.method.name, set()).add(r.seed)
    methods = sorted(ep.name for ep in entry_points(group="clbench.methods")
                     if ep.value.startswith("clbench.methods."))  # built-ins, not plugins
    missing = {m: sorted({0, 1, 2} - seeds.get(m, set())) for m in methods}
    assert not any(missing.values()), f"seeds missing from the committed board: {missing}"


def test_registered_base_scores_equal_a_fresh_evaluation(embedded, harness):
    """The registry (clbench/assets/base_scores.json, which the sequences resolve their
    base fingerprint from) must describe the shipped model; after retraining it, run
    `clbench leaderboard register-base`."""
    from clbench.model import weights_fingerprint

    reg = Registry.load()
    fp = weights_fingerprint(embedded.model)
    embedded_seqs = [s.obj for s in reg.sequences.values() if s.obj.model == "embedded"]
    assert embedded_seqs and all(s.base_model_fingerprint == fp for s in embedded_seqs)
    entry = load_base_scores()[fp]
    seq = reg.sequence("math-code-cipher")  # its columns are every embedded column
    columns = seq.tasks + seq.probes
    assert {c for s in embedded_seqs for c in s.tasks + s.probes} == set(columns)
    fresh = harness.score(columns, split="test", limit=None)
    assert {c: entry["columns"][c]["score"] for c in columns} == fresh
    for c in columns:
        assert entry["columns"][c]["examples"] == len(reg.task(c).split("test"))
        assert entry["columns"][c]["version"] == reg.task(c).version


def test_a_sequence_resolves_its_base_fingerprint_from_the_registered_scores(tmp_path):
    """register-base writes only base_scores.json; the sequences read the fingerprint from
    it (issue 18: the core edits no installed file)."""
    from clbench.config import SequenceSpec

    f = tmp_path / "s.yaml"
    f.write_text("name: s\ntasks: [countdown]\nmodel: embedded\nbudget:\n  steps: 3\n  completions: 9\n")
    seq = SequenceSpec.from_yaml(f)
    assert seq.base_model_fingerprint is None
    scores = {"aaaa": {"model": "embedded"}, "bbbb": {"model": "other"}}
    assert with_registered_base(seq, scores).base_model_fingerprint == "aaaa"
    assert with_registered_base(seq.model_copy(update={"model": "other"}), scores).base_model_fingerprint == "bbbb"
    assert with_registered_base(seq.model_copy(update={"model": "unregistered"}), scores).base_model_fingerprint is None
    with pytest.raises(UserError, match="2 entries for model 'embedded'"):
        with_registered_base(seq, {**scores, "dddd": {"model": "embedded"}})
    stated = seq.model_copy(update={"base_model_fingerprint": "cccc"})
    assert with_registered_base(stated, scores).base_model_fingerprint == "cccc"  # a stated one is kept
    # the shipped YAMLs state none; the registry resolves them to the registered base
    reg = Registry.load()
    fp = {e["model"]: k for k, e in load_base_scores().items()}["embedded"]
    for name in ("math-then-code", "math-code-cipher", "math-only"):
        path = Path(__file__).resolve().parents[1] / "tasks" / "sequences" / f"{name}.yaml"
        assert "base_model_fingerprint" not in path.read_text()
        assert reg.sequence(name).base_model_fingerprint == fp


def test_committed_board_is_the_build_of_the_committed_submissions(tmp_path, capsys):
    """leaderboard/README.md and index.html are rebuilt whenever submissions or the build change."""
    shutil.copytree(REPO / "leaderboard" / "submissions", tmp_path / "submissions")
    if (REPO / "leaderboard" / "verified").is_dir():  # the records behind the "verified" column
        shutil.copytree(REPO / "leaderboard" / "verified", tmp_path / "verified")
    rc, out = cli(capsys, "leaderboard", "build", "--board", str(tmp_path))
    assert rc == 0, out
    for name in ("README.md", "index.html"):
        assert (tmp_path / name).read_bytes() == (REPO / "leaderboard" / name).read_bytes(), \
            f"leaderboard/{name} is stale: run `clbench leaderboard build`"


# ----------------------------------------------------------------------------- tampering
@pytest.fixture
def filed_doc():
    """A committed standard entry: a valid document without a training run."""
    path = sorted((REPO / "leaderboard" / "submissions" / "math-then-code").glob("es-seed0-*.json"))[0]
    return json.loads(path.read_text())


def _board_of(tmp_path, docs: dict) -> Path:
    board = tmp_path / "board"
    for name, doc in docs.items():
        dump(board / "submissions" / "math-then-code" / name, doc)
    return board


def test_board_rows_hold_seeds_0_to_n_minus_1(filed_doc, tmp_path, capsys):
    """Seeds 0 and 2 (2 filed, 1 left out) is a choice of runs, not a row: refused."""
    seed2 = json.loads(sorted((REPO / "leaderboard" / "submissions" / "math-then-code")
                              .glob("es-seed2-*.json"))[0].read_text())
    board = _board_of(tmp_path, {"es-seed0.json": filed_doc, "es-seed2.json": seed2})
    rc, out = cli(capsys, "leaderboard", "build", "--board", str(board))
    assert rc == 1 and "es-seed2.json: seed: es" in out and "has seeds [0, 2]" in out, out
    assert not (board / "README.md").exists()
    relabelled = copy.deepcopy(seed2)
    relabelled["seed"] = 1
    board = _board_of(tmp_path / "b", {"es-seed0.json": filed_doc, "es-seed1.json": relabelled})
    assert cli(capsys, "leaderboard", "build", "--board", str(board))[0] == 0
    smoke = {**copy.deepcopy(seed2), "seed": 3, "custom": "a smoke run of seed 3"}  # custom: any seed
    board = _board_of(tmp_path / "c", {"es-seed3.json": smoke})
    assert cli(capsys, "leaderboard", "build", "--board", str(board))[0] == 0


def test_one_run_under_two_seed_labels_is_refused(filed_doc, tmp_path, capsys):
    twin = copy.deepcopy(filed_doc)
    twin["seed"] = 1
    board = _board_of(tmp_path, {"es-seed0.json": filed_doc, "es-seed1.json": twin})
    rc, out = cli(capsys, "leaderboard", "build", "--board", str(board))
    assert rc == 1 and "es-seed1.json: seed: its matrix, curves and geometry equal seed 0's (es-seed0.json)" in out, out


def test_a_copied_seed_with_a_figure_nudged_is_still_one_run(filed_doc, tmp_path, capsys):
    """Changing the last digit of a reward or KL defeats an exact comparison; the matrix and
    every curve score, which the seed decides, still give the copy away."""
    twin = copy.deepcopy(filed_doc)
    twin["seed"] = 1
    twin["curves"][-1]["reward"] += 1e-12
    twin["geometry"]["code"]["kl_from_base"] *= 1 + 1e-9
    board = _board_of(tmp_path, {"es-seed0.json": filed_doc, "es-seed1.json": twin})
    rc, out = cli(capsys, "leaderboard", "build", "--board", str(board))
    assert rc == 1 and ("es-seed1.json: seed: its matrix and every curve score equal seed 0's "
                        "(es-seed0.json)") in out, out
    assert not (board / "README.md").exists()


def test_a_symlinked_submission_is_refused(filed_doc, tmp_path, capsys):
    """The board is the build of committed bytes: a link could point outside the repository."""
    outside = dump(tmp_path / "elsewhere" / "es-seed0.json", filed_doc)
    board = _board_of(tmp_path, {})
    (board / "submissions" / "math-then-code").mkdir(parents=True)
    (board / "submissions" / "math-then-code" / "es-seed0.json").symlink_to(outside)
    rc, out = cli(capsys, "leaderboard", "build", "--board", str(board))
    assert rc == 1 and "es-seed0.json: a symbolic link" in out, out


def test_a_default_left_out_of_the_config_is_the_same_row(filed_doc, tmp_path, capsys):
    """Leaving out `population` (at its default) is the same config, so the same seed 0."""
    short = copy.deepcopy(filed_doc)
    del short["method"]["config"]["population"]
    board = _board_of(tmp_path, {"es-seed0.json": filed_doc, "es-seed0-again.json": short})
    rc, out = cli(capsys, "leaderboard", "build", "--board", str(board))
    assert rc == 1 and "seed: es seed 0 is already on the board" in out, out
    board = _board_of(tmp_path / "s", {})
    assert cli(capsys, "submit", str(dump(tmp_path / "a" / "result.json", filed_doc)), "--board", str(board))[0] == 0
    rc, out = cli(capsys, "submit", str(dump(tmp_path / "b" / "result.json", short)), "--board", str(board))
    assert rc == 1 and "seed: es seed 0 of this config is already filed as" in out, out


def test_filed_doc_is_valid(filed_doc):
    assert validate_doc(filed_doc).problems == []
    scheduled = copy.deepcopy(filed_doc)
    scheduled["budget"]["eval_every"] = EVERY  # the schedule it was run on: every point fits
    assert validate_doc(scheduled).problems == []


def _summary(fn):
    def f(doc):
        fn(doc["summary"])
    return f


# (id, edit of a committed entry's summary, text of the problem); the matrix is untouched
TAMPERED_SUMMARY = [
    ("bwt-null", _summary(lambda s: s.update(bwt=None)), "summary.bwt: None does not match"),
    ("fwt-null", _summary(lambda s: s.update(fwt=None)), "summary.fwt: None does not match"),
    ("forgetting-shifted", _summary(lambda s: s.update(forgetting=s["forgetting"] + 1e-6)),
     "summary.forgetting:"),
    ("avalanche-shifted", _summary(lambda s: s.update(forgetting_avalanche=0.5)),
     "summary.forgetting_avalanche: 0.5 does not match"),
    ("probe-value", _summary(lambda s: s["probe_delta"].update(reverse=0.25)),
     "summary.probe_delta.reverse: 0.25 does not match"),
    ("probe-extra", _summary(lambda s: s["probe_delta"].update(gsm8k=0.0)), "summary.probe_delta: keys"),
    ("probe-missing", _summary(lambda s: s["probe_delta"].pop("sort")), "summary.probe_delta: keys"),
    ("probe-null", _summary(lambda s: s["probe_delta"].update(sort=None)),
     "summary.probe_delta.sort: Input should be a valid number"),
    ("acc-bool", _summary(lambda s: s.update(acc=True)), "summary.acc: Input should be a valid number"),
    ("score-bool", lambda d: d["matrix"]["values"][1].__setitem__(3, True),
     "matrix.values.1.3: Input should be a valid number"),
]


@pytest.mark.parametrize("name,edit,message", TAMPERED_SUMMARY, ids=[t[0] for t in TAMPERED_SUMMARY])
def test_summary_must_be_the_recomputation_of_the_matrix(filed_doc, name, edit, message):
    doc = copy.deepcopy(filed_doc)
    edit(doc)
    problems = validate_doc(doc).problems
    assert any(message in p for p in problems), problems


def test_run_result_read_refuses_a_bool_or_string_score(filed_doc, tmp_path):
    """Lax pydantic reads `true` as 1.0 and "0.5" as 0.5; a report would show them."""
    from clbench.results import RunResult

    assert RunResult.read(dump(tmp_path / "ok.json", filed_doc)).seed == filed_doc["seed"]
    for i, value in enumerate([True, "0.5"]):
        doc = copy.deepcopy(filed_doc)
        doc["summary"]["acc"] = value
        with pytest.raises(ValueError, match="summary.acc"):
            RunResult.read(dump(tmp_path / f"bad{i}.json", doc))


def test_score_that_no_count_of_correct_answers_gives_is_rejected(filed_doc):
    """Scores are correct / scored items: an edited 0.7312 on 200 items cannot be a run's,
    even when the summary was recomputed to match it."""
    doc = copy.deepcopy(filed_doc)
    j = doc["matrix"]["columns"].index("code")
    doc["matrix"]["values"][2][j] = round(doc["matrix"]["values"][2][j] + 0.0013, 6)
    problems = validate_doc(resummarize(doc)).problems
    assert len(problems) == 1 and problems[0].startswith(f"matrix.values[2][{j}]: code = ")
    assert "not a whole number of correct answers out of the 200 scored" in problems[0]


@pytest.mark.parametrize("field,key,value", [
    ("examples_per_column", "sort", 0), ("steps_per_task", "code", -5),
    ("completions_per_task", "code", -1)])
def test_custom_entry_cannot_report_negative_or_empty_counts(filed_doc, field, key, value):
    doc = copy.deepcopy(filed_doc)
    doc["custom"] = "a smaller budget"
    doc["budget"][field][key] = value
    problems = validate_doc(doc).problems
    assert f"budget.{field}.{key}: Input should be greater than or equal to" in "\n".join(problems), problems


def test_markdown_of_submitter_text_has_no_image_link_or_extra_cell(filed_doc, tmp_path, capsys):
    from clbench.leaderboard.build import _md

    assert _md("a\\|b") == "a\\\\\\|b"  # "\|" would end its own escape and split the cell
    board = tmp_path / "board"
    doc = copy.deepcopy(filed_doc)
    doc["custom"] = "see ![x](http://evil.example/p.png) and [y](javascript:alert(1)) *big*"
    dump(board / "submissions" / "math-then-code" / "custom.json", doc)
    rc, out = cli(capsys, "leaderboard", "build", "--board", str(board))
    assert rc == 0, out
    text = (board / "README.md").read_text()
    assert "![x](" not in text and "[y](" not in text
    assert "see \\!\\[x\\](http://evil.example/p.png) and \\[y\\](javascript:alert(1)) \\*big\\*" in text


def test_one_result_per_seed(filed_doc, tmp_path, capsys):
    """A second run of the same seed (say, the luckier one) is refused on submit, and a
    board holding both is not built, rather than showing whichever sorts first."""
    board = tmp_path / "board"
    first = dump(tmp_path / "a" / "result.json", filed_doc)
    twin = copy.deepcopy(filed_doc)
    twin["cost"]["wall_seconds"] += 1.0
    second = dump(tmp_path / "b" / "result.json", twin)
    assert cli(capsys, "submit", str(first), "--board", str(board))[0] == 0
    rc, out = cli(capsys, "submit", str(second), "--board", str(board))
    assert rc == 1 and "seed: es seed 0 of this config is already filed as" in out
    other = copy.deepcopy(twin)
    other["seed"] = 1  # another seed is fine
    assert cli(capsys, "submit", str(dump(tmp_path / "c" / "result.json", other)), "--board", str(board))[0] == 0
    dump(board / "submissions" / "math-then-code" / "zz-copied-by-hand.json", twin)
    rc, out = cli(capsys, "leaderboard", "build", "--board", str(board))
    assert rc == 1 and "zz-copied-by-hand.json: seed: es seed 0 is already on the board as es-seed0-" in out


@pytest.mark.parametrize("where", ["wall", "drift"])
def test_huge_finite_figures_are_refused_not_a_build_crash(filed_doc, tmp_path, capsys, where):
    """Two seeds of 1.7e308 wall seconds (or drift) overflowed the board's mean: build
    crashed with a traceback instead of naming the file."""
    board = tmp_path / "board"
    for seed in (0, 1):
        doc = copy.deepcopy(filed_doc)
        doc["seed"] = seed
        if where == "wall":
            doc["cost"]["wall_seconds"] = 1.7e308
        else:
            doc["geometry"]["code"]["drift_l2"]["overall"] = 1.7e308
        dump(board / "submissions" / "math-then-code" / f"es-seed{seed}.json", doc)
    rc, out = cli(capsys, "leaderboard", "build", "--board", str(board))
    message = ("cost.wall_seconds: Input should be less than or equal to" if where == "wall"
               else "geometry.code.drift_l2.overall: Input should be less than or equal to")
    assert rc == 1 and f"es-seed0.json: {message}" in out, out
    assert not (board / "README.md").exists()


def test_custom_reason_is_on_the_html_board_escaped(filed_doc, tmp_path, capsys):
    """The page shows why an entry is custom, as it does in the README, and as text only."""
    board = tmp_path / "board"
    doc = copy.deepcopy(filed_doc)
    doc["custom"] = "half the budget <script>alert(1)</script>"
    dump(board / "submissions" / "math-then-code" / "custom.json", doc)
    assert cli(capsys, "leaderboard", "build", "--board", str(board))[0] == 0
    page = (board / "index.html").read_text()
    assert "<li>C1 es " in page and "half the budget &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page


def _curve(key, value, index=-1):
    def f(doc):
        doc["curves"][index][key] = value
    return f


def _curve_score(value):
    def f(doc):
        point = doc["curves"][-1]
        point["scores"]["sort"] = value
    return f


def _schedule(every, index, step):
    def f(doc):
        doc["budget"]["eval_every"] = every
        doc["curves"][index]["step"] = step
    return f


# (id, edit of a committed entry's curves, text of the problem); matrix and summary untouched
TAMPERED_CURVES = [
    ("step-beyond-budget", _curve("step", 151), "curves[-1].step: step 151, global_step"),
    ("global-step-beyond-budget", _curve("global_step", 10**6), "beyond the budget run"),
    ("huge-reward", _curve("reward", -1e300), ".reward: Input should be greater than or equal to -1"),
    ("huge-drift", _curve("drift_l2_task", 1e300), ".drift_l2_task: Input should be less than or equal to 1"),
    ("edited-score", _curve_score(0.7312), "curves[-1].scores.sort: 0.7312 is not a whole number"),
    ("off-schedule", _schedule(25, index=1, step=13), "curves[1].step: step 13 is off the recorded schedule"),
]


@pytest.mark.parametrize("name,edit,message", TAMPERED_CURVES, ids=[t[0] for t in TAMPERED_CURVES])
def test_tampered_curve_is_refused(filed_doc, name, edit, message):
    """A learning curve is part of the entry: one edited point must not pass as a run's."""
    doc = copy.deepcopy(filed_doc)
    edit(doc)
    n = len(doc["curves"])
    problems = [p.replace(f"curves[{n - 1}]", "curves[-1]") for p in validate_doc(doc).problems]
    assert any(message in p for p in problems), problems
