"""Registered base scores: row 0 of every column for each registered base model.

`clbench/assets/base_scores.json` maps a weights fingerprint to the model's score
on the full test split of each column, so a submission's row 0 can be checked
without re-running anything. `register_base` regenerates the file, and writes the
fingerprint into the built-in sequence YAMLs that name the model, from a real
evaluation: retraining the embedded model is one command away from a consistent
registry (`clbench leaderboard register-base`).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from clbench.atomic import write_json, write_text

BASE_SCORES = Path(__file__).resolve().parents[1] / "assets" / "base_scores.json"


def load_base_scores(path: str | Path = BASE_SCORES) -> dict:
    """{fingerprint: {"model", "split", "dtype", "columns": {name: {"version", "examples", "score"}}}}."""
    path = Path(path)
    if not path.exists():
        return {}
    return json.loads(path.read_text())["models"]


def _builtin_sequence_files() -> dict[str, Path]:
    import clbench.tasks.sequences as pkg
    import yaml

    out = {}
    for p in sorted(Path(pkg.__file__).parent.glob("*.yaml")):
        out[yaml.safe_load(p.read_text())["name"]] = p
    return out


def set_yaml_fingerprint(path: Path, fingerprint: str) -> None:
    """Write `base_model_fingerprint: X` after the `model:` line, keeping comments and order."""
    text = path.read_text()
    line = f"base_model_fingerprint: {fingerprint}"
    if re.search(r"^base_model_fingerprint:.*$", text, flags=re.M):
        text = re.sub(r"^base_model_fingerprint:.*$", line, text, flags=re.M)
    elif re.search(r"^model:.*$", text, flags=re.M):
        text = re.sub(r"^(model:.*)$", rf"\1\n{line}", text, count=1, flags=re.M)
    else:
        text = text.rstrip("\n") + f"\n{line}\n"
    write_text(path, text)


def register_base(model: str = "embedded", dtype: str = "float32", device: str = "cpu",
                  path: str | Path = BASE_SCORES, log=print) -> dict:
    """Score `model` on the full test split of every column of the built-in sequences
    that name it, exactly as the runner scores row 0 (one harness call per sequence),
    and register the scores and fingerprint. Returns the new entry."""
    from clbench.harness import Harness
    from clbench.model import load_model, weights_fingerprint
    from clbench.registry import Registry

    reg = Registry.load()
    files = _builtin_sequence_files()
    seqs = [reg.sequence(n) for n in sorted(files) if n in reg.sequences and reg.sequence(n).model == model]
    if not seqs:  # a usage error (exit 2), not a traceback
        from clbench.errors import UserError

        named = sorted({reg.sequence(n).model for n in files if n in reg.sequences})
        raise UserError(f"register-base: no built-in sequence names model {model!r}; "
                        f"they name {', '.join(named)}")
    lm = load_model(model, dtype=dtype, device=device)
    fp = weights_fingerprint(lm.model)
    harness = Harness(lm.model, lm.tokenizer)
    columns: dict[str, dict] = {}
    for seq in seqs:
        names = seq.tasks + seq.probes
        scores = harness.score(names, split="test", limit=None)
        log(f"{seq.name}: " + ", ".join(f"{n} {scores[n]:.4f}" for n in names))
        for n in names:
            if n in columns and columns[n]["score"] != scores[n]:
                raise ValueError(f"{n}: scored {columns[n]['score']} in one sequence and {scores[n]} "
                                 "in another; row 0 would depend on the sequence's other columns")
            columns[n] = {"version": reg.task(n).version, "examples": len(reg.task(n).split("test")),
                          "score": scores[n]}
    entry = {"model": model, "split": "test", "dtype": dtype,
             "columns": dict(sorted(columns.items()))}
    # one entry per model name: a retrained model replaces its predecessor
    models = {k: v for k, v in load_base_scores(path).items() if v.get("model") != model}
    models[fp] = entry
    write_json(path, {"schema": 1, "models": dict(sorted(models.items()))})
    for seq in seqs:
        set_yaml_fingerprint(files[seq.name], fp)
    log(f"registered {model} ({fp}) for {', '.join(s.name for s in seqs)} in {path}")
    return {fp: entry}
