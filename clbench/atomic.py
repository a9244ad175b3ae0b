"""Atomic writing: a temp file in the target's folder, fsync, then rename.

A crash mid-write leaves the old file or none, never a torn one (nanoGPT's
checkpoints written straight to their final name are the habit we avoid).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path


def existing_ancestor(path: str | Path) -> Path:
    """The nearest parent of `path` that exists ('/' always does): where a write below it
    would start, so a caller can refuse a file there before any work."""
    return next(a for a in Path(path).absolute().parents if a.exists())


def write_bytes(path: str | Path, data: bytes, exclusive: bool = False) -> Path:
    """`exclusive`: create the file or raise FileExistsError, never replace one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would make results private
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if the name exists, unlike os.replace
        else:
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)  # gone already after os.replace
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path: str | Path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def replace_dir(final: str | Path, fill) -> Path:
    """Build a folder under a temp name with `fill(tmp_path)`, then swap it in."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
    try:
        fill(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
        for f in tmp.rglob("*"):
            f.chmod(0o755 if f.is_dir() else 0o644)
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
