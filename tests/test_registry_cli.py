"""Registry behaviour and the CLI's handling of bad input."""
import json
import sys

import pytest

from clbench.config import SequenceSpec
from clbench.registry import Registry, UnknownName
from conftest import cli_in_process


cli = cli_in_process  # every test here ends before a run: no subprocess needed


def test_builtins_come_from_entry_points_with_origin():
    reg = Registry.load()
    assert {"countdown", "code", "cipher", "sort", "reverse", "sort-choice"} <= set(reg.tasks)
    assert {"math-then-code", "math-code-cipher"} <= set(reg.sequences)
    assert reg.methods["es"].origin.startswith("clbench ")
    assert reg.sequence("math-code-cipher").tasks == ["countdown", "code", "cipher"]


def test_unknown_name_lists_known_ones():
    with pytest.raises(UnknownName, match="known: .*math-then-code"):
        Registry.load().sequence("math-then-cod")


def test_sequence_spec_rejects_typos_and_duplicates():
    base = {"name": "x", "tasks": ["countdown"], "budget": {"steps": 1, "completions": 1}}
    SequenceSpec(**base)
    with pytest.raises(ValueError, match="stepz"):
        SequenceSpec(**{**base, "budget": {"stepz": 1, "completions": 1}})
    with pytest.raises(ValueError, match="only once"):
        SequenceSpec(**{**base, "tasks": ["countdown", "countdown"]})


def test_cli_list_shows_all_three_kinds():
    p = cli("list")
    assert p.returncode == 0
    for word in ("methods", "tasks", "sequences", "math-then-code", "sort-choice", "clbench"):
        assert word in p.stdout


def test_cli_eval_writes_scores_json(tmp_path):
    out = tmp_path / "s.json"
    p = cli("eval", "--tasks", "sort,cipher", "--limit", "10", "--output", str(out))
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    assert doc["model"] == "embedded" and set(doc["scores"]) == {"sort", "cipher"}
    assert all(0.0 <= v <= 1.0 for v in doc["scores"].values())


@pytest.mark.parametrize("args,needle", [
    (["eval", "--sequence", "nope"], "known: "),
    (["eval", "--tasks", "sort,nope"], "unknown task 'nope'"),
    (["eval"], "exactly one of --sequence"),
    (["eval", "--tasks", "sort", "--model", "/nonexistent/model"], "model:"),
    (["eval", "--tasks", "sort", "--limit", "0"], "at least 1"),
    (["eval", "--tasks", "nosuchtask", "--allow-lm-eval", "--limit", "2"], "lm-eval could not load"),
])
def test_cli_bad_input_exit_2_no_traceback(args, needle):
    p = cli(*args)
    assert p.returncode == 2, p.stderr
    assert needle in p.stderr and "Traceback" not in p.stderr


def test_a_plugin_cannot_take_a_builtin_name_or_register_a_bad_one(monkeypatch):
    """Entry points load built-ins first (a plugin entry point 'aaa' giving a method named
    'es' used to replace ES); a missing or path-like name and a Config that is not a
    MethodConfig are skipped with a warning instead of crashing every command."""
    import types
    from importlib.metadata import EntryPoint

    import clbench.registry as registry
    from clbench.method import Method

    mod = types.ModuleType("hostile_plugin")
    mod.Hijack = type("Hijack", (Method,), {"name": "es"})
    mod.NoName = type("NoName", (Method,), {})
    mod.PathName = type("PathName", (Method,), {"name": "../../etc"})
    mod.PlainConfig = type("PlainConfig", (Method,), {"name": "plain-config", "Config": dict})
    monkeypatch.setitem(sys.modules, "hostile_plugin", mod)
    real = registry.entry_points

    def entry_points(group):
        extra = [EntryPoint(n, f"hostile_plugin:{c}", group) for n, c in
                 [("aaa", "Hijack"), ("nn", "NoName"), ("pn", "PathName"), ("pc", "PlainConfig")]]
        return list(real(group=group)) + (extra if group == registry.METHODS_GROUP else [])

    monkeypatch.setattr(registry, "entry_points", entry_points)
    try:
        with pytest.warns(UserWarning) as caught:
            reg = Registry.load(refresh=True)
        assert reg.methods["es"].origin.startswith("clbench ")
        assert not {"../../etc", "plain-config"} & set(reg.methods)
        said = " ".join(str(w.message) for w in caught)
        assert "'nn'" in said and "'../../etc'" in said and "MethodConfig" in said
    finally:
        monkeypatch.undo()
        Registry.load(refresh=True)


def test_eval_output_below_a_file_is_exit_2_before_scoring(tmp_path):
    (tmp_path / "afile").write_text("keep")
    p = cli("eval", "--tasks", "sort", "--limit", "2", "--output", str(tmp_path / "afile" / "s.json"))
    assert p.returncode == 2 and "--output" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert "scored in" not in p.stdout and (tmp_path / "afile").read_text() == "keep"


def test_register_base_of_a_model_no_sequence_names_is_exit_2():
    p = cli("leaderboard", "register-base", "--model", "Qwen/Qwen2.5-0.5B")
    assert p.returncode == 2 and "no built-in sequence names model" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and "embedded" in p.stderr
