"""Ray backend for population scoring: model replicas as Ray actors (optional extra).

The same interface as `clbench.population`'s backends, and the same rule: only
seeds, the batch and rewards cross (Qiu et al., arXiv 2509.24372, ran one engine
per GPU under Ray). Each actor loads the model itself from `model_path`, so no
weights travel at start; `sync` ships weights only when a replica's fingerprint
differs from the run model's (a resumed run). Members are split into contiguous
chunks, one per actor, so the reward order, and so the update, equal the
in-process backend's; every replica applies the update from the seeds.

`ray.init()` joins RAY_ADDRESS when it is set (`clbench run --ray-address`),
else starts a local cluster. With `--device cuda` each actor asks Ray for one GPU.
"""
from __future__ import annotations

import os

from clbench.errors import UserError
from clbench.population import Batch, Member, merge_replies, one_thread, score_members, split_members


class Replica:
    """One model replica; the Ray actor class is made from it at runtime."""

    def __init__(self, model_path: str, dtype: str, device: str, threads: int, env: dict):
        import torch

        os.environ.update(env)  # data dir and offline flags, also on other nodes
        torch.set_num_threads(threads)
        from clbench.model import load_model
        from clbench.registry import Registry

        self.lm = load_model(model_path, dtype=dtype, device=device)
        self.registry = Registry.load()

    def fingerprint(self) -> str:
        from clbench.model import weights_fingerprint

        return weights_fingerprint(self.lm.model)

    def load_state(self, state: dict) -> None:
        self.lm.model.load_state_dict(state)

    def evaluate(self, perturbation, members: list[Member], batches: list[Batch]):
        return score_members(self.lm.model, self.lm.tokenizer, self.registry, perturbation,
                             members, batches)

    def apply(self, fn, args) -> None:
        fn(self.lm.model, *args)


def require_ray():
    try:
        import ray
    except ImportError:
        raise UserError("backend: ray is not installed; pip install 'clbench[ray]' "
                        "(or choose --backend local / inprocess)") from None
    return ray


class RayBackend:
    """`workers` actors, each with a replica (one GPU each on cuda)."""

    name = "ray"

    def __init__(self, model, tokenizer, registry, model_path: str, dtype: str = "float32",
                 workers: int = 2):
        ray = require_ray()
        self.model, self.tokenizer, self.registry = model, tokenizer, registry
        self._started = not ray.is_initialized()
        address = os.environ.get("RAY_ADDRESS") or None
        if self._started:  # a local cluster gets a CPU slot per actor even on a small machine
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False,
                     **({} if address else {"num_cpus": max(os.cpu_count() or 1, workers)}))
        gpu = next(model.parameters()).is_cuda  # replicas go where the run's model is
        have = ray.cluster_resources().get("GPU" if gpu else "CPU", 0)
        if have < workers:
            raise UserError(f"workers: {workers} Ray actors need {workers} {'GPU' if gpu else 'CPU'}s "
                            f"but the cluster has {have:g}; lower --set workers=N")
        env = {k: v for k, v in os.environ.items()
               if k in ("CLBENCH_DATA_DIR", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME")}
        actor = ray.remote(num_cpus=1, num_gpus=1 if gpu else 0)(Replica)
        self.actors = [actor.remote(model_path, dtype, "cuda" if gpu else "cpu", 1, env)
                       for _ in range(workers)]
        self.sync()

    def _get(self, refs):
        ray = require_ray()
        try:
            return ray.get(refs)
        except ray.exceptions.RayError as e:
            raise RuntimeError(f"ray population worker failed: {e}") from None

    def sync(self) -> None:
        """Replicas load the model themselves; weights travel only if they differ (resume)."""
        from clbench.model import weights_fingerprint

        mine = weights_fingerprint(self.model)
        stale = [a for a, fp in zip(self.actors, self._get([a.fingerprint.remote() for a in self.actors]))
                 if fp != mine]
        if stale:
            ref = require_ray().put({k: v.detach().cpu() for k, v in self.model.state_dict().items()})
            self._get([a.load_state.remote(ref) for a in stale])

    def evaluate(self, perturbation, members: list[Member], batches: list[Batch]):
        chunks = split_members(members, len(self.actors))
        return merge_replies(self._get([a.evaluate.remote(perturbation, ch, batches)
                                        for a, ch in zip(self.actors, chunks) if ch]))

    def apply(self, fn, *args) -> None:
        refs = [a.apply.remote(fn, args) for a in self.actors]
        with one_thread():  # the run's own model meanwhile, off the actors' cores
            fn(self.model, *args)
        self._get(refs)

    def close(self) -> None:
        ray = require_ray()
        for a in self.actors:
            ray.kill(a)
        self.actors = []
        if self._started:
            ray.shutdown()
