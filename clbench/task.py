"""The task-family contract: what a task in `tasks/` (or a plugin) provides.

A family owns a deterministic generator (seed + version -> three splits), one
scoring function used both as training reward and evaluation metric, and an
lm-eval task config that reads the generated data. Keeping reward and metric in
one function means training and evaluation cannot disagree (README "The embedded
benchmark"), the failure TRACE shows with its per-dataset `if` chains.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, Literal

from clbench.metrics import is_finite_real

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Score:
    """`reward` drives learning (may give partial credit); `correct` is the metric."""

    reward: float
    correct: bool


def exact_match(item: dict, completion: str) -> Score:
    """Correct when the stripped completion equals the target; reward = correct."""
    ok = completion.strip() == item["target"]
    return Score(reward=float(ok), correct=ok)


def choice_match(item: dict, completion: str) -> Score:
    """Multiple choice: `completion` is the chosen continuation (highest log-likelihood);
    correct when it is the labelled choice."""
    ok = completion == item["choices"][item["label"]]
    return Score(reward=float(ok), correct=ok)


def _valid_score(s: object) -> bool:
    return isinstance(s, Score) and isinstance(s.correct, bool) and is_finite_real(s.reward)


class TaskFamily:
    """Base class of a task family. Subclasses fill `sample` and `score`.

    Splits are generated test first, then dev, then train, and an item whose
    `key` already appeared in an earlier split is skipped, so no dev or test item
    can leak into training data.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    kind: ClassVar[Literal["generate", "choice"]] = "generate"
    role: ClassVar[Literal["task", "probe"]] = "task"
    description: ClassVar[str] = ""
    max_new_tokens: ClassVar[int] = 16
    seed: ClassVar[int] = 1234
    split_sizes: ClassVar[dict[str, int]] = {"train": 4000, "dev": 200, "test": 500}
    stop: ClassVar[tuple[str, ...]] = ("\n",)
    # Full-scale tasks written for instruction-tuned models: their prompt goes through the
    # model's chat template (if it has one) for training rewards and evaluation alike.
    chat: ClassVar[bool] = False
    # With `chat`: text that opens the assistant turn after the template's generation prompt
    # (the ES papers' Countdown opens it with "<think>"); completions are what follows it.
    assistant_prefix: ClassVar[str] = ""

    # ---- to implement -------------------------------------------------
    def sample(self, rng: random.Random) -> dict:
        """One item: at least {"prompt", "target"}; choice tasks add "choices", "label"."""
        raise NotImplementedError

    def score(self, item: dict, completion: str) -> Score:
        """Score a model completion (text after the prompt, before the stop string)."""
        raise NotImplementedError

    def pretraining_sample(self, rng: random.Random) -> dict:
        """What `clbench pretrain-base` sees of this family (default: the task itself).
        A family may show only part of its space, so the base model knows a little."""
        return self.sample(rng)

    # Named extra pretraining variants a recipe may mix in (clbench.recipe): variant
    # name -> the name of a method `(rng) -> item` of this family. A planted heuristic
    # (an item whose target is a systematic wrong answer) is one.
    pretraining_variants: ClassVar[dict[str, str]] = {}

    def pretraining_item(self, rng: random.Random, variant: str = "default") -> dict:
        """One pretraining item of the named variant ('default': `pretraining_sample`)."""
        if variant == "default":
            return self.pretraining_sample(rng)
        return getattr(self, self.pretraining_variants[variant])(rng)

    def score_many(self, items: list[dict], completions: list[str]) -> list[Score]:
        """Batch hook: families with expensive scoring (sandboxed code) override it."""
        return [self.score(i, c) for i, c in zip(items, completions)]

    # ---- provided -----------------------------------------------------
    def scores(self, items: list[dict], completions: list[str]) -> list[Score]:
        """`score_many`, checked: what trains and what is reported must be one Score per
        completion with a finite reward and a bool `correct`; a plugin's NaN would
        otherwise average into rewards and accuracies without a word."""
        got = list(self.score_many(items, completions))
        if len(got) != len(items) or not all(map(_valid_score, got)):
            from clbench.errors import UserError

            bad = next((s for s in got if not _valid_score(s)), f"{len(got)} scores for {len(items)} items")
            raise UserError(f"task {self.name!r} ({type(self).__module__}): score() must return "
                            f"Score(reward=<finite number>, correct=<bool>) per completion; got "
                            f"{bad!r:.120}")
        return got

    @staticmethod
    def key(item: dict) -> str:
        """Identity used for split disjointness: the prompt (choices don't matter)."""
        return item["prompt"]

    @cached_property
    def splits(self) -> dict[str, list[dict]]:
        seen: set[str] = set()
        out: dict[str, list[dict]] = {}
        for offset, split in enumerate(("test", "dev", "train")):
            rng = random.Random(f"{self.name}/v{self.version}/{self.seed}/{split}")
            items: list[dict] = []
            tries = 0
            while len(items) < self.split_sizes[split]:
                tries += 1
                if tries > 50 * self.split_sizes[split] + 1000:  # a plugin whose generator repeats itself
                    from clbench.errors import UserError

                    raise UserError(f"task {self.name!r} ({type(self).__module__}): its generator gave too few "
                                    f"distinct items for the {split} split ({len(items)} of "
                                    f"{self.split_sizes[split]}); make sample() vary with its rng")
                item = self.sample(rng)
                k = self.key(item)
                if k in seen:
                    continue
                seen.add(k)
                items.append({"id": f"{self.name}-{split}-{len(items)}", **item})
            out[split] = items
        return {s: out[s] for s in SPLITS}

    def split(self, name: str) -> list[dict]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; use one of {SPLITS}")
        return self.splits[name]

    def held_out_keys(self) -> set[str]:
        """Keys of dev and test items: pretraining mixtures must avoid them."""
        return {self.key(i) for s in ("dev", "test") for i in self.splits[s]}

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over name, version and every generated item of every split."""
        h = hashlib.sha256(f"{self.name}/v{self.version}".encode())
        for s in SPLITS:
            for item in self.splits[s]:
                h.update(json.dumps(item, sort_keys=True).encode())
        return h.hexdigest()[:16]

    def lm_eval_task_name(self) -> str:
        return self.name

    def lm_eval_config(self) -> dict:
        """lm-eval's task config, generated from the class so that each fact (name, version,
        token budget, stop strings, assistant prefix) is written once, here; the documents
        are the family's splits and the metric its own `score` (clbench.lm_eval_hooks).
        Generation is greedy, as for training rewards; choice tasks use lm-eval's own
        log-likelihood `acc`."""
        from clbench.lm_eval_hooks import hooks_for

        dataset, process_results = hooks_for(self)
        acc = {"metric": "acc", "aggregation": "mean", "higher_is_better": True}
        cfg = {"task": self.lm_eval_task_name(), "dataset_path": "", "custom_dataset": dataset,
               "test_split": "test", "doc_to_text": "{{prompt}}", "target_delimiter": "",
               "metadata": {"version": self.version}}
        if self.kind == "choice":
            return {**cfg, "output_type": "multiple_choice", "doc_to_choice": "choices",
                    "doc_to_target": "label", "metric_list": [acc]}
        cfg.update(output_type="generate_until", doc_to_target="{{target}}",
                   generation_kwargs={"until": list(self.stop), "do_sample": False,
                                      "max_gen_toks": self.max_new_tokens},
                   process_results=process_results, metric_list=[acc, {**acc, "metric": "reward"}])
        if self.chat and self.assistant_prefix:
            cfg["gen_prefix"] = self.assistant_prefix
        return cfg

    def as_dataset(self, **_: object):
        """The splits as a datasets.DatasetDict, for lm-eval's `custom_dataset`."""
        return self._dataset

    @cached_property
    def _dataset(self):
        import datasets

        return datasets.DatasetDict(
            {s: datasets.Dataset.from_list(self.splits[s]) for s in SPLITS}
        )
