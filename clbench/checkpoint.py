"""Checkpoints: what resume needs and no more.

The current weights, the weights at the start of the current task (for the
per-task drift), the runner's state (rows, curves, cost so far) and the
method's own state (an optimizer, for gradient methods). ES needs nothing
else: its noise and batches derive from (seed, task, step). One checkpoint
folder is replaced atomically each time, so a long run never fills the disk.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from pydantic import BaseModel, Field
from safetensors.torch import load_file, save_file

from clbench.atomic import replace_dir, write_json
from clbench.model import params
from clbench.results import DataAccess


class RunState(BaseModel):
    rows: list[list[float]] = Field(default_factory=list)
    curves: list[dict] = Field(default_factory=list)
    geometry: dict[str, dict] = Field(default_factory=dict)
    cost: dict[str, float] = Field(default_factory=dict)
    completions_per_task: dict[str, int] = Field(default_factory=dict)
    data_access: DataAccess = Field(default_factory=DataAccess)
    task_index: int = 0
    step_in_task: int = 0
    global_step: int = 0
    resumes: int = 0

    @classmethod
    def fresh(cls) -> "RunState":
        return cls(cost={"wall_seconds": 0.0, "forward_tokens": 0, "backward_tokens": 0,
                         "members_scored": 0, "completions": 0})


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

    def load(self, model, method) -> RunState:
        weights = load_file(str(self.dir / "weights.safetensors"))
        missing = set(dict(model.named_parameters())) - set(weights)
        if missing:
            raise ValueError(f"checkpoint: weights lack {sorted(missing)[:3]}; wrong model for this run")
        model.load_state_dict(weights, strict=False)
        if (self.dir / "method.pt").exists():
            method.load_state_dict(torch.load(self.dir / "method.pt", weights_only=False))
        return RunState.model_validate(json.loads((self.dir / "state.json").read_text()))

    def load_task_start(self, model) -> dict[str, torch.Tensor]:
        ts = load_file(str(self.dir / "task_start.safetensors"))
        device = next(model.parameters()).device
        # the model's parameter order, so sums over tensors add up in the same order
        return {n: ts[n].to(device) for n, _ in model.named_parameters()}

    def log_process(self, steps: int, resumed: bool) -> None:
        """processes.json: update steps each process ran (tests check resume ran only the rest)."""
        path = self.out / "processes.json"
        log = json.loads(path.read_text()) if path.exists() else []
        log.append({"resumed": resumed, "steps": steps})
        write_json(path, log)
