"""Pretraining recipes: what `clbench pretrain-base --recipe FILE` trains on.

A recipe names the optimizer settings and the mixture: each family's share of the
stream, optionally split among the family's named `pretraining_variants` (a planted
heuristic is one such variant: countdown's `lazy-sum` answers with the numbers in
prompt order joined by `+`). The core names no family: the recipe file does, and each
variant is code in its task's own folder.

Why variants: ES moves at most alpha per step along any one direction, so it learns
only where one small displacement raises the reward of many items at once (README,
"The embedded benchmark"; Gan and Isola, arXiv 2603.12228). A base that answers a
task greedily with a lazy heuristic while its correct answers stay likely under
sampling has such a direction: the skill is latent, as RL post-training assumes of
large models.
"""
from __future__ import annotations

import random
from pathlib import Path

import yaml
from pydantic import Field, ValidationError, field_validator

from clbench.config import Strict, describe_validation_error
from clbench.errors import UserError, one_line

RECIPES_DIR = Path(__file__).parent / "assets" / "recipes"
# The recipe that reproduces the shipped embedded model (its pretrain_recipe.json).
DEFAULT_RECIPE = RECIPES_DIR / "latent.yaml"
DEFAULT_VARIANT = "default"


class Recipe(Strict):
    """Optimizer settings and mixture of one pretraining run (every field: a default
    that reproduces the shipped base, or a file's value)."""

    steps: int = Field(1500, ge=1, description="AdamW steps")
    batch_size: int = Field(128, ge=1, description="sequences per step")
    lr: float = Field(3e-3, gt=0, allow_inf_nan=False,
                      description="peak learning rate (warmup, then cosine to 10%)")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seeds the initial weights and the item stream")
    mixture: dict[str, float | dict[str, float]] = Field(
        description="family -> share of the stream, or family -> {variant: share}; shares "
        "add up to 1. 'default' is the family's own pretraining_sample")
    hold_out: list[str] = Field(default_factory=list, description="more families (not in the "
                                "mixture) whose dev and test items the stream must never draw: "
                                "probes that share a mixture family's prompts, like sort-choice")

    @field_validator("mixture")
    @classmethod
    def _shares(cls, v: dict) -> dict:
        flat = [s for share in v.values() for s in (share.values() if isinstance(share, dict) else [share])]
        if not flat or any(not (0 < s <= 1) for s in flat):
            raise ValueError("every share must lie in (0, 1]")
        if abs(sum(flat) - 1) > 1e-6:
            raise ValueError(f"shares add up to {sum(flat):.6g}, not 1")
        return v

    def entries(self) -> list[tuple[str, str, float]]:
        """(family, variant, share) in file order: the order the stream draws from."""
        out = []
        for fam, share in self.mixture.items():
            parts = share if isinstance(share, dict) else {DEFAULT_VARIANT: share}
            out += [(fam, var, s) for var, s in parts.items()]
        return out


def recorded_recipe(model_dir: Path) -> Recipe:
    """The recipe a pretrained model folder records (its `pretrain_recipe.json`, which also
    holds measured figures such as seconds and final loss)."""
    import json

    data = json.loads((Path(model_dir) / "pretrain_recipe.json").read_text())
    return Recipe.model_validate({k: v for k, v in data.items() if k in Recipe.model_fields})


def load_recipe(path: Path | str = DEFAULT_RECIPE) -> Recipe:
    """A recipe file, or exit 2 naming the file and the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UserError(f"--recipe: cannot read {path} ({type(e).__name__}: {one_line(e)}); give a YAML "
                        f"recipe file like {DEFAULT_RECIPE}") from None
    try:
        return Recipe.model_validate(data if isinstance(data, dict) else {"mixture": data})
    except ValidationError as e:
        raise UserError(f"--recipe {path}: " + describe_validation_error(e)) from None


def check_families(recipe: Recipe, registry) -> tuple[dict, set[str]]:
    """(the mixture's families, the keys the stream must avoid): every family known and
    generating the variants named, else exit 2."""
    from clbench.registry import UnknownName

    def task(name: str, where: str):
        try:
            return registry.task(name)
        except UnknownName as e:
            raise UserError(f"recipe {where}: {e}") from None

    families = {}
    for fam, var, _ in recipe.entries():
        families.setdefault(fam, task(fam, "mixture"))
        known = (DEFAULT_VARIANT, *families[fam].pretraining_variants)
        if var not in known:
            raise UserError(f"recipe mixture.{fam}: unknown variant {var!r}; "
                            f"{fam} has {', '.join(known)}")
    guarded = [*families.values(), *(task(n, "hold_out") for n in recipe.hold_out)]
    return families, set().union(*(f.held_out_keys() for f in guarded))


class MixtureStream:
    """Deterministic stream of (family, item) from a recipe's entries.

    Never an item of any family's dev or test split. With only default variants it
    draws exactly what the pre-recipe stream drew (one `rng.choices` over the
    families, then the family's `pretraining_sample`), so the shipped base is
    reproduced from its recipe file.
    """

    def __init__(self, families: dict, entries: list[tuple[str, str, float]], seed: int,
                 blocked: set[str]):
        self.families = families
        self.entries = [(f, v) for f, v, _ in entries]
        self.weights = [s for _, _, s in entries]
        self.rng = random.Random(seed)
        self.blocked = blocked

    def next_item(self) -> tuple[str, dict]:
        while True:
            name, variant = self.rng.choices(self.entries, self.weights)[0]
            fam = self.families[name]
            item = fam.pretraining_item(self.rng, variant)
            if fam.key(item) not in self.blocked:
                return name, item

    def next_pair(self) -> tuple[str, str]:
        from clbench.generation import correct_completion

        name, item = self.next_item()
        return item["prompt"], correct_completion(self.families[name], item)
