"""The population backend and its workers are run settings (README, "ES"): the CLI puts
them in RunConfig, a run records them in `population_backend`, and entries recorded when
they were ES hyperparameters still validate, re-run and keep their fingerprints."""
import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from clbench.backends import BACKENDS
from clbench.config import split_legacy
from clbench.cli import build_parser
from clbench.cli_run import build_config
from clbench.config import Backend, SequenceSpec
from clbench.leaderboard.validate import method_deviations
from clbench.leaderboard.verify import run_args, with_population_settings
from clbench.registry import Registry
from clbench.results import RunResult
from conftest import cli_in_process

# The 75-step board's es seed-0 entry (commit 2e24fd2), recorded when the backend and its
# workers were ES hyperparameters: the board that replaced it records them as run settings.
OLD_ENTRY = Path(__file__).resolve().parent / "data" / "es-seed0-backend-in-config.json"


def _config(*flags):
    return build_config(build_parser().parse_args(["run", "--method", "es", "--sequence",
                                                   "math-then-code", *flags]))


def test_the_backend_table_and_the_schema_name_the_same_backends():
    assert set(BACKENDS) == set(Backend.__args__)


def test_backend_flags_and_the_old_set_keys_become_run_settings():
    cfg = _config("--backend", "inprocess", "--workers", "3", "--set", "sigma=0.02")
    assert (cfg.backend, cfg.workers, cfg.method_config) == ("inprocess", 3, {"sigma": 0.02})
    old = _config("--set", "backend=ray", "--set", "workers=4", "--set", "sigma=0.02")
    assert (old.backend, old.workers, old.method_config) == ("ray", 4, {"sigma": 0.02})
    both = _config("--backend", "inprocess", "--set", "backend=ray")  # the flag wins
    assert both.backend == "inprocess" and both.method_config == {}
    assert _config().backend is None and _config().workers == 2  # None: the sequence's, else local


def test_a_method_that_declares_workers_keeps_it_as_its_hyperparameter():
    class Own(BaseModel):
        workers: int = 1

    assert split_legacy({"workers": 8, "backend": "ray"}, Own) == ({"workers": 8}, {"backend": "ray"})


@pytest.mark.parametrize("flag, needle", [(("--set", "backend=gpu-farm"), "backend"),
                                          (("--workers", "0"), "workers"),
                                          (("--backend", "gpu-farm"), "backend")])
def test_a_bad_backend_or_worker_count_is_exit_2_naming_the_field(tmp_path, flag, needle):
    out = tmp_path / "run"
    r = cli_in_process("run", "--method", "es", "--sequence", "math-then-code", "--output", out, *flag)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()  # refused before the run folder is written


def test_an_unset_backend_leaves_every_sequence_fingerprint_as_it_was():
    reg = Registry.load()
    seq = reg.sequence("math-then-code")
    assert "backend" not in json.loads(seq.fingerprint_json())
    assert seq.fingerprint_json() == seq.model_dump_json(exclude={"backend"})
    chosen = SequenceSpec.model_validate({**seq.model_dump(), "backend": "inprocess"})
    assert json.loads(chosen.fingerprint_json())["backend"] == "inprocess"
    assert reg.sequence("countdown-full").backend == "inprocess"  # moved out of its es config
    assert "backend" not in reg.sequence("countdown-full").method_config["es"]


def test_an_entry_recorded_with_the_backend_in_its_es_config_validates_and_reruns_as_before():
    reg = Registry.load()
    path = OLD_ENTRY
    doc = json.loads(path.read_text())
    assert doc["method"]["config"]["backend"] == "local" and "population_backend" not in doc
    r = RunResult.read(path)
    assert method_deviations(r, reg) == []
    args = run_args(r, reg)
    assert args[args.index("--backend") + 1] == "local" and args[args.index("--workers") + 1] == "2"
    assert not any(a.startswith(("backend=", "workers=")) for a in args)
    now = with_population_settings(doc, reg)
    assert now["population_backend"] == {"name": "local", "workers": 2}
    assert "backend" not in now["method"]["config"] and "workers" not in now["method"]["config"]
    assert doc["method"]["config"]["backend"] == "local"  # the entry itself is left as it was
    RunResult.model_validate(now, strict=True)


def test_entries_before_and_after_the_move_share_a_board_row():
    from clbench.leaderboard.build import group_key

    reg = Registry.load()
    doc = json.loads(OLD_ENTRY.read_text())
    old, new = RunResult.model_validate(doc), RunResult.model_validate(with_population_settings(doc, reg))
    assert group_key(old, reg) == group_key(new, reg)
    assert '"backend"' not in group_key(old, reg)[2]  # the row shows hyperparameters only
    other = RunResult.model_validate({**doc, "method": {**doc["method"], "config": {
        **doc["method"]["config"], "sigma": 0.03}}})
    assert group_key(other, reg) != group_key(old, reg)


@pytest.mark.parametrize("change, needle", [
    ({"config": {"backend": "gpu-farm"}}, "method.config.backend"),
    ({"config": {"workers": 0}}, "method.config.workers"),
    ({"population_backend": {"name": "local", "workers": 2}}, "one place"),
])
def test_an_old_entry_s_run_settings_are_still_checked(change, needle):
    reg = Registry.load()
    doc = json.loads(OLD_ENTRY.read_text())
    doc["method"]["config"].update(change.get("config", {}))
    doc.update({k: v for k, v in change.items() if k != "config"})
    found = method_deviations(RunResult.model_validate(doc), reg)
    assert any(needle in d for d in found), found
