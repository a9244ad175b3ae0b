"""File a validated result under leaderboard/submissions/<sequence>/, never overwriting.

The name is `<method>-seed<seed>-<sha256 of the bytes, 12 hex>.json`, so the same
bytes map to the same name (a resubmission is refused as a duplicate) and different
bytes never collide; the file appears through a hard link from a temp file, which
fails rather than replaces when the name exists.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from clbench.leaderboard.parse import MAX_BYTES
from clbench.leaderboard.validate import Verdict, validate_bytes


class SubmitError(ValueError):
    """The submission was not filed; the message says why."""


def submission_bytes(raw: bytes, verdict: Verdict, custom: str | None) -> bytes:
    """The bytes as run, or with `custom` set when the submitter marks the entry."""
    if custom is None:
        return raw
    doc = dict(verdict.doc)
    doc["custom"] = custom
    return (json.dumps(doc, indent=2, allow_nan=False) + "\n").encode()


def link_exclusive(path: Path, data: bytes) -> None:
    """Create `path` holding `data` atomically; FileExistsError if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # never replaces an existing file, unlike os.replace
    finally:
        Path(tmp).unlink(missing_ok=True)


def submit(result_path: Path, board: Path, custom: str | None = None, registry=None,
           base_scores: dict | None = None) -> Path:
    """Validate and file one result; SubmitError lists the problems."""
    if not result_path.is_file():
        raise SubmitError(f"{result_path}: no such file (a finished run folder has result.json)")
    if result_path.stat().st_size > MAX_BYTES:
        raise SubmitError(f"file: {result_path.stat().st_size / 1e6:.1f} MB exceeds the 5 MB limit")
    raw = result_path.read_bytes()
    first = validate_bytes(raw, registry, base_scores)
    if first.result is None:
        raise SubmitError("\n".join(first.problems))
    if custom is not None and not custom.strip():
        raise SubmitError("--custom: give a reason, e.g. --custom 'smoke test, 1 step per task'")
    data = submission_bytes(raw, first, custom)
    verdict = validate_bytes(data, registry, base_scores) if custom is not None else first
    if not verdict.ok:
        raise SubmitError("\n".join(verdict.problems))
    r = verdict.result
    digest = hashlib.sha256(data).hexdigest()[:12]
    path = board / "submissions" / r.sequence.name / f"{r.method.name}-seed{r.seed}-{digest}.json"
    try:
        link_exclusive(path, data)
    except FileExistsError:
        raise SubmitError(f"{path} exists: this exact result was already submitted") from None
    return path
