"""Bad input that used to end in a traceback or leave files behind: each is now exit 2
with one line naming the flag, and nothing already on disk is lost (README "Standards")."""
import json
import shutil

import pytest
import torch

from clbench.model import EMBEDDED_DIR
from conftest import cli_in_process as cli


def _refused(p, needle):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert needle in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_a_torn_safetensors_file_is_exit_2_and_no_run_folder(tmp_path):
    model = tmp_path / "torn"
    shutil.copytree(EMBEDDED_DIR, model)
    (model / "model.safetensors").write_bytes(b"\xff" * 64)  # a header length far too large
    out = tmp_path / "run"
    p = cli("run", "--method", "es", "--sequence", "math-only", "--model", model, "--output", out)
    _refused(p, "model.safetensors is not a readable safetensors file")
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_on_a_cpu_machine_leaves_no_run_folder(tmp_path):
    out = tmp_path / "run"
    p = cli("run", "--method", "es", "--sequence", "math-only", "--device", "cuda", "--output", out)
    _refused(p, "device: cuda was asked for")
    assert not out.exists()  # so the corrected command is not told "not empty"


def test_a_resumed_config_with_a_wrong_field_names_it_on_one_line(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"method": "es", "sequence": "math-only", "seed": "x"}))
    p = cli("run", "--resume", folder)
    _refused(p, "seed: Input should be a valid integer")
    assert "errors.pydantic.dev" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_invalid_yaml_config_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: [es\nsequence: x\n")
    p = cli("run", "--config", bad)
    _refused(p, "--config: cannot read")
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


@pytest.mark.parametrize("flags,needle", [
    (["--seed", str(10**24)], "--seed: Input should be less than or equal to 4294967295"),
    (["--lr", "inf"], "--lr: Input should be a finite number"),
])
def test_pretrain_refuses_a_value_torch_cannot_take_before_training(tmp_path, flags, needle):
    out = tmp_path / "m"
    _refused(cli("pretrain-base", "--output", out, *flags), needle)
    assert not out.exists()


def test_pretrain_never_replaces_a_folder_it_did_not_write(tmp_path):
    keep = tmp_path / "notes"
    keep.mkdir()
    (keep / "mine.txt").write_text("keep")
    _refused(cli("pretrain-base", "--output", keep, "--steps", "1"), "holds no pretrained model")
    assert (keep / "mine.txt").read_text() == "keep"
    (tmp_path / "afile").write_text("keep")
    _refused(cli("pretrain-base", "--output", tmp_path / "afile" / "m", "--steps", "1"), "is a file")


def test_a_board_below_a_file_or_with_a_page_folder_is_exit_2(tmp_path):
    (tmp_path / "afile").write_text("keep")
    _refused(cli("leaderboard", "build", "--board", tmp_path / "afile" / "b"), "is a file")
    board = tmp_path / "b"
    (board / "index.html").mkdir(parents=True)
    (board / "README.md").write_text("the old page")
    _refused(cli("leaderboard", "build", "--board", board), "index.html is a folder")
    assert (board / "README.md").read_text() == "the old page"  # not half-rewritten


@pytest.mark.parametrize("reason", ["", "two\nlines", "x" * 201])
def test_a_bad_custom_reason_is_a_usage_error(tmp_path, reason):
    run = tmp_path / "result.json"
    run.write_text("{}")
    _refused(cli("submit", run, "--board", tmp_path / "b", "--custom", reason), "--custom needs a reason")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("flag,value,needle", [
    ("--workers", "100000000", "workers: Input should be less than or equal to 1024"),
    ("--steps", str(10**23), "steps: Input should be less than or equal to 1000000"),
])
def test_absurd_run_sizes_are_refused_before_the_run_folder(tmp_path, flag, value, needle):
    out = tmp_path / "run"
    _refused(cli("run", "--method", "es", "--sequence", "math-only", flag, value, "--output", out), needle)
    assert not out.exists()
