"""The method contract that built-ins and plugins implement alike.

A method is a class with a `name`, a pydantic `Config` of its hyperparameters
and `learn(task, ctx)`; it updates `ctx.model` in place and calls `ctx.step()`
after every update. It declares what it needs so a mismatch fails before the
run (Mammoth's COMPATIBILITY, turned around).
"""
from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class MethodConfig(BaseModel):
    # a NaN or infinite hyperparameter (--set sigma=.inf) passes every bound check
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Method:
    name: ClassVar[str]
    version: ClassVar[int] = 1
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    # what the runner must provide: "gradients", "replay", "general_replay", "base_weights"
    needs: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: MethodConfig):
        self.config = config

    def requirements(self) -> frozenset[str]:
        """What this configured instance needs (a config switch may add to `needs`)."""
        return self.needs

    def begin_task(self, task, ctx) -> None:
        """Called before learn(); default nothing."""

    def learn(self, task, ctx) -> None:
        raise NotImplementedError

    def end_task(self, task, ctx) -> None:
        """Called after learn(); default nothing (EWC computes its Fisher here)."""

    # resume support: methods with state beyond the weights return and accept it
    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None
