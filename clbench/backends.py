"""Population backends by name: one table, so a new backend is one entry.

`inprocess` scores members on the run's own model, `local` in worker processes
(clbench/population.py), `ray` in Ray actors (clbench/population_ray.py, an optional
extra that is imported only when chosen). The backend and its worker count are run
settings (`--backend`, `--workers`, a sequence's `backend`), not hyperparameters: ES-like
methods ask for the run's with `ctx.population()`. Runs recorded before the move carry them
in the method config; `clbench.config.split_legacy` reads them out in one place.
"""
from __future__ import annotations

from clbench.errors import UserError
from clbench.population import InProcessBackend, LocalProcessBackend


def _ray_backend(*args, **kwargs):
    from clbench.population_ray import RayBackend  # an optional extra: loaded only when chosen

    return RayBackend(*args, **kwargs)


# name -> constructor(model, tokenizer, registry, model_path, dtype, workers)
BACKENDS = {
    "inprocess": lambda model, tokenizer, registry, *_: InProcessBackend(model, tokenizer, registry),
    "local": LocalProcessBackend,
    "ray": _ray_backend,
}


def open_backend(name: str, model, tokenizer, registry, model_path: str | None = None,
                 dtype: str = "float32", workers: int = 2):
    """The population backend called `name` over `model` (one table, so a new backend is
    one entry). Process and Ray backends load replicas from `model_path`."""
    if name not in BACKENDS:
        raise UserError(f"backend {name!r} is not one of {', '.join(BACKENDS)}")
    if name != "inprocess" and model_path is None:
        raise UserError(f"backend {name!r} loads replicas from the model's folder; "
                        "use backend=inprocess where there is none")
    return BACKENDS[name](model, tokenizer, registry, model_path, dtype, workers)
