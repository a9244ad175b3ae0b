"""`clbench leaderboard verify`: a re-run exposes the lies no check on the file can see.

One real short run (custom budget: 1 step per task, 8 test items per column) is filed;
copies of it that still validate (rows raised with the summary recomputed, the seed
relabelled, the method renamed, cost counts shrunk, a curve smoothed) must each be
refused with the differing field named, and the true entry verified bit for bit.
"""
import copy
import json
from pathlib import Path

import pytest
from test_leaderboard import cli, dump, resummarize
from test_runner import clbench

from clbench.leaderboard.validate import validate_doc

TINY = ["--method", "es", "--sequence", "math-then-code", "--steps", "1", "--eval-every", "1",
        "--eval-limit", "8", "--curve-examples", "4", "--set", "population=4", "--set", "batch_size=16",
        "--backend", "inprocess"]


@pytest.fixture(scope="module")
def entry(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify") / "run"
    clbench("run", *TINY, "--output", str(out))
    doc = json.loads((out / "result.json").read_text())
    doc["custom"] = "verify test: 1 step per task, 8 test items"
    assert validate_doc(doc).ok
    return doc


def _raise_rows(d):
    for row in d["matrix"]["values"][1:]:
        row[:] = [min(1.0, v + 0.125) for v in row]  # 8 items per column: 1/8 steps stay valid
    resummarize(d)


def _smooth(d):
    """A running maximum, and (this tiny run's curve is flat) its last point one dev item higher."""
    best = {}
    for c in d["curves"]:
        for k, v in c["scores"].items():
            best[k] = c["scores"][k] = max(best.get(k, 0.0), v)
    last = d["curves"][-1]["scores"]
    task = d["curves"][-1]["task"]
    last[task] = min(1.0, last[task] + 1 / d["budget"]["curve_examples"])


LIES = {
    "raised-rows": (_raise_rows, "matrix.values[1]"),
    "relabelled-seed": (lambda d: d.update(seed=1), ""),
    "renamed-method": (lambda d: d["method"].update(name="es-sparse", version=2), "geometry.countdown"),
    "shrunk-counts": (lambda d: d["cost"].update(forward_tokens=d["cost"]["forward_tokens"] // 100),
                      "cost.forward_tokens"),
    "smoothed-curve": (_smooth, "curves["),
}


@pytest.mark.slow
@pytest.mark.ci
def test_verify_confirms_the_true_entry_and_refuses_each_lie(entry, tmp_path, capsys):
    board = tmp_path / "board"
    true = dump(tmp_path / "true.json", entry)
    files = {}
    for name, (edit, _) in LIES.items():
        doc = copy.deepcopy(entry)
        edit(doc)
        assert validate_doc(doc).ok, (name, validate_doc(doc).problems)  # the file alone looks fine
        if doc == entry:
            pytest.fail(f"{name}: the edit changed nothing")
        files[name] = dump(tmp_path / f"{name}.json", doc)
    # one pass over all of them: files with the same settings share one re-run
    rc, out = cli(capsys, "leaderboard", "verify", str(true), *map(str, files.values()),
                  "--record", "--board", str(board))
    lines = {Path(ln.split(": ")[0]).stem: ln for ln in out.splitlines() if ln.startswith(str(tmp_path))}
    assert rc == 1 and ": verified: " in lines["true"], out
    for name, (_, field) in LIES.items():
        assert ": differs: " in lines[name] and field in lines[name].split(": differs: ")[1], (name, out)
    record = json.loads((board / "verified" / "true.json").read_text())
    assert record["verdict"] == "verified" and record["environment"]["git_commit"] == entry["environment"]["git_commit"]
    assert json.loads((board / "verified" / "raised-rows.json").read_text())["verdict"] == "differs"
    # a resumed pass skips what it verified
    rc, out = cli(capsys, "leaderboard", "verify", str(true), "--record", "--board", str(board))
    assert rc == 0 and "verified earlier" in out


def test_an_entry_that_predates_a_config_field_verifies(entry, tmp_path, capsys):
    """ES gained `shaping` after entries were filed: an entry without it was run at the
    behaviour the default keeps, so its re-run at the default is the same run."""
    doc = copy.deepcopy(entry)
    assert doc["method"]["config"].pop("shaping") == "zscore"
    rc, out = cli(capsys, "leaderboard", "verify", str(dump(tmp_path / "old.json", doc)))
    assert rc == 0 and ": verified: " in out, out


def test_a_report_names_every_section_that_differs():
    from clbench.leaderboard.verify import differences, fields_the_entry_predates

    a = {"matrix": {"values": [[0.5]]}, "summary": {"bwt": 0.0}, "seed": 0, "cost": {"wall_seconds": 1}}
    b = {"matrix": {"values": [[0.6]]}, "summary": {"bwt": 0.1}, "seed": 0, "cost": {"wall_seconds": 9}}
    assert differences(a, b) == ["matrix.values[0][0]: 0.5 in the entry, 0.6 in the re-run",
                                 "summary.bwt: 0.0 in the entry, 0.1 in the re-run"]
    assert differences(a, {**a, "extra": 1}) == ["extra: in the re-run, not in the entry"]
    # only a missing field the re-run holds at the installed default is filled in
    assert fields_the_entry_predates({"alpha": 0.01}, {"alpha": 0.01, "shaping": "zscore", "lam": 2},
                                     {"alpha": 0.005, "shaping": "zscore", "lam": 1}) == {"shaping": "zscore"}


def test_a_difference_on_another_cpu_kind_is_not_called_a_lie(entry):
    """Matrix kernels may round differently on another CPU kind: es-guided's board seed 0,
    re-run at the same python, torch and lm_eval on an AVX-512 machine, gave the same
    matrix and drift that differs in the ninth digit. Only the same CPU kind may say
    "differs"; an entry that predates the `cpu` field cannot say which kind it ran on."""
    import torch

    from clbench.leaderboard.verify import environment_mismatch
    from clbench.results import RunResult

    assert entry["environment"]["cpu"].endswith(f"({torch.backends.cpu.get_cpu_capability()})")
    assert environment_mismatch(RunResult.model_validate(entry)) == []
    other = copy.deepcopy(entry)
    other["environment"]["cpu"] = "Some CPU family 6 model 1 (AVX2)"
    assert environment_mismatch(RunResult.model_validate(other)) == [
        f"cpu Some CPU family 6 model 1 (AVX2) in the entry, {entry['environment']['cpu']} here"]
    older = copy.deepcopy(entry)
    del older["environment"]["cpu"]
    assert validate_doc(older).ok  # a committed entry from before the field still validates
    assert environment_mismatch(RunResult.model_validate(older)) == [
        f"cpu not recorded in the entry, {entry['environment']['cpu']} here"]


def test_an_entry_that_cannot_be_rerun_is_exit_2(entry, tmp_path, capsys):
    doc = copy.deepcopy(entry)
    doc["method"]["name"] = "no-such-method"
    f = dump(tmp_path / "plugin.json", doc)
    rc, out = cli(capsys, "leaderboard", "verify", str(f))
    assert rc == 2 and "cannot re-run" in out and "not installed" in out


def test_board_counts_verified_seeds_only_for_the_bytes_verified(entry, tmp_path, capsys):
    from clbench.leaderboard.verify import Outcome, record

    board = tmp_path / "board"
    sub = board / "submissions" / "math-then-code"
    a = dump(sub / "es-seed0-a.json", entry)
    record(a, Outcome("verified"), board)
    assert cli(capsys, "leaderboard", "build", "--board", str(board))[0] == 0
    assert "| 1/1 |" in (board / "README.md").read_text()
    edited = copy.deepcopy(entry)
    edited["cost"]["wall_seconds"] += 1  # any change of bytes: the record no longer applies
    dump(a, edited)
    assert cli(capsys, "leaderboard", "build", "--board", str(board))[0] == 0
    assert "| 0/1 |" in (board / "README.md").read_text()
    assert not list(Path(sub).glob("*verified*"))
