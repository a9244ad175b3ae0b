"""Held-out probes taken from lm-eval's own task registry (hellaswag, arc_easy, piqa, mmlu_*).

A probe is a TaskFamily whose items are lm-eval's evaluation documents and whose
score is lm-eval's own (the harness hands lm-eval the task object unchanged), so
a probe scores exactly as `lm-eval --tasks NAME` would. Data: a local copy in the
data set's raw schema under $CLBENCH_DATA_DIR/<name>/ (one file per split, e.g.
`validation.jsonl`; see clbench.data_files) replaces lm-eval's `dataset_path`;
otherwise lm-eval reads the `datasets` cache (offline) or the hub (online).
The registered name is lm-eval's own, so the same name works in both tools.
"""
from __future__ import annotations

import functools
import os
from functools import cached_property
from pathlib import Path

from clbench.data_files import DATA_ENV, split_files
from clbench.errors import UserError
from clbench.task import Score, TaskFamily


@functools.cache
def default_manager():
    """lm-eval's full task index (about 8 s to build), once per process."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_defaults=True)


def _local_spec(name: str) -> dict | None:
    """lm-eval overrides that read $CLBENCH_DATA_DIR/<name>/<split>.<ext> instead of the hub."""
    root = os.environ.get(DATA_ENV)
    folder = Path(root).expanduser() / name if root else None
    if not folder or not folder.is_dir():
        return None
    files = {split: [str(p) for p in paths] for split, paths in split_files(folder).items()}
    if not files:
        return None
    builder = "parquet" if next(iter(files.values()))[0].endswith(".parquet") else "json"
    return {"group": f"clbench_local_{name}", "task": [{
        "task": name, "dataset_path": builder, "dataset_name": None,
        "dataset_kwargs": {"data_files": files},
        "training_split": "train" if "train" in files else None,
        "validation_split": "validation" if "validation" in files else None,
        "test_split": "test" if "test" in files else None,
        "fewshot_split": None}]}


class LmEvalProbe(TaskFamily):
    """A probe scored by lm-eval's own task of the same name (multiple choice, acc)."""

    kind = "choice"
    role = "probe"
    split_sizes = {"train": 0, "dev": 0, "test": 0}

    def __init__(self, name: str, description: str = "", version: int = 1):
        self.name = name
        self.description = description or f"probe: lm-eval's {name} (its own documents and metric)"
        self.version = version

    def how_to_provide(self) -> str:
        return (f"put its raw rows in ${DATA_ENV}/{self.name}/validation.jsonl (or test/train, "
                f"parquet or JSON lines) or fetch it into the datasets cache while online: "
                f"HF_DATASETS_OFFLINE=0 lm-eval run --model dummy --tasks {self.name} --limit 1")

    @cached_property
    def lm_eval_task(self):
        """lm-eval's task object, loaded once; a clean UserError when its data is missing."""
        spec = _local_spec(self.name) or self.name
        try:
            tasks = default_manager().load([spec])["tasks"]
            task = tasks[self.name]
            _ = task.eval_docs  # reading the documents is where missing data shows
        except (KeyError, OSError, ConnectionError, ValueError, RuntimeError) as e:
            raise UserError(f"probe {self.name!r}: lm-eval could not load it ({e.__class__.__name__}: "
                            f"{str(e)[:160]}); check the name (`lm-eval ls tasks`) and "
                            f"{self.how_to_provide()}") from None
        return task

    @cached_property
    def splits(self) -> dict[str, list[dict]]:
        """test = lm-eval's evaluation documents; dev = the same (curves score the first N
        of them, as lm-eval's --limit does); train is empty: a probe is never trained on."""
        t = self.lm_eval_task
        items = []
        for k, doc in enumerate(t.eval_docs):
            choices = [str(c) for c in t.doc_to_choice(doc)]
            label = t.doc_to_target(doc)
            label = label if isinstance(label, int) else choices.index(str(label))
            items.append({"id": f"{self.name}-test-{k}", "prompt": str(t.doc_to_text(doc)),
                          "target": choices[label], "choices": choices, "label": label})
        return {"train": [], "dev": items, "test": items}

    def score(self, item: dict, completion: str) -> Score:
        """`completion` is the chosen continuation; lm-eval's acc when it is the labelled one."""
        ok = completion == item["choices"][item["label"]]
        return Score(reward=float(ok), correct=ok)

    def lm_eval_task_name(self) -> str:
        return self.name
