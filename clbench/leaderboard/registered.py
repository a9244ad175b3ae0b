"""Registered base scores: row 0 of every column for each registered base model.

`clbench/assets/base_scores.json` maps a weights fingerprint to the model's score
on the full test split of each column, so a submission's row 0 can be checked
without re-running anything. A sequence that names a model but no fingerprint gets
the one registered for that model's name when the registry loads it
(`with_registered_base`), so `register_base` regenerates only this file, from a real
evaluation, and never edits installed files: retraining the embedded model is one
command away from a consistent registry (`clbench leaderboard register-base`).
"""
from __future__ import annotations

import json
from pathlib import Path

from clbench.atomic import write_json

BASE_SCORES = Path(__file__).resolve().parents[1] / "assets" / "base_scores.json"


def load_base_scores(path: str | Path = BASE_SCORES) -> dict:
    """{fingerprint: {"model", "split", "dtype", "columns": {name: {"version", "examples", "score"}}}}."""
    path = Path(path)
    if not path.exists():
        return {}
    return json.loads(path.read_text())["models"]


def registered_fingerprint(model: str, scores: dict | None = None) -> str | None:
    """The fingerprint registered for model name `model` (one entry per name), or None."""
    scores = load_base_scores() if scores is None else scores
    found = [fp for fp, entry in scores.items() if entry.get("model") == model]
    return found[0] if len(found) == 1 else None


def with_registered_base(seq, scores: dict | None = None):
    """`seq` with its base_model_fingerprint resolved from the registered scores when it
    names none; a fingerprint the spec states itself is kept. The resolved value is part
    of the spec, so it enters the sequence fingerprint exactly as a written one would."""
    if seq.base_model_fingerprint is not None:
        return seq
    fp = registered_fingerprint(seq.model, scores)
    return seq if fp is None else seq.model_copy(update={"base_model_fingerprint": fp})


def register_base(model: str = "embedded", dtype: str = "float32", device: str = "cpu",
                  path: str | Path = BASE_SCORES, log=print) -> dict:
    """Score `model` on the full test split of every column of the built-in sequences
    that name it, exactly as the runner scores row 0 (one harness call per sequence),
    and register the scores and fingerprint. Returns the new entry."""
    from clbench.harness import Harness
    from clbench.model import load_model, weights_fingerprint
    from clbench.registry import Registry

    reg = Registry.load()
    builtin = {n: e.obj for n, e in sorted(reg.sequences.items()) if e.origin.startswith("clbench ")}
    seqs = [s for s in builtin.values() if s.model == model]
    if not seqs:  # a usage error (exit 2), not a traceback
        from clbench.errors import UserError

        named = sorted({s.model for s in builtin.values()})
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
    Registry.load(refresh=True)  # sequences naming the model now resolve to the new fingerprint
    log(f"registered {model} ({fp}) for {', '.join(s.name for s in seqs)} in {path}")
    return {fp: entry}
