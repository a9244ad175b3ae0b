"""What a result records about where it came from: versions, commit, fingerprints."""
from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _version(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "not installed"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: str) -> dict:
    import torch

    return {"python": sys.version.split()[0], "torch": torch.__version__,
            "transformers": _version("transformers"), "lm_eval": _version("lm_eval"),
            "clbench": _version("clbench"), "device": device, "git_commit": git_commit(),
            "platform": platform.platform()}


def sequence_fingerprint(seq, registry) -> str:
    """sha256 over the sequence spec and every column's generated data fingerprint."""
    h = hashlib.sha256(seq.fingerprint_json().encode())
    for name in seq.tasks + seq.probes:
        fam = registry.task(name)
        h.update(f"{name}/v{fam.version}/{fam.fingerprint}".encode())
    return h.hexdigest()[:16]
