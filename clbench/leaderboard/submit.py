"""File a validated result under leaderboard/submissions/<sequence>/, never overwriting.

The name is `<method>-seed<seed>-<sha256 of the bytes, 12 hex>.json`, so the same
bytes map to the same name (a resubmission is refused as a duplicate) and different
bytes never collide; the file is created exclusively (clbench.atomic.write_bytes),
which fails rather than replaces when the name exists.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from clbench.atomic import write_bytes
from clbench.leaderboard.parse import ParseError, load_bytes, load_file, read_capped
from clbench.leaderboard.build import group_key
from clbench.leaderboard.validate import validate_doc
from clbench.results import RunResult


class SubmitError(ValueError):
    """The submission was not filed; the message says why."""


def _same_seed(folder: Path, r, registry) -> Path | None:
    """A filed result in r's board row with r's seed: a second one would let a submitter
    keep the luckiest of several runs, and `leaderboard build` refuses the pair."""
    for path in sorted(folder.glob(f"{r.method.name}-seed{r.seed}-*.json")):
        try:
            other = RunResult.model_validate(load_file(path), strict=True)
        except (ParseError, ValueError):
            continue  # an invalid file is for `leaderboard build` to name
        if other.seed == r.seed and group_key(other, registry) == group_key(r, registry):
            return path
    return None


def submit(result_path: Path, board: Path, custom: str | None = None, registry=None,
           base_scores: dict | None = None) -> Path:
    """Validate and file one result (marked custom with `custom` as the reason);
    SubmitError lists the problems. The file is read and validated once."""
    if not result_path.is_file():
        raise SubmitError(f"{result_path}: no such file (a finished run folder has result.json)")
    try:
        raw = read_capped(result_path)  # size-checked before reading; read once, so the
        doc = load_bytes(raw)           # bytes filed are the bytes validated
    except ParseError as e:
        raise SubmitError(f"file: {e}") from None
    if custom is not None:
        if not custom.strip():
            raise SubmitError("--custom: give a reason, e.g. --custom 'smoke test, 1 step per task'")
        if isinstance(doc, dict):
            doc = {**doc, "custom": custom}
    verdict = validate_doc(doc, registry, base_scores)
    if not verdict.ok:
        raise SubmitError("\n".join(verdict.problems))
    data = (raw if custom is None  # the bytes as run
            else (json.dumps(doc, indent=2, allow_nan=False) + "\n").encode())
    r = verdict.result
    digest = hashlib.sha256(data).hexdigest()[:12]
    path = board / "submissions" / r.sequence.name / f"{r.method.name}-seed{r.seed}-{digest}.json"
    same = None if path.exists() else _same_seed(path.parent, r, registry)  # the same bytes: said below
    if same is not None:
        raise SubmitError(f"seed: {r.method.name} seed {r.seed} of this config is already filed as "
                          f"{same}; the board keeps one result per seed (run another seed)")
    try:
        write_bytes(path, data, exclusive=True)
    except FileExistsError:
        raise SubmitError(f"{path} exists: this exact result was already submitted") from None
    return path
