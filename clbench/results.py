"""RunResult: a run's output and, unchanged, a leaderboard submission.

Pydantic with `extra="forbid"` and finite floats, so a tampered or truncated
file fails validation with the field named. Written only through the atomic
writer.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clbench.atomic import write_json

SCHEMA_VERSION = 1
MAX_FIGURE = 1e15  # wall seconds, drift or reward beyond any real run (3e7 years of wall time):
# the board averages them over seeds, and two finite numbers near 1e308 overflow the mean
Count = Annotated[int, Field(ge=0)]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Figure = Annotated[float, Field(ge=0.0, le=MAX_FIGURE)]
Real = Annotated[float, Field(ge=-MAX_FIGURE, le=MAX_FIGURE)]  # may round below 0 (a KL of ~0)
Signed = Annotated[float, Field(ge=-1.0, le=1.0)]  # a difference of two scores, or a mean of them


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class MethodInfo(Doc):
    name: str
    version: int
    config: dict


class SequenceInfo(Doc):
    name: str
    fingerprint: str = Field(description="sha256 over the task specs and generated data")
    tasks: list[str]
    probes: list[str]
    task_versions: dict[str, int]


class BudgetInfo(Doc):
    steps_per_task: dict[str, Count]
    completions_per_task: dict[str, Count] = Field(description="scored completions actually spent")
    registered_steps: int
    registered_completions: int
    eval_split: str
    examples_per_column: dict[str, Annotated[int, Field(ge=1)]] = Field(
        description="test items scored per column (a column scored on no item has no score)")
    curve_split: str = "dev"
    curve_examples: Count
    eval_every: Optional[int] = Field(None, ge=1, description="steps between curve points: a point "
                                      "at step 0, every eval_every steps and at a task's last step "
                                      "(None in entries recorded before it was)")


def is_curve_step(step: int, steps: int, every: int) -> bool:
    """The runner's curve schedule (clbench/runner.py, after_step), which validate checks
    an entry's curves against: step 0, every `every` steps and the task's last step."""
    return step == 0 or step % every == 0 or step == steps


class DataAccess(Doc):
    earlier_tasks: bool = Field(False, description="learned from earlier tasks' training data (replay)")
    general: bool = Field(False, description="learned from general data (e.g. pretraining mixture)")


class ModelInfo(Doc):
    name: str
    fingerprint: str
    parameters: int
    dtype: str


class Matrix(Doc):
    rows: list[str]
    columns: list[str]
    values: list[list[float]]

    @field_validator("values")
    @classmethod
    def _in_unit_interval(cls, v):
        for row in v:
            for x in row:
                if not 0.0 <= x <= 1.0:
                    raise ValueError(f"score {x} outside [0, 1]")
        return v


class Summary(Doc):
    """clbench/metrics.py's summary of the matrix (validate recomputes it from the rows)."""
    acc: Unit
    bwt: Optional[Signed]
    fwt: Optional[Signed]
    forgetting: Optional[Signed]
    forgetting_avalanche: Optional[Signed]
    probe_delta: dict[str, Signed]


class CurvePoint(Doc):
    task: str
    step: Count = Field(description="update steps into the task; 0 = before its first")
    global_step: Count
    scores: dict[str, Unit]
    reward: Optional[Annotated[float, Field(ge=-MAX_FIGURE, le=MAX_FIGURE)]] = None
    drift_l2: Figure
    drift_l2_task: Figure
    sparsity: Unit


class DriftParts(Doc):
    """An L2 drift pooled over all weights, per component (q, k, v, o, mlp, embedding,
    norm) and per layer (clbench/geometry.py, geometry_report)."""
    overall: Figure
    by_component: dict[str, Figure]
    by_layer: dict[str, Figure]


class ShareParts(Doc):
    """A share of weight entries (unchanged within tau), pooled and broken down as above."""
    overall: Unit
    by_component: dict[str, Unit]
    by_layer: dict[str, Unit]


class TaskGeometry(Doc):
    """The update's geometry at the end of one task, measured from the base weights."""
    n_entries: Count
    drift_l2: DriftParts
    sparsity: dict[str, ShareParts] = Field(description="tau -> shares, in the run's own dtype")
    sparsity_bf16: dict[str, ShareParts] = Field(description="tau -> shares after a bfloat16 cast")
    drift_l2_task: Figure = Field(description="L2 distance from the weights at the task's start")
    kl_from_base: Real = Field(description="mean KL(current || base) of next-token distributions "
                               "on the probes' dev prompts, nats")


class Cost(Doc):
    """Shown on the board: a negative cost would make a method look cheap."""
    wall_seconds: Figure
    forward_tokens: Count
    backward_tokens: Count
    members_scored: Count
    completions: Count
    peak_rss_bytes: Count = Field(description="peak resident memory of the run's main process")
    peak_rss_children_bytes: Count = Field(0, description="largest finished child process "
                                           "(population workers, sandbox worker)")
    peak_gpu_bytes: Optional[Count] = Field(None, description="peak GPU memory torch allocated in "
                                            "the main process (None: the run used no GPU)")


class PopulationBackend(Doc):
    """Where population scoring ran: a resource of the run, not a hyperparameter (every
    backend gives the same numbers). Entries recorded before this field carry `backend`
    and `workers` in their method config instead (clbench.backends.split_legacy)."""
    name: Literal["inprocess", "local", "ray"]
    workers: Annotated[int, Field(ge=1)]


class Environment(Doc):
    python: str
    torch: str
    transformers: str
    lm_eval: str
    clbench: str
    device: str
    git_commit: Optional[str]
    platform: str
    cpu: Optional[str] = None  # runinfo.cpu_identity(); absent in entries made before it was recorded


class RunResult(Doc):
    schema_version: int = SCHEMA_VERSION
    method: MethodInfo
    sequence: SequenceInfo
    budget: BudgetInfo
    data_access: DataAccess
    model: ModelInfo
    seed: int
    matrix: Matrix
    summary: Summary
    curves: list[CurvePoint]
    geometry: dict[str, TaskGeometry] = Field(description="per task, at its end")
    cost: Cost
    environment: Environment
    population_backend: Optional[PopulationBackend] = Field(
        None, description="the run's population backend, used by ES-like methods (None in "
        "entries recorded before it moved out of the method config)")
    custom: Optional[str] = Field(
        None, description="why this entry departs from the sequence's registered budget or "
        "evaluation, or runs a sequence that registers no base model (set by `clbench submit "
        "--custom REASON`); custom entries are ranked apart on the leaderboard. Another base "
        "model than the one a sequence registers is refused even as custom. None: a standard entry")

    def write(self, path: str | Path) -> Path:
        # an entry recorded before population_backend existed is written back as it was
        unset = {"population_backend"} if self.population_backend is None else None
        return write_json(path, self.model_dump(mode="json", exclude=unset))

    @classmethod
    def read(cls, path: str | Path) -> "RunResult":
        """Strict, as the leaderboard validates: lax mode would read `true` as a score of 1.0
        and "0.5" as 0.5, so an edited file would be shown as if a run had written it."""
        return cls.model_validate(json.loads(Path(path).read_text()), strict=True)

