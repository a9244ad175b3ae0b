"""`clbench leaderboard register-base`: score a base model and register row 0.

Scores the model on the full test split of every column of the built-in sequences
that name it, exactly as the runner scores row 0, and writes the scores and the
weights fingerprint to `clbench/assets/base_scores.json` (clbench/leaderboard/registered.py
reads it; the sequences resolve their base fingerprint from it).
"""
from __future__ import annotations

from pathlib import Path

from clbench.atomic import write_json
from clbench.errors import UserError
from clbench.harness import Harness
from clbench.leaderboard.registered import BASE_SCORES, load_base_scores
from clbench.model import load_model, weights_fingerprint
from clbench.registry import Registry


def register_base(model: str = "embedded", dtype: str = "float32", device: str = "cpu",
                  path: str | Path = BASE_SCORES, log=print) -> dict:
    """Score `model` on the full test split of every column of the built-in sequences
    that name it, exactly as the runner scores row 0 (one harness call per sequence),
    and register the scores and fingerprint. Returns the new entry."""
    reg = Registry.load()
    builtin = {n: e.obj for n, e in sorted(reg.sequences.items()) if e.origin.startswith("clbench ")}
    seqs = [s for s in builtin.values() if s.model == model]
    if not seqs:  # a usage error (exit 2), not a traceback
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
