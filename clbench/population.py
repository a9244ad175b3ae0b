"""Scoring a population of weight perturbations: only seeds and rewards cross.

A perturbation method (ES and its variants) hands the backend a picklable
`perturbation` object and a list of members; the backend applies each member's
perturbation to a model replica, generates greedily, scores with the task's
own scoring function, and undoes the perturbation. Weights never travel: every
replica applies the same seeded update (`apply`), as in Qiu et al.
(arXiv 2509.24372). `inprocess` uses the run's model; `local` runs `workers`
processes (default 2, one per core of a 2-core machine), since batched greedy
decoding of a tiny model gains little from a second thread (benchmarks/es_throughput.py).
"""
from __future__ import annotations

import multiprocessing as mp
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import torch

from clbench.generation import generate_tasks
from clbench.model import param_copy


@dataclass(frozen=True)
class Member:
    seed: int
    sign: int = 1  # +1 / -1 for mirrored (antithetic) pairs


@dataclass(frozen=True)
class Batch:
    task: str
    items: list


class Perturbation(Protocol):
    def perturb(self, model: torch.nn.Module, member: Member, scale: float) -> None:
        """theta += scale * (this member's noise), tensor by tensor, in place."""


def snapshot(model, perturbation) -> dict | None:
    """One copy of the weights per evaluate call when the perturbation asks for an
    exact restore (float `p + e - e` is not `p`; copying back is, on every backend)."""
    if getattr(perturbation, "restore", "copy") != "copy":
        return None
    return param_copy(model)


@torch.no_grad()
def _restore(model, perturbation, member: Member, saved: dict | None) -> None:
    if saved is None:
        perturbation.perturb(model, member, -1.0)  # regenerate and subtract: no copy
        return
    for n, p in model.named_parameters():
        p.copy_(saved[n])


def score_member(model, tokenizer, registry, perturbation, member: Member,
                 batches: list[Batch], saved: dict | None = None) -> tuple[list[float], int]:
    """Mean reward per batch for one member, and tokens processed; restores the weights."""
    perturbation.perturb(model, member, +1.0)
    try:
        fams = [registry.task(b.task) for b in batches]
        comps, tokens = generate_tasks([(f, b.items) for f, b in zip(fams, batches)], model, tokenizer)
        rewards = []
        for fam, b, c in zip(fams, batches, comps):
            scores = fam.scores(b.items, c)
            rewards.append(sum(s.reward for s in scores) / len(scores))
    finally:
        _restore(model, perturbation, member, saved)
    return rewards, tokens


def score_members(model, tokenizer, registry, perturbation, members: list[Member],
                  batches: list[Batch]) -> list[tuple[list[float], int]]:
    """score_member for each member on one replica, with one weight snapshot for all."""
    saved = snapshot(model, perturbation)
    return [score_member(model, tokenizer, registry, perturbation, m, batches, saved) for m in members]


def split_members(members: list[Member], k: int) -> list[list[Member]]:
    """Contiguous chunks, one per replica, so results concatenate in member order and
    the update equals the in-process backend's."""
    size = -(-len(members) // k)
    return [members[i * size : (i + 1) * size] for i in range(k)]


def merge_replies(replies: list[list[tuple[list[float], int]]]) -> tuple[list[list[float]], int]:
    """Per-replica score lists -> (rewards in member order, total tokens)."""
    flat = [r for reply in replies for r in reply]
    return [r for r, _ in flat], sum(n for _, n in flat)


@contextmanager
def one_thread():
    """Run the main process single-threaded while the workers hold the cores: a
    multi-threaded op there oversubscribes them and libgomp's barriers spin (applying
    an ES update on 2 cores took 0.57 s instead of 0.33 s). Element-wise ops give the same
    bits at any thread count, so the numbers do not change."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class InProcessBackend:
    """Scores members one after another on the run's own model."""

    name = "inprocess"

    def __init__(self, model, tokenizer, registry):
        self.model, self.tokenizer, self.registry = model, tokenizer, registry

    def evaluate(self, perturbation, members: list[Member], batches: list[Batch]):
        return merge_replies([score_members(self.model, self.tokenizer, self.registry,
                                            perturbation, members, batches)])

    def apply(self, fn, *args) -> None:
        """Run `fn(model, *args)` on every replica (here: the one model)."""
        fn(self.model, *args)

    def sync(self) -> None:
        return None

    def close(self) -> None:
        return None


def _worker(conn, model_path: str, dtype: str, threads: int) -> None:
    """A replica: loads the model once, then serves evaluate/apply/sync requests."""
    torch.set_num_threads(threads)
    from clbench.model import load_model
    from clbench.registry import Registry

    lm = load_model(model_path, dtype=dtype)
    registry = Registry.load()
    while True:
        msg = conn.recv()
        kind = msg[0]
        try:
            if kind == "evaluate":
                _, pert, members, batches = msg
                conn.send(("ok", score_members(lm.model, lm.tokenizer, registry, pert, members, batches)))
            elif kind == "apply":
                _, fn, args = msg
                fn(lm.model, *args)
                conn.send(("ok", None))
            elif kind == "sync":
                lm.model.load_state_dict(msg[1])
                conn.send(("ok", None))
            elif kind == "close":
                conn.send(("ok", None))
                return
        except Exception as e:  # report, don't hang the parent
            conn.send(("error", repr(e)))


class LocalProcessBackend:
    """`workers` processes (default 2, one per core here), each with a model replica and one thread.

    Members are split into contiguous chunks, one per worker, so the result
    order (and therefore the update) is the same as in-process.
    """

    name = "local"

    def __init__(self, model, tokenizer, registry, model_path: str, dtype: str = "float32",
                 workers: int | None = None):
        self.model, self.tokenizer, self.registry = model, tokenizer, registry
        n = workers or max(1, min(2, os.cpu_count() or 1))
        ctx = mp.get_context("spawn")  # fork after torch threads start can deadlock
        self.conns, self.procs = [], []
        for _ in range(n):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(child, model_path, dtype, 1), daemon=True)
            p.start()
            self.conns.append(parent)
            self.procs.append(p)
        self.sync()

    def _ask_all(self, msgs, meanwhile=None) -> list:
        for c, m in zip(self.conns, msgs):
            c.send(m)
        if meanwhile is not None:
            meanwhile()  # the main process works while the workers do
        out = []
        for c in self.conns:
            status, payload = c.recv()
            if status != "ok":
                raise RuntimeError(f"population worker failed: {payload}")
            out.append(payload)
        return out

    def sync(self) -> None:
        """Load the run model's current weights into every replica (start, resume)."""
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        self._ask_all([("sync", state)] * len(self.conns))

    def evaluate(self, perturbation, members: list[Member], batches: list[Batch]):
        chunks = split_members(members, len(self.conns))
        return merge_replies(self._ask_all([("evaluate", perturbation, ch, batches) for ch in chunks]))

    def apply(self, fn, *args) -> None:
        def meanwhile():
            with one_thread():
                fn(self.model, *args)

        self._ask_all([("apply", fn, args)] * len(self.conns), meanwhile=meanwhile)

    def close(self) -> None:
        for c, p in zip(self.conns, self.procs):
            try:
                c.send(("close",))
                c.recv()
            except (OSError, EOFError):
                pass
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
