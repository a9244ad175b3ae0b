import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import contextlib  # noqa: E402
import io  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


def cli_in_process(*args) -> subprocess.CompletedProcess:
    """`clbench ARGS` through `clbench.cli.main` in this process, output captured: for the
    CLI's bad-input paths, which stop before any model work, where a subprocess would
    only add seconds of imports. An uncaught exception fails the test here, as a
    traceback would in a subprocess."""
    from clbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse's own usage errors
            code = e.code if isinstance(e.code, int) else 1
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def embedded():
    from clbench.model import load_model

    return load_model("embedded")


@pytest.fixture(scope="session")
def harness(embedded):
    from clbench.harness import Harness

    return Harness(embedded.model, embedded.tokenizer)


SHORT_RUN = ["--method", "es", "--sequence", "math-then-code", "--steps", "1", "--eval-every", "1",
             "--curve-examples", "4", "--set", "population=4", "--set", "batch_size=16",
             "--backend", "inprocess"]


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    """One real, short ES run per session, shared by test_leaderboard and test_report.

    Full test-split evaluation (no --eval-limit), so row 0 is the registered base
    scores; one step per task, so as run it departs from the budget (a custom entry)."""
    from test_runner import clbench

    out = tmp_path_factory.getbasetemp() / "short-es-run"
    p = clbench("run", *SHORT_RUN, "--output", str(out))
    (out.parent / "short-es-run.stdout").write_text(p.stdout)
    return out
