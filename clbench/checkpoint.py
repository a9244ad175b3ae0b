"""Checkpoints: what resume needs and no more.

The current weights, the weights at the start of the current task (for the
per-task drift), the runner's state (rows, curves, cost so far) and the
method's own state (an optimizer, for gradient methods). ES needs nothing
else: its noise and batches derive from (seed, task, step). One checkpoint
folder is replaced atomically each time, so a long run never fills the disk.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from clbench.atomic import replace_dir, write_json
from clbench.errors import UserError
from clbench.model import params
from clbench.results import Count, CurvePoint, DataAccess, Figure


class Spend(BaseModel):
    """What a run has spent so far: the counts of `results.Cost` that accumulate over
    steps (and over resumes: wall time before an interruption is kept), with the same
    bounds, checked as they are counted."""
    model_config = ConfigDict(validate_assignment=True)
    wall_seconds: Figure = 0.0
    forward_tokens: Count = 0
    backward_tokens: Count = 0
    members_scored: Count = 0
    completions: Count = 0

    def add(self, **counts: int) -> None:
        for k, v in counts.items():
            setattr(self, k, getattr(self, k) + int(v))


class RunState(BaseModel):
    rows: list[list[float]] = Field(default_factory=list)
    curves: list[CurvePoint] = Field(default_factory=list)
    geometry: dict[str, dict] = Field(default_factory=dict)
    cost: Spend = Field(default_factory=Spend)
    completions_per_task: dict[str, int] = Field(default_factory=dict)
    data_access: DataAccess = Field(default_factory=DataAccess)
    task_index: int = 0
    step_in_task: int = 0
    global_step: int = 0
    resumes: int = 0

    @classmethod
    def fresh(cls) -> "RunState":
        return cls()


def _check_shapes(weights: dict, model) -> None:
    """The checkpoint's tensors are the model's, name for name and shape for shape."""
    own = dict(model.named_parameters())
    missing = sorted(set(own) - set(weights))
    if missing:
        raise UserError(f"--resume: checkpoint weights lack {missing[:3]}; wrong model for this run")
    wrong = [n for n in own if tuple(weights[n].shape) != tuple(own[n].shape)]
    if wrong:
        raise UserError(f"--resume: checkpoint tensor {wrong[0]} has shape {tuple(weights[wrong[0]].shape)}, "
                        f"the model's is {tuple(own[wrong[0]].shape)}; wrong model for this run")


def _cpu(weights: dict) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in weights.items()}


class Checkpointer:
    def __init__(self, out: Path):
        self.out = Path(out)
        self.dir = self.out / "checkpoint"

    def exists(self) -> bool:
        return (self.dir / "state.json").exists()

    def save(self, model, task_start: dict, state: RunState, method_state: dict) -> None:
        def fill(tmp: Path) -> None:
            save_file(_cpu(params(model)), str(tmp / "weights.safetensors"))
            save_file(_cpu(task_start), str(tmp / "task_start.safetensors"))
            if method_state:
                torch.save(method_state, tmp / "method.pt")
            write_json(tmp / "state.json", state.model_dump(mode="json"))

        replace_dir(self.dir, fill)

    def check(self) -> None:
        """Read what a resume loads, before any model work: a torn or edited checkpoint
        is a usage error naming the folder, not a traceback after the model has loaded."""
        try:
            RunState.model_validate_json((self.dir / "state.json").read_text())
            for name in ("weights.safetensors", "task_start.safetensors"):
                with safe_open(str(self.dir / name), "pt") as f:
                    f.keys()
        except (OSError, ValueError, SafetensorError) as e:
            raise UserError(f"--resume: {self.dir} is damaged ({str(e).splitlines()[0][:200]}); "
                            "start a new run in another folder") from None

    def load(self, model, method) -> RunState:
        weights = load_file(str(self.dir / "weights.safetensors"))
        _check_shapes(weights, model)
        model.load_state_dict(weights, strict=False)
        if (self.dir / "method.pt").exists():
            try:  # tensors and plain containers only: an edited pickle runs no code
                state = torch.load(self.dir / "method.pt", weights_only=True)
            except (OSError, RuntimeError, pickle.UnpicklingError) as e:
                raise UserError(f"--resume: {self.dir / 'method.pt'} is not a method state of "
                                f"tensors and plain values ({str(e).splitlines()[0][:200]})") from None
            method.load_state_dict(state)
        return RunState.model_validate(json.loads((self.dir / "state.json").read_text()))

    def load_task_start(self, model) -> dict[str, torch.Tensor]:
        ts = load_file(str(self.dir / "task_start.safetensors"))
        _check_shapes(ts, model)
        device = next(model.parameters()).device
        # the model's parameter order, so sums over tensors add up in the same order
        return {n: ts[n].to(device) for n, _ in model.named_parameters()}

    def log_process(self, steps: int, resumed: bool) -> None:
        """processes.json: update steps each process ran (tests check resume ran only the rest)."""
        path = self.out / "processes.json"
        log = json.loads(path.read_text()) if path.exists() else []
        log.append({"resumed": resumed, "steps": steps})
        write_json(path, log)
