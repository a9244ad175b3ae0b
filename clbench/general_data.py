"""The general replay set a sequence may declare: samples of the pretraining mixture.

Drawn with the same generator `clbench pretrain-base` uses, so it is the base
model's own training distribution, and never an item of any family's dev or test
split (the stream blocks them), so replaying it cannot leak evaluation items.
"""
from __future__ import annotations

import functools

from clbench.config import GeneralReplay


@functools.lru_cache(maxsize=4)
def _draw(spec_json: str) -> tuple[tuple[str, dict], ...]:
    from clbench.pretrain import MIXTURE, MixtureStream
    from clbench.registry import Registry

    spec = GeneralReplay.model_validate_json(spec_json)
    registry = Registry.load()
    stream = MixtureStream({n: registry.task(n) for n in MIXTURE}, MIXTURE, spec.seed)
    return tuple(stream.next_item() for _ in range(spec.size))


def general_items(spec: GeneralReplay) -> list[tuple[str, dict]]:
    """(family name, item) pairs, deterministic in the spec; each family scores its own."""
    return list(_draw(spec.model_dump_json()))
