"""leaderboard/build_next_board.py: staged files lie over the tree during a run, and go back after."""
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "leaderboard"))
import build_next_board as nb  # noqa: E402


def test_staged_files_are_laid_over_and_put_back_even_on_error(tmp_path, monkeypatch):
    tree = tmp_path / "tree"
    shutil.copytree(REPO / nb.MODEL, tree / nb.MODEL)  # same bytes: a killed test leaves the model as it was
    card = Path("clbench/assets/MODEL_CARD.md")
    (tree / card).write_text("staged card\n")
    (tree / "tasks/sequences").mkdir(parents=True)
    (tree / "tasks/sequences/zz-staged-only.yaml").write_text("name: zz\n")
    monkeypatch.setattr(nb, "TREE", tree)
    before = (REPO / card).read_text()
    with pytest.raises(RuntimeError):
        with nb.overlaid():
            assert (REPO / card).read_text() == "staged card\n"
            assert (REPO / "tasks/sequences/zz-staged-only.yaml").exists()
            assert (REPO / nb.MODEL / "config.json").exists()
            raise RuntimeError("a run failed")
    assert (REPO / card).read_text() == before
    assert not (REPO / "tasks/sequences/zz-staged-only.yaml").exists()
    assert (REPO / nb.MODEL / "model.safetensors").read_bytes() == (tree / nb.MODEL / "model.safetensors").read_bytes()


def test_nothing_staged_is_a_clear_stop(tmp_path, monkeypatch):
    monkeypatch.setattr(nb, "TREE", tmp_path / "empty")
    with pytest.raises(SystemExit, match="nothing staged"):
        with nb.overlaid():
            pass


def test_a_filed_standard_entry_is_skipped_and_a_custom_one_is_not(tmp_path):
    """A fresh clone has the committed submissions but not the run folders: the build must
    resume from the board, not re-run three hours of filed entries."""
    import argparse
    import json

    import build_first_board as fb

    sub = tmp_path / "submissions" / "math-then-code"
    sub.mkdir(parents=True)
    (sub / "es-awd-seed0-aaaa.json").write_text(json.dumps({"method": {"name": "es-awd"}, "seed": 0}))
    (sub / "es-seed1-bbbb.json").write_text(json.dumps({"method": {"name": "es"}, "seed": 1,
                                                        "custom": "smoke run"}))
    args = argparse.Namespace(board=str(tmp_path), sequence="math-then-code")
    assert fb.filed_entry("es-awd", 0, args) == sub / "es-awd-seed0-aaaa.json"
    assert fb.filed_entry("es", 0, args) is None      # es-awd's file is not es's
    assert fb.filed_entry("es", 1, args) is None      # a custom (smoke) entry does not count
    assert fb.filed_entry("es-awd", 1, args) is None
