"""A third-party package registers a method and a task through entry points."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).parent / "example_plugin"


def pip(*args):
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    build = tmp_path_factory.mktemp("plugin")
    pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(PLUGIN), "--target", str(build))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(build), os.environ.get("PYTHONPATH")]))}
    return env


def run(env, *args):
    return subprocess.run([sys.executable, "-m", "clbench", *args], capture_output=True, text=True,
                          env=env, timeout=600)


def test_list_shows_plugin_with_origin_and_warns_about_broken_one(installed_plugin):
    p = run(installed_plugin, "list")
    assert p.returncode == 0, p.stderr
    assert "hill-climb" in p.stdout and "upper" in p.stdout
    assert "clbench-example-plugin" in p.stdout
    assert "broken" in p.stderr and "clbench-example-plugin" in p.stderr  # named, not fatal


@pytest.mark.slow
@pytest.mark.ci
def test_plugin_method_and_task_run_through_the_common_runner(installed_plugin, tmp_path):
    """The plugin's method learns the plugin's task on the plugin's sequence, probed by
    built-in tasks; lm-eval scores the task from the class alone (no YAML)."""
    out = tmp_path / "hc"
    p = run(installed_plugin, "run", "--method", "hill-climb", "--sequence", "upper-only",
            "--steps", "2", "--eval-every", "2", "--eval-limit", "16", "--set", "batch_size=4",
            "--output", str(out))
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads((out / "result.json").read_text())
    assert r["method"]["name"] == "hill-climb" and r["method"]["config"]["batch_size"] == 4
    assert r["matrix"]["columns"] == ["upper", "sort", "reverse"] and len(r["matrix"]["values"]) == 2
    assert r["cost"]["members_scored"] == 2 * 2 and r["cost"]["completions"] == 2 * 2 * 4
    assert [c["step"] for c in r["curves"]] == [0, 2] and set(r["curves"][0]["scores"]) == {"upper", "sort", "reverse"}
    # the embedded base is registered, but not on the plugin's column: custom only, never a crash
    p = run(installed_plugin, "leaderboard", "validate", str(out / "result.json"))
    assert p.returncode == 1 and "no registered base score for column 'upper'" in p.stdout + p.stderr, p.stdout
    p = run(installed_plugin, "eval", "--tasks", "upper", "--limit", "8")
    assert p.returncode == 0 and "upper" in p.stdout, p.stderr[-2000:]
