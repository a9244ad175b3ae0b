"""The runner with ES on a short budget: determinism, resume, CLI errors."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import cli_in_process  # noqa: E402

QUICK = ["--steps", "3", "--eval-every", "1", "--eval-limit", "16",
         "--set", "population=4", "--set", "batch_size=16", "--backend", "inprocess"]


def clbench(*args, check=True, timeout=600):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-m", "clbench", *args], capture_output=True,
                       text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"clbench {' '.join(args)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p


def numbers(out: Path) -> dict:
    r = json.loads((out / "result.json").read_text())
    for key in ("cost",):
        r[key] = {k: v for k, v in r[key].items()
                  if k not in ("wall_seconds", "peak_rss_bytes", "peak_rss_children_bytes")}
    r.pop("environment")
    return r


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "a"
    clbench("run", "--method", "es", "--sequence", "math-then-code", "--output", str(out), *QUICK)
    return out


def test_result_has_matrix_summary_curves_geometry(quick_run):
    r = json.loads((quick_run / "result.json").read_text())
    m = r["matrix"]
    assert m["rows"] == ["base", "countdown", "code"]
    assert m["columns"] == ["countdown", "code", "sort", "reverse", "min-choice"]
    assert len(m["values"]) == 3 and all(len(row) == 5 for row in m["values"])
    assert r["summary"]["bwt"] == pytest.approx(m["values"][2][0] - m["values"][1][0])
    assert [c["global_step"] for c in r["curves"]] == [0, 1, 2, 3, 3, 4, 5, 6]
    assert [c["step"] for c in r["curves"]] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert r["curves"][0]["drift_l2"] == 0.0 and r["curves"][0]["sparsity"] == 1.0
    # a step whose members all score alike has z-scores of 0 and moves nothing; some must move
    assert r["curves"][-1]["drift_l2"] > 0 and min(c["sparsity"] for c in r["curves"]) < 0.5
    assert r["cost"]["members_scored"] == 4 * 3 * 2 and r["cost"]["completions"] == 4 * 16 * 3 * 2
    assert r["budget"]["steps_per_task"] == {"countdown": 3, "code": 3}
    assert set(r["geometry"]) == {"countdown", "code"}
    assert r["environment"]["torch"] and r["seed"] == 0


@pytest.mark.slow
@pytest.mark.ci
def test_same_seed_twice_gives_identical_numbers(quick_run, tmp_path):
    clbench("run", "--method", "es", "--sequence", "math-then-code", "--output", str(tmp_path / "b"), *QUICK)
    assert numbers(tmp_path / "b") == numbers(quick_run)


@pytest.mark.slow
@pytest.mark.ci
def test_sigkill_then_resume_equals_uninterrupted(quick_run, tmp_path):
    out = tmp_path / "k"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "clbench", "run", "--method", "es", "--sequence",
                             "math-then-code", "--output", str(out), *QUICK],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    state = out / "checkpoint" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline:  # kill once the second task has a checkpoint mid-way
        if state.exists():
            st = json.loads(state.read_text())
            if st["task_index"] == 1 and st["step_in_task"] >= 1:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "result.json").exists()
    done = json.loads(state.read_text())["global_step"]
    clbench("run", "--resume", str(out))
    assert numbers(out) == numbers(quick_run)
    log = json.loads((out / "processes.json").read_text())
    assert log == [{"resumed": True, "steps": 6 - done}]


def test_bad_method_key_exits_2_and_writes_nothing(tmp_path):
    p = cli_in_process("run", "--method", "es", "--sequence", "math-then-code", "--output", str(tmp_path / "x"),
                "--set", "sigmaa=0.1")
    assert p.returncode == 2 and "sigmaa" in p.stderr and "sigma" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "x").exists()


def test_unknown_names_exit_2_listing_known(tmp_path):
    p = cli_in_process("run", "--method", "nope", "--sequence", "math-then-code")
    assert p.returncode == 2 and "known: " in p.stderr and "es" in p.stderr
    p = cli_in_process("run", "--method", "es", "--sequence", "nope")
    assert p.returncode == 2 and "math-then-code" in p.stderr


def test_existing_output_is_never_overwritten(quick_run):
    before = (quick_run / "result.json").read_bytes()
    p = cli_in_process("run", "--method", "es", "--sequence", "math-then-code", "--output", str(quick_run),
                *QUICK)
    assert p.returncode == 2 and "--resume" in p.stderr
    assert (quick_run / "result.json").read_bytes() == before


@pytest.mark.ci
@pytest.mark.slow
def test_ci_smoke_es_local_backend_end_to_end(tmp_path):
    """The main command with the default (local, 2-worker) backend, a few steps."""
    out = tmp_path / "smoke"
    clbench("run", "--method", "es", "--sequence", "math-then-code", "--output", str(out),
            "--steps", "4", "--eval-every", "2", "--eval-limit", "32")
    r = json.loads((out / "result.json").read_text())
    assert r["population_backend"] == {"name": "local", "workers": 2}
    assert "backend" not in r["method"]["config"]  # a run setting, not a hyperparameter
    assert r["cost"]["members_scored"] == 30 * 4 * 2
    assert r["curves"][-1]["drift_l2"] > 0
    from clbench.results import RunResult

    RunResult.read(out / "result.json")


def test_analyze_prints_the_drift_and_sparsity_of_result_json(quick_run):
    r = json.loads((quick_run / "result.json").read_text())
    last = r["geometry"]["code"]
    p = clbench("analyze", "embedded", str(quick_run))
    assert f"drift L2 {last['drift_l2']['overall']:.6f}" in p.stdout
    assert f"sparsity {100 * last['sparsity']['1e-06']['overall']:.2f}%" in p.stdout
    assert f"sparsity in bfloat16 {100 * last['sparsity_bf16']['1e-06']['overall']:.2f}%" in p.stdout


def test_resume_of_a_finished_run_is_refused(quick_run):
    p = cli_in_process("run", "--resume", str(quick_run))
    assert p.returncode == 2 and "already finished" in p.stderr


@pytest.mark.parametrize("args,needle", [
    (["--model", "/no/such/model"], "model:"),
    (["--steps", "0"], "steps"),
    (["--dtype", "fp8"], "dtype"),
    (["--set", "population=7"], "even"),
    (["--set", "sigma"], "KEY=VALUE"),
    (["--seed", "-1"], "seed: Input should be greater than or equal to 0"),
    (["--seed", str(2**32)], "seed: Input should be less than or equal to 4294967295"),
])
def test_bad_run_input_exit_2_and_nothing_written(args, needle, tmp_path):
    out = tmp_path / "never"
    p = cli_in_process("run", "--method", "es", "--sequence", "math-then-code", "--output", str(out), *args)
    assert p.returncode == 2, p.stderr
    assert needle in p.stderr and "Traceback" not in p.stderr
    assert not out.exists()


@pytest.mark.parametrize("files", [{"config.json": "{torn"}, {"config.json": '{"model_type": "llama"}'}],
                         ids=["torn-config", "no-weights"])
def test_model_folder_that_cannot_load_exit_2_and_nothing_written(tmp_path, files):
    """Only config.json's existence was checked: the run folder was written, then loading
    failed, and the retry was told to --resume a run that could never start."""
    model = tmp_path / "model"
    model.mkdir()
    for name, text in files.items():
        (model / name).write_text(text)
    out = tmp_path / "never"
    p = cli_in_process(*RUN, "--model", str(model), "--output", str(out))
    assert p.returncode == 2 and "model:" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not out.exists()


def test_output_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("keep me")
    p = cli_in_process("run", "--method", "es", "--sequence", "math-then-code", "--output", str(f))
    assert p.returncode == 2 and "is a file" in p.stderr and f.read_text() == "keep me"


def test_resume_with_a_corrupt_config_exit_2(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    p = cli_in_process("run", "--resume", str(tmp_path))
    assert p.returncode == 2 and "config.json" in p.stderr and "Traceback" not in p.stderr


def _run_folder(path: Path, **config) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    cfg = {"method": "es", "sequence": "math-then-code", "output": str(path), **config}
    (path / "config.json").write_text(json.dumps(cfg))
    return path


def test_resume_writes_into_the_folder_it_was_given(tmp_path, monkeypatch, capsys):
    """config.json's output is where the run was started (relative to that working
    directory); a moved folder resumed into that other, maybe existing, folder."""
    import clbench.runner
    from clbench.cli import main

    seen = {}

    class Recorder:
        def __init__(self, cfg, console=None):
            seen["output"] = cfg.output

        def run(self, resume=False):
            raise KeyboardInterrupt  # stop before any model work

    monkeypatch.setattr(clbench.runner, "Runner", Recorder)
    moved = _run_folder(tmp_path / "moved", output=str(tmp_path / "elsewhere"))
    assert main(["run", "--resume", str(moved)]) == 130
    assert seen["output"] == str(moved) and not (tmp_path / "elsewhere").exists()


def test_resume_refuses_flags_it_would_ignore(tmp_path):
    folder = _run_folder(tmp_path / "r")
    p = cli_in_process("run", "--resume", str(folder), "--steps", "5", "--set", "sigma=0.1")
    assert p.returncode == 2 and "drop --steps, --set" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("damage", ["state", "weights"])
def test_resume_with_a_damaged_checkpoint_exit_2(tmp_path, damage):
    folder = _run_folder(tmp_path / "r")
    ck = folder / "checkpoint"
    ck.mkdir()
    (ck / "state.json").write_text("{torn" if damage == "state" else "{}")
    (ck / "weights.safetensors").write_bytes(b"not safetensors")
    p = cli_in_process("run", "--resume", str(folder))
    assert p.returncode == 2 and f"--resume: {ck} is damaged" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and sorted(ck.iterdir()) == [ck / "state.json", ck / "weights.safetensors"]


def test_checkpoint_method_state_is_not_unpickled_as_code(embedded, tmp_path):
    """method.pt went through torch.load(weights_only=False): an edited one ran code."""
    from clbench.checkpoint import Checkpointer, RunState
    from clbench.errors import UserError
    from clbench.method import Method
    from clbench.model import param_copy

    ck = Checkpointer(tmp_path)
    ck.save(embedded.model, param_copy(embedded.model), RunState.fresh(), {"step": torch.ones(1)})
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('x')",))

    torch.save({"step": Payload()}, ck.dir / "method.pt")
    with pytest.raises(UserError, match="method.pt is not a method state"):
        ck.load(embedded.model, Method(Method.Config()))
    assert not marker.exists()


@pytest.mark.parametrize("case", ["corrupt", "reshaped", "tau"])
def test_analyze_bad_input_exit_2_naming_it(embedded, tmp_path, capsys, case):
    """A torn checkpoint, one of another shape under the same names, or a negative --tau
    gave a traceback (or a sparsity of 0 printed as if measured)."""
    from safetensors.torch import save_file

    from clbench.cli import main

    ck = tmp_path / "run" / "checkpoint"
    ck.mkdir(parents=True)
    weights = {n: p.detach().clone() for n, p in embedded.model.named_parameters()}
    first = next(iter(weights))
    if case == "corrupt":
        (ck / "weights.safetensors").write_bytes(b"not safetensors")
    else:
        save_file({**weights, first: weights[first][:5].contiguous()}, str(ck / "weights.safetensors"))
    args = ["analyze", "embedded", str(tmp_path / "run")] + (["--tau", "-1"] if case == "tau" else [])
    try:
        rc = main(args)
    except SystemExit as e:  # argparse's usage error
        rc = e.code
    err = capsys.readouterr().err
    needle = {"corrupt": "is not readable safetensors", "reshaped": f"({first}: (99, 192) vs (5, 192))",
              "tau": "argument --tau: '-1': give a finite threshold >= 0"}[case]
    assert rc == 2 and needle in err and "Traceback" not in err, err


def test_report_of_a_folder_whose_result_json_is_a_folder_exit_2(tmp_path):
    (tmp_path / "run" / "result.json").mkdir(parents=True)
    p = cli_in_process("report", str(tmp_path / "run"))
    assert p.returncode == 2 and "has no result.json" in p.stderr and "Traceback" not in p.stderr


RUN = ["run", "--method", "es", "--sequence", "math-then-code"]


@pytest.mark.parametrize("args,config,needle", [
    (["--set", "sigma=[1"], None, "--set 'sigma=[1': the value is not valid YAML"),
    (["--set", "=5"], None, "--set '=5': write KEY=VALUE"),
    (["--set", "sigma=.inf"], None, "method_config.sigma: Input should be a finite number"),
    (["--set", "alpha=.nan"], None, "method_config.alpha: Input should be a finite number"),
    ([], "method_config: 5\n", "--config: method_config must be a mapping"),
    ([], "method_config: abc\n", "--config: method_config must be a mapping"),
    ([], "method_config: {1: 2}\n", "--config: method_config keys are hyperparameter names; got 1"),
    ([], b"\xff\xfe method: es\n", "--config: cannot read"),
], ids=["set-bad-yaml", "set-empty-key", "set-inf", "set-nan", "config-int", "config-str",
        "config-int-key", "config-not-utf8"])
def test_bad_run_input_is_exit_2_naming_the_field(tmp_path, args, config, needle):
    if config is not None:
        (tmp_path / "c.yaml").write_bytes(config if isinstance(config, bytes) else config.encode())
        args = ["--config", str(tmp_path / "c.yaml")]
    p = cli_in_process(*RUN, *args, "--output", str(tmp_path / "o"))
    assert p.returncode == 2 and needle in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "o").exists()


def test_output_below_a_file_is_exit_2_and_keeps_the_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("keep me")
    p = cli_in_process(*RUN, "--output", str(f / "run"))
    assert p.returncode == 2 and "--output: cannot create" in p.stderr and "Traceback" not in p.stderr
    assert f.read_text() == "keep me"


def test_report_writes_figures_and_a_self_contained_page(quick_run, tmp_path):
    out = tmp_path / "rep"
    clbench("report", str(quick_run), "--output", str(out))
    names = ("curves.png", "matrix_0.png", "pareto.png", "drift.png", "sparsity.png")
    for name in names:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()  # every figure inlined: one self-contained file
    assert page.count("data:image/png;base64,") == len(names) and "math-then-code" in page


def test_report_rejects_a_tampered_result(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "result.json").write_text('{"schema_version": 1, "seed": "x"}')
    p = cli_in_process("report", str(bad))
    assert p.returncode == 2 and "not a valid RunResult" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("bad", [float("nan"), "1.0", None])
def test_a_score_that_is_no_valid_score_is_exit_2_naming_the_task(tmp_path, capsys, monkeypatch, bad):
    """A plugin's score() giving a NaN reward (or not a Score at all) used to average into
    rewards and accuracies silently (eval) or surface mid-run; now run refuses before
    writing anything and eval says which task, both exit 2."""
    from clbench.cli import main
    from clbench.registry import Registry
    from clbench.task import Score

    task = Registry.load().task("countdown")
    monkeypatch.setattr(task, "score", lambda item, c: bad if bad is None else Score(reward=bad, correct=False))
    rc = main(["run", "--method", "es", "--sequence", "math-then-code", "--output", str(tmp_path / "o"), *QUICK])
    err = capsys.readouterr().err
    assert rc == 2 and "'countdown'" in err and "Score(reward=" in err, err
    assert not (tmp_path / "o").exists()
    assert main(["eval", "--tasks", "countdown", "--limit", "2"]) == 2
    assert "'countdown'" in capsys.readouterr().err


def test_a_generator_that_repeats_itself_is_a_user_error_naming_the_task():
    import random

    from clbench.errors import UserError
    from clbench.task import TaskFamily

    class Same(TaskFamily):
        name = "same"

        def sample(self, rng: random.Random) -> dict:
            return {"prompt": "1+1=", "target": "2"}

    with pytest.raises(UserError, match="'same'.*distinct items"):
        Same().splits
