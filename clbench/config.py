"""Pydantic specs: sequences and their budgets, and run configuration.

Every field has a default or is required, and a description with units and why,
so `extra="forbid"` turns a typo into an error that names the field.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


#: population backends (clbench.backends.BACKENDS holds their constructors)
Backend = Literal["inprocess", "local", "ray"]


LEGACY_KEYS = ("backend", "workers")  # method-config keys that were run settings


def split_legacy(config: dict, config_cls=None) -> tuple[dict, dict]:
    """(the method config without the old population settings, those settings) for a
    config written when `backend` and `workers` were ES hyperparameters. A key the
    method's own Config declares (a plugin's `workers`, say) stays its hyperparameter, and
    so does every key of a method whose Config is unknown (None: not installed here)."""
    if config_cls is None:
        return dict(config), {}
    own = config_cls.model_fields
    moved = {k: config[k] for k in LEGACY_KEYS if k in config and k not in own}
    return {k: v for k, v in config.items() if k not in moved}, moved


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Budget(Strict):
    """What every method gets per task, so methods are compared on equal terms."""

    steps: int = Field(ge=1, description="update steps per task (ES iterations, optimizer steps)")
    completions: int = Field(ge=1, description="scored completions per task (population x batch x steps for ES)")
    eval_every: int = Field(10, ge=1, description="steps between curve points on the dev subset")
    dev_examples: int = Field(64, ge=1, description="dev items scored per column at each curve point")


class GeneralReplay(Strict):
    """General data a sequence offers for replay: at the embedded scale, samples of
    the pretraining mixture with no item of any family's dev or test split. Using it
    means training on the probes' distribution, so runs that do say so."""

    source: Literal["pretraining-mixture"] = Field(
        "pretraining-mixture", description="where the items come from")
    size: int = Field(2000, ge=1, description="items in the general replay set")
    seed: int = Field(0, description="seeds the draw from the mixture")


class SequenceSpec(Strict):
    """A registered task sequence: new tasks in order, held-out probes, budget."""

    name: str = Field(description="kebab-case registry name")
    description: str = ""
    tasks: list[str] = Field(min_length=1, description="new tasks, learned in this order")
    probes: list[str] = Field(default_factory=list, description="prior abilities never trained on")
    budget: Budget
    model: str = Field("embedded", description="base model the budget and scores were set for")
    base_model_fingerprint: str | None = Field(
        None, description="weights fingerprint (clbench.model.weights_fingerprint) of that base "
        "model, whose row-0 scores clbench/assets/base_scores.json registers. Left out, "
        "the registry fills in the fingerprint registered for `model` (by `clbench "
        "leaderboard register-base`); None when there is none, so the leaderboard accepts "
        "this sequence's entries only as custom ones")
    method_config: dict[str, dict] = Field(
        default_factory=dict, description="per-method tuned hyperparameters for this sequence")
    general_replay: GeneralReplay | None = Field(
        None, description="general data methods may replay (none: general replay unavailable)")
    backend: Backend | None = Field(
        None, description="population backend for this sequence's runs unless `--backend` says "
        "otherwise (None: local). The full-scale sequences use inprocess: a worker replica of a "
        "0.5B model per core would double the memory")

    #: fields added after the first board; hashed into the fingerprint only when a spec sets
    #: them, so a new optional field never invalidates the committed entries
    LATER_FIELDS: ClassVar[tuple[str, ...]] = ("backend",)

    def fingerprint_json(self) -> str:
        """The spec as sequence_fingerprint hashes it (README, "Leaderboard")."""
        return self.model_dump_json(exclude={f for f in self.LATER_FIELDS if f not in self.model_fields_set})

    @field_validator("tasks")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a task may appear only once in a sequence")
        return v

    @classmethod
    def from_yaml(cls, path: Path) -> "SequenceSpec":
        return cls.model_validate(yaml.safe_load(Path(path).read_text()))


def describe_validation_error(err: ValidationError, where: str = "") -> str:
    """One line per problem: `field: message`, for clean CLI errors."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        lines.append(f"{where}{loc}: {e['msg']}")
    return "; ".join(lines)


class RunConfig(Strict):
    """One run: a pure function of these fields on CPU."""

    method: str = Field(description="registered method name (see `clbench list`)")
    sequence: str = Field(description="registered sequence name")
    model: str = Field("embedded", description="'embedded' or a local Hugging Face model folder")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seeds noise, batches and everything "
                      "random; numpy's range, which transformers' set_seed (GRPO, EWC) requires")
    steps: int | None = Field(None, ge=1, le=10**6, description="override update steps per task "
                              "(quick runs; at most a million)")
    eval_every: int | None = Field(None, ge=1, description="override steps between curve points")
    eval_limit: int | None = Field(None, ge=1, description="score only the first N test items per "
                                   "column (quick runs; a leaderboard entry needs all)")
    curve_examples: int | None = Field(None, ge=1, description="override dev items per column "
                                       "at each curve point (the sequence's dev_examples)")
    output: str = Field("runs/run", description="output folder for result.json and checkpoints")
    dtype: str = Field("float32", pattern="^(float32|bfloat16|float16)$", description="weight dtype")
    device: str = Field("cpu", pattern="^(cpu|cuda|auto)$", description="where the model runs")
    backend: Backend | None = Field(
        None, description="population backend of ES-like methods: inprocess (the run's own model), "
        "local (one worker process per core) or ray (pip install clbench[ray]; one replica per "
        "actor/GPU). None: the sequence's, else local. A resource of the run: every backend gives "
        "the same numbers")
    workers: int = Field(2, ge=1, le=1024, description="worker processes (local) or actors (ray); at "
                         "most 1024, each holds a model replica")
    method_config: dict = Field(default_factory=dict, description="method hyperparameters "
                                "(override the sequence's tuned values, which override defaults)")
