"""Task families: deterministic splits, no leakage, scoring behaviour, the generated lm-eval config."""
import random
import re

import pytest

from clbench.registry import Registry
from clbench.data_files import DatasetFamily
from clbench.lm_eval_probe import LmEvalProbe
from clbench.tasks.countdown import TASK as COUNTDOWN
from clbench.tasks.countdown.scoring import score_plain, score_tagged

REG = Registry.load()
# Generated families only: real-data tasks and lm-eval probes need their data and are
# tested on small local files in test_fullscale.py.
FAMILIES = sorted(n for n in REG.tasks if not isinstance(REG.task(n), (DatasetFamily, LmEvalProbe)))


@pytest.mark.parametrize("name", FAMILIES)
def test_splits_are_disjoint_and_sized(name):
    fam = REG.task(name)
    keys = {s: [fam.key(i) for i in fam.split(s)] for s in ("train", "dev", "test")}
    for s, ks in keys.items():
        assert len(ks) == fam.split_sizes[s] and len(set(ks)) == len(ks)
    assert not set(keys["train"]) & (set(keys["dev"]) | set(keys["test"]))
    assert not set(keys["dev"]) & set(keys["test"])


def test_no_family_trains_on_another_familys_held_out_items():
    held = set().union(*(REG.task(n).held_out_keys() for n in FAMILIES))
    for n in FAMILIES:
        assert not {REG.task(n).key(i) for i in REG.task(n).split("train")} & held


@pytest.mark.parametrize("name", FAMILIES)
def test_generation_is_deterministic(name):
    fam = REG.task(name)
    fresh = type(fam)()
    assert fresh.split("test") == fam.split("test")
    assert fresh.fingerprint == fam.fingerprint


@pytest.mark.parametrize("name", [n for n in FAMILIES if REG.task(n).kind == "generate"])
def test_reference_answers_score_correct_and_garbage_scores_zero(name):
    fam = REG.task(name)
    items = fam.split("dev")[:40]
    good = fam.score_many(items, [i["target"] for i in items])
    assert all(s.correct for s in good)
    bad = fam.score_many(items, ["?!"] * len(items))
    assert all(not s.correct and s.reward == 0.0 for s in bad)


@pytest.mark.parametrize("name", FAMILIES)
def test_generated_lm_eval_config_is_the_family(name):
    """The config lm-eval gets is built from the class, so name, version, token budget,
    stop strings and prefix cannot drift apart; lm-eval loads it and reads our documents."""
    from lm_eval.tasks import TaskManager

    fam = REG.task(name)
    task = TaskManager(include_defaults=False).load([fam.lm_eval_config()])["tasks"][fam.lm_eval_task_name()]
    cfg = task.config
    assert cfg.metadata["version"] == fam.version
    assert [d["prompt"] for d in task.eval_docs][:5] == [i["prompt"] for i in fam.split("test")[:5]]
    if fam.kind == "generate":
        assert cfg.generation_kwargs["max_gen_toks"] == fam.max_new_tokens
        assert cfg.generation_kwargs["until"] == list(fam.stop)
        assert (cfg.gen_prefix or "") == (fam.assistant_prefix if fam.chat else "")
    else:
        assert cfg.output_type == "multiple_choice"


def test_countdown_scoring_by_hand():
    nums, target = [3, 5, 7], 22
    assert score_plain("3*5+7", nums, target).reward == pytest.approx(1.1)
    assert score_plain(" 7+3*5 ", nums, target).correct
    s = score_plain("3*5+8", nums, target)  # well formed, wrong numbers
    assert (s.reward, s.correct) == (pytest.approx(0.1), False)
    assert not score_plain("3*5+7+0", nums, target).correct  # extra number
    assert not score_plain("35-13", nums, target).correct  # concatenated digits
    assert not score_plain("-3+5*5", [3, 5, 5], 22).correct  # unary minus is not allowed
    assert score_plain("__import__('os')", nums, target).reward == 0.0
    assert score_plain("(3+5)/(7-7)", [3, 5, 7, 7], 1).reward == pytest.approx(0.1)  # div by 0
    assert score_plain("9" * 70, nums, target).reward == 0.0  # over the length cap
    assert score_plain("7*3+5/5", [7, 3, 5, 5], 22).correct  # float division within 1e-5


def test_countdown_tagged_format_reward():
    good = "<think>3 times 5 is 15</think>\n<answer>3*5+7</answer>"
    assert score_tagged(good, [3, 5, 7], 22).reward == pytest.approx(1.1)
    # no exact shape: 0.1*(0.1 think + 0.5 answer) + 1 for a right last answer
    loose = "<think>x</think> <answer>1</answer><answer>3*5+7</answer>"
    assert score_tagged(loose, [3, 5, 7], 22).reward == pytest.approx(0.06 + 1.0)
    assert score_tagged("3*5+7", [3, 5, 7], 22).reward == 0.0


# (completion after the prompt's "<think>", reward): the papers' reward on "<think>" + completion
TAGGED_CASES = [
    ("reasoning</think>\n<answer>3*5+7</answer>", 1.1),            # the papers' response shape
    ("<think>3*5+7", 0.0),                                         # a lone opening tag
    ("<answer>3*5+7", 0.0),                                        # an unclosed answer
    ("3*5+7</think>", 0.01),                                       # the prompt's <think> closed
    ("r</think>\n<answer>3*5+7", 0.01),                            # think closed, answer not
    ("r</think> <answer>3*5+7</answer>", 0.06 + 1.0),              # both pairs, not the shape
    ("r</think>\n<answer>1</answer>\n<answer>3*5+7</answer>", 1.1),  # the last answer counts
    ("r</think>\n<answer>3*5+7</answer>\n<answer>1</answer>", 0.1),
    ("r</think>\n<answer> 3*5+7 </answer>\n", 1.1),                # one final newline: still the shape
    ("r</think>\n<answer>3*5+7</answer> ", 1.06),                  # anything else around it: not
    ("  r</think>\n\n<answer>3*5+7</answer>", 1.06),               # two newlines at the seam: not
    ("</answer><answer>", 0.0),                                    # a close before its open
]


@pytest.mark.parametrize("completion,reward", TAGGED_CASES)
def test_tagged_reward_is_the_papers_on_think_plus_completion(completion, reward):
    from clbench.tasks.gsm8k import score_gsm8k

    assert score_tagged(completion, [3, 5, 7], 22).reward == pytest.approx(reward)
    full = REG.task("countdown-full-generated")
    assert full.score({"nums": [3, 5, 7], "goal": 22}, completion).reward == pytest.approx(reward)
    # gsm8k shares the format credit: the same tags around its gold number
    as_gsm = completion.replace("3*5+7", "22")
    assert score_gsm8k(as_gsm, "22").reward == pytest.approx(reward)


def test_tagged_scoring_is_linear_on_hostile_completions():
    """Many unclosed <answer> tags made the lazy tag regexes quadratic (14 s for 160 kB)."""
    import time

    from clbench.tasks.gsm8k import score_gsm8k

    start = time.perf_counter()
    assert score_tagged("<answer>" * 50_000, [3, 5, 7], 22).reward == 0.0  # no pair is closed
    assert score_gsm8k("<think>" + "</think>\n<answer></answer>x" * 20_000, "1").reward == pytest.approx(0.06)
    many = "<think></think>\n" + "<answer>1</answer>" * 20_000 + "<answer>3*5+7</answer>"
    assert score_tagged(many, [3, 5, 7], 22).reward == pytest.approx(1.1)
    assert time.perf_counter() - start < 2.0


def test_countdown_targets_are_reachable_by_construction():
    rng = random.Random(7)
    for _ in range(300):
        item = COUNTDOWN.sample(rng)
        assert 3 <= len(item["nums"]) <= 4 and all(1 <= n <= 9 for n in item["nums"])
        assert COUNTDOWN.score(item, item["target"]).correct


def test_code_prompt_hides_the_tests():
    fam = REG.task("code")
    for item in fam.split("test")[:50]:
        shown = {int(p.split(">")[0]) for p in item["prompt"][5:-1].split()}
        assert shown.isdisjoint({x for x, _ in item["tests"]})


def test_code_partial_credit():
    fam = REG.task("code")
    item = {"prompt": "code 1>2:", "target": "x+1", "tests": [[1, 2], [2, 3], [5, 10]]}
    assert fam.score(item, "x+1").reward == pytest.approx(2 / 3)
    assert fam.score(item, "2*x").reward == pytest.approx(2 / 3)  # 2 ok, 4 != 3, 10 ok
    assert fam.score(item, "x*x+1").reward == pytest.approx(1 / 3)  # 2 ok, 5 != 3, 26 != 10
    assert fam.score(item, "x*x+1").correct is False


def test_sort_choice_distractors_are_near_misses():
    fam = REG.task("sort-choice")
    for item in fam.split("test")[:100]:
        answer = item["choices"][item["label"]]
        assert answer == "".join(sorted(item["prompt"][5:-1]))
        assert len(set(item["choices"])) == 4
        for c in item["choices"]:
            assert sorted(c) == sorted(answer)
            assert sum(a != b for a, b in zip(c, answer)) in (0, 2)


PINNED = {  # (version, data fingerprint): change the data only with a version bump
    "cipher": (1, "c5cd677f18241ded"), "code": (1, "e8a72739cd2f0edb"),
    "countdown": (2, "3abd17a368280c3a"), "countdown-full-generated": (2, "e27084cec5bcd815"),
    "reverse": (1, "323e7b454c0d5148"), "sort": (1, "5884f20058630318"),
    "sort-choice": (1, "a02fb7a873e0dd2c"), "min-choice": (1, "48914dd634e41e06"),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_generated_data_is_pinned_to_its_version(name):
    fam = REG.task(name)
    assert (fam.version, fam.fingerprint) == PINNED[name], (
        f"{name}: generated data changed; bump its version (and the YAML's) and update PINNED")
