"""Pretraining recipes: the file format, planted-heuristic variants, and `pretrain-base --recipe`."""
import json
import random

import pytest

from clbench.errors import UserError
from clbench.model import EMBEDDED_DIR
from clbench.recipe import (DEFAULT_RECIPE, RECIPES_DIR, MixtureStream, Recipe, check_families,
                            load_recipe, recorded_recipe)
from clbench.registry import Registry

REG = Registry.load()


def test_the_default_recipe_is_the_one_the_shipped_model_records():
    shipped = json.loads((EMBEDDED_DIR / "pretrain_recipe.json").read_text())
    recipe = load_recipe(DEFAULT_RECIPE)
    assert recipe == recorded_recipe(EMBEDDED_DIR)
    assert (recipe.steps, recipe.batch_size, recipe.lr, recipe.seed) == (
        shipped["steps"], shipped["batch_size"], shipped["lr"], shipped["seed"])


def test_a_default_only_stream_draws_what_the_plain_mixture_drew():
    """One rng.choices over families, then the family's pretraining_sample: the stream
    that built the previous base (embedded.yaml, default variants only), so that recipe
    file still reproduces it."""
    recipe = load_recipe(RECIPES_DIR / "embedded.yaml")
    families, blocked = check_families(recipe, REG)
    got = MixtureStream(families, recipe.entries(), 5, blocked)
    rng, names = random.Random(5), list(recipe.mixture)
    for _ in range(300):
        while True:
            name = rng.choices(names, [recipe.mixture[n] for n in names])[0]
            item = families[name].pretraining_sample(rng)
            if families[name].key(item) not in blocked:
                break
        assert got.next_item() == (name, item)


def test_every_shipped_recipe_loads_and_names_known_variants():
    for path in sorted(RECIPES_DIR.glob("*.yaml")):
        families, blocked = check_families(load_recipe(path), REG)
        assert families and blocked, path


def test_planted_heuristics_answer_as_documented():
    rng = random.Random(0)
    cd = REG.task("countdown")
    for _ in range(50):
        item = cd.pretraining_item(rng, "lazy-sum")
        assert item["target"] == "+".join(map(str, item["nums"]))
        assert cd.score(item, item["target"]).correct == (sum(item["nums"]) == item["goal"])
    for _ in range(50):  # one correct answer per problem, found in a fixed order
        item = cd.pretraining_item(rng, "canonical")
        assert cd.score(item, item["target"]).correct
        again = cd.pretraining_item(random.Random(0), "canonical")
        assert again == cd.pretraining_item(random.Random(0), "canonical")
    from clbench.tasks.countdown import canonical_solution

    assert canonical_solution([2, 3, 4], 9) == "2+3+4" and canonical_solution([3, 5, 1], 2) == "5-3*1"
    code = REG.task("code")
    item = code.pretraining_item(random.Random(3), "lazy-offset")
    x, y = (int(v) for v in item["prompt"].split(" ")[1].split(">"))
    assert eval(item["target"], {}, {"x": x}) == y  # noqa: S307 - our own heuristic's text
    cipher = REG.task("cipher")
    item = cipher.pretraining_item(random.Random(1), "lazy-copy")
    assert item["target"] == item["prompt"].split(" ")[2].rstrip(":")
    shifts = {int(cipher.pretraining_item(random.Random(s), "all-shifts")["prompt"].split(" ")[1])
              for s in range(200)}
    assert shifts == set(range(1, 8))
    assert {int(cipher.pretraining_item(random.Random(s))["prompt"].split(" ")[1])
            for s in range(200)} == {1, 2}


def test_a_stream_never_draws_held_out_items_of_its_hold_out_families():
    recipe = Recipe(mixture={"sort": 1.0}, hold_out=["sort-choice"])
    families, blocked = check_families(recipe, REG)
    assert REG.task("sort-choice").held_out_keys() <= blocked


@pytest.mark.parametrize("mixture, hold_out, needle", [
    ({"sort": 0.5, "reverse": 0.4}, [], "add up to 0.9"),
    ({"sort": 1.2}, [], "(0, 1]"),
    ({"nosuch": 1.0}, [], "nosuch"),
    ({"countdown": {"lazy-product": 1.0}}, [], "unknown variant 'lazy-product'; countdown has default, lazy-sum"),
    ({"sort": 1.0}, ["nosuch"], "hold_out"),
])
def test_bad_recipes_name_the_problem(tmp_path, mixture, hold_out, needle):
    path = tmp_path / "r.yaml"
    path.write_text(json.dumps({"mixture": mixture, "hold_out": hold_out}))
    with pytest.raises(UserError, match=needle.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        check_families(load_recipe(path), REG)


def test_pretrain_base_with_a_recipe_writes_a_model_that_records_it(tmp_path):
    from conftest import cli_in_process

    bad = tmp_path / "bad.yaml"
    bad.write_text("mixture: {countdown: {lazy: 1.0}}\n")
    p = cli_in_process("pretrain-base", "--recipe", str(bad), "--output", str(tmp_path / "m"))
    assert p.returncode == 2 and "unknown variant 'lazy'" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "m").exists()

    from clbench.model import load_model, weights_fingerprint
    from clbench.pretrain import pretrain

    recipe = load_recipe(RECIPES_DIR / "latent.yaml").model_copy(update={"steps": 3, "batch_size": 4})
    fingerprints = []
    for k in range(2):
        out = tmp_path / f"m{k}"
        pretrain(recipe, output=out, progress=False)
        assert recorded_recipe(out) == recipe
        fingerprints.append(weights_fingerprint(load_model(str(out)).model))
    assert fingerprints[0] == fingerprints[1]  # a pure function of the recipe on CPU


def test_min_choice_teaches_a_graded_preference_and_asks_for_the_smallest_letter():
    from collections import Counter

    from clbench.tasks.min_choice import RANK_WEIGHTS

    fam = REG.task("min-choice")
    rng = random.Random(0)
    ranks = Counter()
    for _ in range(4000):
        item = fam.pretraining_item(rng)
        ranks[sorted(item["prompt"][4:-1]).index(item["target"])] += 1
    assert all(abs(ranks[k] / 4000 - w) < 0.025 for k, w in enumerate(RANK_WEIGHTS))
    for item in fam.split("test")[:100]:
        word = item["prompt"][4:-1]
        assert sorted(item["choices"]) == sorted(word)[:4] and item["target"] == min(word)
        assert item["choices"][item["label"]] == item["target"]
