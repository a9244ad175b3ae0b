"""Build leaderboard/README.md and leaderboard/index.html from the submissions.

Submissions are grouped by (method, method config, base model) and, for custom
entries, also by their budget and evaluation; each figure is the mean and sample
standard deviation over distinct seeds. Ranking is by the final score: the mean of
the last matrix row over all columns, new tasks and probes alike, so a method that
learns nothing cannot top the board by forgetting nothing. Inputs are read in
sorted order and every number has a fixed format, so the same submissions give
the same bytes.
"""
from __future__ import annotations

import hashlib
import html
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from clbench.atomic import write_text
from clbench.config import split_legacy
from clbench.registry import Registry
from clbench.leaderboard.registered import load_base_scores
from clbench.leaderboard.svg import scatter
from clbench.leaderboard.validate import validate_file
from clbench.leaderboard.verify import entry_sha256, verified_entries
from clbench.results import RunResult

RANKING_RULE = (
    "Entries are ranked by the **final score**: the mean over *all* columns (new tasks "
    "and held-out probes alike) of the last row of the accuracy matrix, on the full test "
    "splits, averaged over seeds. A method that learns nothing keeps its base-model "
    "scores and so ranks below any method that gains more on the new tasks than it loses "
    "on the probes. Figures are mean ± sample standard deviation over seeds (no ± with "
    "one seed); scores, ACC, BWT, forgetting (Chaudhry) and probe change are in points. "
    "Peak RSS is that of the run's largest process: the main process (which also holds "
    "the runner's base-weight copies) or, for ES's local backend, one population worker; "
    "that backend runs two workers beside the main process. **Verified** counts the seeds "
    "that `clbench leaderboard verify --record` re-ran bit for bit (matrix, summary, curves, "
    "geometry, token and completion counts; wall time, peak memory and the environment are "
    "not verified); the rest are as submitted.")

# (key, header, format) of each number shown
FIELDS = [("final", "final score", "{:.1f}"), ("acc", "ACC", "{:.1f}"), ("bwt", "BWT", "{:+.1f}"),
          ("forgetting", "forgetting", "{:.1f}"), ("probe_change", "probe change", "{:+.1f}"),
          ("drift", "drift L2", "{:.2f}"), ("peak_mb", "peak RSS, largest process (MB, not verified)", "{:.0f}"),
          ("tokens_m", "tokens (M)", "{:.2f}"), ("wall_s", "wall (s, not verified)", "{:.0f}")]


def entry_numbers(r: RunResult) -> dict:
    """The figures one run contributes; None where a metric is undefined."""
    v, T = r.matrix.values, len(r.sequence.tasks)
    s = r.summary
    last_task = r.sequence.tasks[-1]
    pct = (lambda x: None if x is None else 100 * x)
    return {
        "final": 100 * sum(v[-1]) / len(v[-1]),
        "acc": pct(s.acc), "bwt": pct(s.bwt), "forgetting": pct(s.forgetting),
        "probe_change": pct(sum(s.probe_delta.values()) / len(s.probe_delta)) if s.probe_delta else None,
        "gain": 100 * sum(v[T][j] - v[0][j] for j in range(T)) / T,
        "drift": r.geometry[last_task].drift_l2.overall,
        "peak_mb": max(r.cost.peak_rss_bytes, r.cost.peak_rss_children_bytes) / 2**20,
        "tokens_m": (r.cost.forward_tokens + r.cost.backward_tokens) / 1e6,
        "wall_s": r.cost.wall_seconds,
    }


@dataclass
class Group:
    method: str
    config: dict
    model: str
    custom: str | None
    budget: str
    data_access: set = field(default_factory=set)
    runs: dict = field(default_factory=dict)  # seed -> numbers (one file per seed)
    verified: set = field(default_factory=set)  # seeds a verification record vouches for

    @property
    def verified_cell(self) -> str:
        return f"{len(self.verified)}/{len(self.runs)}"

    @property
    def config_id(self) -> str:
        return hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()[:8]

    def stat(self, key: str) -> tuple[float | None, float | None]:
        xs = [n[key] for _, n in sorted(self.runs.items()) if n[key] is not None]
        if not xs:
            return None, None
        return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else None


def _budget_note(r: RunResult) -> str:
    steps = sorted(set(r.budget.steps_per_task.values()))
    ex = sorted(set(r.budget.examples_per_column.values()))
    return f"steps per task: {'/'.join(map(str, steps))}; test items per column: {'/'.join(map(str, ex))}"


def _sequence_note(r: RunResult) -> str:
    return (f"Tasks {' → '.join(r.sequence.tasks)}; probes {', '.join(r.sequence.probes)}; "
            f"budget {r.budget.registered_steps} steps and {r.budget.registered_completions} "
            f"scored completions per task; sequence fingerprint `{r.sequence.fingerprint}`.")


def hyperparameters(r: RunResult, registry) -> dict:
    """The entry's method config without the run settings older entries carry in it
    (`backend`, `workers`: clbench.backends.split_legacy), so an entry recorded before and
    one recorded after they moved share a row when their hyperparameters agree; with the
    installed Config's defaults filled in, so that leaving out a key set to its default
    cannot give the same run a second row (and a second seed 0)."""
    try:
        cls = (registry or Registry.load()).method(r.method.name).Config
    except Exception:  # not installed here: every key stays
        cls = None
    hyper = split_legacy(r.method.config, cls)[0]
    if cls is None:
        return hyper
    try:
        return cls.model_validate(hyper, strict=True).model_dump(mode="json")
    except ValueError:  # a config its Config refuses (a custom entry): as written
        return hyper


def group_key(r: RunResult, registry) -> tuple:
    """The board row a run belongs to: one figure per seed in it."""
    model = f"{r.model.name} ({r.model.fingerprint[:8]})"
    return (r.sequence.name, r.method.name, json.dumps(hyperparameters(r, registry), sort_keys=True),
            model, r.custom or "", _budget_note(r) if r.custom is not None else "")


def collect(board: Path, registry=None, base_scores=None):
    """({sequence: groups ranked}, {sequence: one-line description}, problems of invalid files)."""
    groups: dict[tuple, Group] = {}
    filed: dict[tuple, Path] = {}
    runs: dict[tuple, tuple[str, str | None]] = {}  # (run_identity, run_outcome) per seed
    notes: dict[str, str] = {}
    problems = []
    base_scores = load_base_scores() if base_scores is None else base_scores  # once, not per file
    vouched = verified_entries(board)
    for path in sorted((board / "submissions").glob("*/*.json")):
        if path.is_symlink() or path.parent.is_symlink():  # the board is built from committed bytes
            problems.append(f"{path}: a symbolic link; file the submission itself (a link would make "
                            "the board depend on a file outside the repository)")
            continue
        v = validate_file(path, registry, base_scores)
        if not v.ok:
            problems += [f"{path}: {p}" for p in v.problems]
            continue
        r = v.result
        if path.parent.name != r.sequence.name:
            problems.append(f"{path}: sequence.name: {r.sequence.name} filed under {path.parent.name}")
            continue
        key = group_key(r, registry)
        g = groups.setdefault(key, Group(r.method.name, json.loads(key[2]), key[3], r.custom, key[-1]))
        if r.seed in g.runs:
            problems.append(f"{path}: seed: {r.method.name} seed {r.seed} is already on the board as "
                            f"{filed[key, r.seed].name}; keep one result per seed")
            continue
        filed[key, r.seed] = path
        runs[key, r.seed] = run_identity(r), run_outcome(r)
        g.runs[r.seed] = entry_numbers(r)
        if entry_sha256(path) in vouched:
            g.verified.add(r.seed)
        notes.setdefault(r.sequence.name, _sequence_note(r))
        g.data_access |= {k for k, on in r.data_access.model_dump().items() if on}
    for key in sorted(groups):
        problems += _seed_problems(key, groups[key], filed, runs)
    by_seq: dict[str, list[Group]] = {}
    for key in sorted(groups):
        by_seq.setdefault(key[0], []).append(groups[key])
    for seq, gs in by_seq.items():
        gs.sort(key=lambda g: (-g.stat("final")[0], g.method, g.config_id, g.model, g.custom or ""))
    return dict(sorted(by_seq.items())), notes, problems


def run_identity(r: RunResult) -> str:
    """What a run's seed determines (matrix, curves, geometry): two seeds of a row that agree
    on all of it are one run filed twice."""
    return hashlib.sha256(json.dumps([r.matrix.values, [c.model_dump(mode="json") for c in r.curves],
                                      {t: g.model_dump(mode="json") for t, g in r.geometry.items()}],
                                     sort_keys=True).encode()).hexdigest()


def run_outcome(r: RunResult) -> str | None:
    """What a run's seed decides about its scores: the matrix on the full test splits and
    every curve point's dev scores. Two honest seeds of a standard row never agree on all
    of them, so a copy with a reward, KL or drift digit nudged (which run_identity alone
    would miss) is still one run filed twice. None for a run that moved no test score (every
    matrix row equals row 0): its seeds may agree on every score honestly."""
    rows = r.matrix.values
    if all(row == rows[0] for row in rows):
        return None
    return hashlib.sha256(json.dumps([rows, [c.scores for c in r.curves]],
                                     sort_keys=True).encode()).hexdigest()


def _seed_problems(key: tuple, g: Group, filed: dict, runs: dict) -> list[str]:
    """A standard row's seeds are 0, 1, ..., n-1, and any row's seeds are distinct runs: a
    row made of chosen seeds (the best 3 of 10, or seed 17 alone) or of one run under
    several seed labels would show a mean and spread that no honest set of runs gave.
    Custom rows are ranked apart and may be a smoke run of any seed."""
    problems, seeds = [], sorted(g.runs)
    if g.custom is None and seeds != list(range(len(seeds))):
        missing = sorted(set(range(max(seeds) + 1)) - set(seeds))
        problems.append(f"{filed[key, seeds[-1]]}: seed: {g.method} `{g.config_id}` has seeds {seeds}; "
                        f"a board row holds seeds 0, 1, ..., n-1, never a choice of them (missing: "
                        f"{missing[:5]}{' ...' if len(missing) > 5 else ''})")
    first: dict[str, int] = {}
    same_scores: dict[str, int] = {}
    for s in seeds:
        identity, outcome = runs[key, s]
        other = first.setdefault(identity, s)
        if other != s:
            problems.append(f"{filed[key, s]}: seed: its matrix, curves and geometry equal seed {other}'s "
                            f"({filed[key, other].name}): one run filed under two seeds (a method whose "
                            "seed changes nothing files one seed)")
            continue
        if g.custom is None and outcome is not None:
            other = same_scores.setdefault(outcome, s)
            if other != s:
                problems.append(f"{filed[key, s]}: seed: its matrix and every curve score equal seed "
                                f"{other}'s ({filed[key, other].name}) while its other figures differ: one "
                                "run filed under two seeds with figures edited")
    return problems


MD_SPECIAL = "\\`*_[]!~|"  # links, images, emphasis, code spans, strikethrough, table cells


def _md(text: str) -> str:
    """Submitter text (model name, custom reason) as inert Markdown: no HTML tags or
    ![image](url) (a picture fetched on every view of the README), no '|' (a table cell
    of its own; its backslash escaped first, so that "\\|" cannot unescape it), no
    newline (a heading)."""
    text = "".join("\\" + c if c in MD_SPECIAL else c for c in " ".join(text.split()))
    return html.escape(text, quote=False)


def _md_config(config: dict) -> str:
    """The config as a code span; a backtick in a value would end the span early, so it
    is written as the JSON escape \\u0060, the same value."""
    return "`" + json.dumps(config, sort_keys=True).replace("`", "\\u0060") + "`"


def _cell(g: Group, key: str, fmt: str) -> str:
    mean, sd = g.stat(key)
    if mean is None:
        return "n/a"
    return fmt.format(mean) + ("" if sd is None else " ± " + fmt.replace("+", "").format(sd))


def _access(g: Group) -> str:
    names = {"earlier_tasks": "earlier tasks", "general": "general data"}
    return ", ".join(names.get(k, k) for k in sorted(g.data_access)) or "task only"


def _md_table(gs: list[Group]) -> list[str]:
    head = ["#", "method", "config", "model", "seeds", "verified"] + [h for _, h, _ in FIELDS] + ["data access"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, g in enumerate(gs, 1):
        cells = [str(i), g.method, f"`{g.config_id}`", _md(g.model), str(len(g.runs)), g.verified_cell]
        cells += [_cell(g, k, f) for k, _, f in FIELDS] + [_access(g)]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def render_markdown(by_seq: dict[str, list[Group]], notes: dict[str, str]) -> str:
    out = ["# clbench leaderboard", "",
           "Generated by `clbench leaderboard build` from `leaderboard/submissions/`; do not edit "
           "by hand. `index.html` has the same tables, sortable, and a plot of new-task gain "
           "against probe change.", "", f"**Ranking rule.** {RANKING_RULE}", ""]
    if not by_seq:
        out += ["No submissions yet. Run a method on a sequence, then `clbench submit OUT` and "
                "`clbench leaderboard build`; `leaderboard/build_first_board.py` does this for every "
                "built-in method on math-then-code with 3 seeds (hours of CPU).", ""]
    for seq, gs in by_seq.items():
        std = [g for g in gs if g.custom is None]
        cus = [g for g in gs if g.custom is not None]
        out += [f"## {seq}", "", notes[seq], ""]
        out += (_md_table(std) if std else ["No standard entries yet."]) + [""]
        if cus:
            out += ["### Custom entries (departing from the registered budget or evaluation; "
                    "not comparable with the table above)", ""]
            out += _md_table(cus) + [""]
            out += [f"- {g.method} `{g.config_id}`: {_md(g.custom)} ({g.budget})" for g in cus] + [""]
        out += ["Method configs:", ""]
        out += sorted({f"- `{g.config_id}` ({g.method}): {_md_config(g.config)}"
                       for g in gs}) + [""]
    return "\n".join(out)


SORT_JS = """function sortBy(th){const t=th.closest('table'),i=[...th.parentNode.children].indexOf(th),
b=t.tBodies[0],d=th.dataset.dir=th.dataset.dir==='a'?'d':'a',rs=[...b.rows];
rs.sort((x,y)=>{const p=x.cells[i].dataset.v,q=y.cells[i].dataset.v;
const r=(p!==undefined&&q!==undefined)?(+p)-(+q):x.cells[i].textContent.localeCompare(y.cells[i].textContent);
return d==='a'?r:-r});rs.forEach(r=>b.appendChild(r))}"""


def _html_table(gs: list[Group]) -> str:
    head = ["#", "method", "config", "model", "seeds", "verified"] + [h for _, h, _ in FIELDS] + ["data access"]
    th = "".join(f'<th onclick="sortBy(this)">{html.escape(h)}</th>' for h in head)
    rows = []
    for i, g in enumerate(gs, 1):
        cells = [f'<td data-v="{i}">{i}</td>', f"<td>{html.escape(g.method)}</td>",
                 f'<td title="{html.escape(json.dumps(g.config, sort_keys=True))}">{g.config_id}</td>',
                 f"<td>{html.escape(g.model)}</td>", f'<td data-v="{len(g.runs)}">{len(g.runs)}</td>',
                 f'<td data-v="{len(g.verified)}">{g.verified_cell}</td>']
        for k, _, f in FIELDS:
            mean, _sd = g.stat(k)
            v = "" if mean is None else f' data-v="{mean:.6f}"'
            cells.append(f"<td{v}>{html.escape(_cell(g, k, f))}</td>")
        cells.append(f"<td>{html.escape(_access(g))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _plot(gs: list[Group]) -> str:
    """Keys are the tables' row numbers: "3" is row 3 of the standard table, "C1" row 1 of
    the custom one."""
    pts = []
    std_rank = custom_rank = 0
    for g in gs:
        if g.custom is None:
            std_rank += 1
        else:
            custom_rank += 1
        (x, dx), (y, dy) = g.stat("gain"), g.stat("probe_change")
        if x is None or y is None:
            continue
        key = f"C{custom_rank}" if g.custom is not None else str(std_rank)
        pts.append({"key": key, "label": f"{g.method} {g.config_id}", "x": x, "y": y,
                    "dx": dx or 0.0, "dy": dy or 0.0, "hollow": g.custom is not None})
    if not pts:
        return ""
    return scatter(pts, "new-task gain (final − base, points, mean over tasks)",
                   "probe change (final − base, points; 0 = retained)")


def render_html(by_seq: dict[str, list[Group]], notes: dict[str, str]) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>clbench leaderboard</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:"
             "collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
             "th{cursor:pointer;background:#f4f4f4}</style>",
             f"<script>{SORT_JS}</script></head><body><h1>clbench leaderboard</h1>",
             f"<p>{html.escape(RANKING_RULE).replace('**final score**', '<b>final score</b>').replace('*all*', '<i>all</i>').replace('**Verified**', '<b>Verified</b>')}"
             " Click a header to sort.</p>"]
    if not by_seq:
        parts.append("<p>No submissions yet.</p>")
    for seq, gs in by_seq.items():
        std = [g for g in gs if g.custom is None]
        cus = [g for g in gs if g.custom is not None]
        parts.append(f"<h2>{html.escape(seq)}</h2><p>{html.escape(notes[seq]).replace('`', '')}</p>")
        parts.append(_html_table(std) if std else "<p>No standard entries yet.</p>")
        if cus:
            parts.append("<h3>Custom entries (not comparable with the table above)</h3>" + _html_table(cus)
                         + "<ul>" + "".join(f"<li>C{i} {html.escape(g.method)} {g.config_id}: "
                                            f"{html.escape(g.custom)} ({html.escape(g.budget)})</li>"
                                            for i, g in enumerate(cus, 1)) + "</ul>")
        parts.append("<h3>New-task gain against probe change (one point per method; labels are the "
                     "tables' row numbers; bars: ±1 sd over seeds; hollow: custom)</h3>" + _plot(gs))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def build(board: Path, registry=None, base_scores=None) -> list[str]:
    """Write README.md and index.html unless a submission is invalid; returns the problems."""
    by_seq, notes, problems = collect(board, registry, base_scores)
    if problems:
        return problems
    write_text(board / "README.md", render_markdown(by_seq, notes))
    write_text(board / "index.html", render_html(by_seq, notes))
    return []
