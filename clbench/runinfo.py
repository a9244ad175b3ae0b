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


def cpu_identity() -> str:
    """The CPU's model, family and model numbers and the vector ISA torch dispatches to,
    e.g. 'AMD EPYC family 25 model 17 (AVX512)'. Why: matrix kernels may round
    differently on another CPU kind (AVX2 against AVX-512), so a run is bit-exact on one
    kind but not always across kinds; a re-run can only judge an entry made on the same
    kind (README "Leaderboard", Verification)."""
    import torch

    fields = {}
    try:  # the first processor's block: every core of a machine is the same kind
        first = Path("/proc/cpuinfo").read_text().split("\n\n", 1)[0]
    except OSError:
        first = ""
    for line in first.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown"
    if "cpu family" in fields and "model" in fields:
        name += f" family {fields['cpu family']} model {fields['model']}"
    return f"{name} ({torch.backends.cpu.get_cpu_capability()})"


def environment(device: str) -> dict:
    import torch

    return {"python": sys.version.split()[0], "torch": torch.__version__,
            "transformers": _version("transformers"), "lm_eval": _version("lm_eval"),
            "clbench": _version("clbench"), "device": device, "git_commit": git_commit(),
            "platform": platform.platform(), "cpu": cpu_identity()}


def sequence_fingerprint(seq, registry) -> str:
    """sha256 over the sequence spec and every column's generated data fingerprint."""
    h = hashlib.sha256(seq.fingerprint_json().encode())
    for name in seq.tasks + seq.probes:
        fam = registry.task(name)
        h.update(f"{name}/v{fam.version}/{fam.fingerprint}".encode())
    return h.hexdigest()[:16]
