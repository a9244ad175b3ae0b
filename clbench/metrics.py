"""Continual-learning metrics over an accuracy matrix. Pure Python, no torch.

The accuracy matrix ``R`` has ``T + 1`` rows and ``T + P`` columns:

* row 0 is the model before any learning (the base model);
  row ``i`` (1..T) is the model after learning task ``i``;
* columns ``0..T-1`` are the T new tasks in training order, then come the
  P held-out probes (abilities the method should not lose).

The formulas below use 1-indexed tasks as in the papers: "R[i][j]" means
row ``i``, column of task ``j`` (which is list index ``j - 1``).
Values are scores in [0, 1]. A metric that a sequence cannot define
(e.g. backward transfer with a single task) is ``None``, never 0 or NaN.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional

Matrix = list[list[float]]


def _r(matrix: Matrix, row: int, task: int) -> float:
    """R[row][task] with ``task`` 1-indexed (column ``task - 1``)."""
    return float(matrix[row][task - 1])


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def acc(matrix: Matrix, n_tasks: int) -> float:
    """Average accuracy after the last task: (1/T) * sum_j R[T][j], new tasks only."""
    T = n_tasks
    return _mean([_r(matrix, T, j) for j in range(1, T + 1)])


def bwt(matrix: Matrix, n_tasks: int) -> Optional[float]:
    """Backward transfer (GEM, Lopez-Paz & Ranzato 2017).

    BWT = 1/(T-1) * sum_{j<T} (R[T][j] - R[j][j]). Negative means forgetting.
    ``None`` when T < 2.
    """
    T = n_tasks
    if T < 2:
        return None
    return _mean([_r(matrix, T, j) - _r(matrix, j, j) for j in range(1, T)])


def fwt(matrix: Matrix, n_tasks: int) -> Optional[float]:
    """Forward transfer: FWT = 1/(T-1) * sum_{j=2..T} (R[j-1][j] - R[0][j]).

    GEM subtracts the score of a randomly initialised model on task j; for a
    pretrained LLM the meaningful reference is the base model, i.e. row 0.
    ``None`` when T < 2.
    """
    T = n_tasks
    if T < 2:
        return None
    return _mean([_r(matrix, j - 1, j) - _r(matrix, 0, j) for j in range(2, T + 1)])


def forgetting(matrix: Matrix, n_tasks: int) -> Optional[float]:
    """Average forgetting (Chaudhry et al. 2018, RWalk).

    f_j = max_{1<=l<T} R[l][j] - R[T][j] for j < T, averaged over j. The max
    runs over every row after learning started (row 0 excluded), so a task
    that kept improving after it was trained counts from its best score.
    ``None`` when T < 2.
    """
    T = n_tasks
    if T < 2:
        return None
    f = [max(_r(matrix, l, j) for l in range(1, T)) - _r(matrix, T, j) for j in range(1, T)]
    return _mean(f)


def forgetting_avalanche(matrix: Matrix, n_tasks: int) -> Optional[float]:
    """Forgetting as Avalanche defines it: mean over j<T of (R[j][j] - R[T][j]).

    Score right after training task j minus the final score. Averaged over
    the same tasks as BWT, this equals -BWT. ``None`` when T < 2.
    """
    T = n_tasks
    if T < 2:
        return None
    return _mean([_r(matrix, j, j) - _r(matrix, T, j) for j in range(1, T)])


def probe_delta(matrix: Matrix, tasks: list[str], probes: list[str]) -> dict[str, float]:
    """{probe: R[T][p] - R[0][p]}: how much each held-out ability moved overall."""
    T = len(tasks)
    return {
        name: float(matrix[T][T + k]) - float(matrix[0][T + k])
        for k, name in enumerate(probes)
    }


def validate(matrix: Matrix, tasks: list[str], probes: list[str]) -> None:
    """Raise ValueError unless ``matrix`` is (T+1) x (T+P) of finite numbers in [0, 1]."""
    T, P = len(tasks), len(probes)
    if T < 1:
        raise ValueError("need at least one task; got an empty task list")
    if len(set(tasks + probes)) != T + P:  # probe_delta is keyed by name: one would vanish
        raise ValueError(f"column names repeat: tasks {tasks}, probes {probes}")
    if len(matrix) != T + 1:
        raise ValueError(
            f"matrix has {len(matrix)} rows; expected T+1 = {T + 1} "
            f"(row 0 = base model, then one row per task for {T} task(s))"
        )
    for i, row in enumerate(matrix):
        if len(row) != T + P:
            raise ValueError(
                f"matrix row {i} has {len(row)} columns; expected T+P = {T + P} "
                f"({T} task(s) then {P} probe(s))"
            )
        for c, value in enumerate(row):
            if not _is_score(value):
                name = tasks[c] if c < T else probes[c - T]
                raise ValueError(f"matrix[{i}][{c}] ({name!r}) is {value!r}; "
                                 "expected a finite number in [0, 1]")


def is_finite_real(value) -> bool:
    """A finite real number: float() alone would take "0.5" and True (as 1.0)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(float(value))


def _is_score(value) -> bool:
    """A real number in [0, 1]: NaN or 1.5 would give metrics outside what a score
    matrix can produce."""
    return is_finite_real(value) and 0.0 <= float(value) <= 1.0


def summarize(matrix: Matrix, tasks: list[str], probes: list[str]) -> dict:
    """All metrics of one run. Keys: acc, bwt, fwt, forgetting,
    forgetting_avalanche, probe_delta. Undefinable metrics are None."""
    validate(matrix, tasks, probes)
    T = len(tasks)
    return {
        "acc": acc(matrix, T),
        "bwt": bwt(matrix, T),
        "fwt": fwt(matrix, T),
        "forgetting": forgetting(matrix, T),
        "forgetting_avalanche": forgetting_avalanche(matrix, T),
        "probe_delta": probe_delta(matrix, tasks, probes),
    }
