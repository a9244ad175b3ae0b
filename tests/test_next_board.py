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
