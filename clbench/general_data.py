"""The general replay set a sequence may declare: the probes' share of the pretraining mixture.

Drawn with the same stream `clbench pretrain-base` uses, from the shipped base's own
recipe (its `pretrain_recipe.json`), restricted to the probe families' default
variants: the probes' distribution, never a new task's items (which would teach the
task) nor a planted heuristic's wrong answers. Never an item of any family's dev or
test split (the stream blocks them), so replaying it cannot leak evaluation items.
"""
from __future__ import annotations

import functools

from clbench.config import GeneralReplay


@functools.lru_cache(maxsize=4)
def _draw(spec_json: str) -> tuple[tuple[str, dict], ...]:
    from clbench.model import EMBEDDED_DIR
    from clbench.recipe import DEFAULT_VARIANT, MixtureStream, check_families, recorded_recipe
    from clbench.registry import Registry

    spec = GeneralReplay.model_validate_json(spec_json)
    registry = Registry.load()
    recipe = recorded_recipe(EMBEDDED_DIR)
    families, blocked = check_families(recipe, registry)  # every family's held-out items
    entries = [(f, v, s) for f, v, s in recipe.entries()
               if v == DEFAULT_VARIANT and families[f].role == "probe"]
    stream = MixtureStream({f: families[f] for f, _, _ in entries}, entries, spec.seed, blocked)
    return tuple(stream.next_item() for _ in range(spec.size))


def general_items(spec: GeneralReplay) -> list[tuple[str, dict]]:
    """(family name, item) pairs, deterministic in the spec; each family scores its own."""
    return list(_draw(spec.model_dump_json()))
