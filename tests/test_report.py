"""`clbench report`: every figure for one run and for two runs overlaid; the Pareto front."""
import json
import shutil

from clbench.report import _pareto_front, build_report
from test_runner import clbench

FIGURES = ["curves.png", "matrix_0.png", "pareto.png", "drift.png", "sparsity.png"]


def test_pareto_front_by_hand():
    pts = [(1, 5), (2, 4), (3, 1), (2, 2), (1, 1), (2, 4)]
    assert _pareto_front(pts) == [(1, 5), (2, 4), (3, 1)]


def test_run_prints_the_report_command(run_dir):
    out = (run_dir.parent / "short-es-run.stdout").read_text()
    assert f"clbench report {run_dir}" in " ".join(out.split())


def test_report_one_run(run_dir, tmp_path):
    p = clbench("report", str(run_dir), "--output", str(tmp_path / "rep"))
    assert "report.html" in p.stdout
    for f in FIGURES:
        data = (tmp_path / "rep" / f).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, f
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(FIGURES)
    for title in ("curves", "matrix_0", "pareto", "drift", "sparsity"):
        assert f"<h2>{title}</h2>" in page
    assert "http" not in page.replace("<!doctype html>", "")  # self-contained


def test_report_two_runs_overlaid_and_reproducible(run_dir, tmp_path):
    other = tmp_path / "other-run"
    shutil.copytree(run_dir, other, ignore=shutil.ignore_patterns("checkpoint", "report"))
    r = json.loads((other / "result.json").read_text())
    for c in r["curves"]:  # a second, different run: lower probe scores
        c["scores"]["sort"] = max(0.0, c["scores"]["sort"] - 0.2)
    (other / "result.json").write_text(json.dumps(r))
    page = build_report([run_dir, other], tmp_path / "a")
    assert (tmp_path / "a" / "matrix_1.png").exists()
    html = page.read_text()
    assert html.count('src="data:image/png;base64,') == len(FIGURES) + 1
    assert run_dir.name in html and "other-run" in html
    build_report([run_dir, other], tmp_path / "b")
    for f in FIGURES + ["matrix_1.png", "report.html"]:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
