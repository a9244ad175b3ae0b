"""Full scale, offline: every real-data loader on small local files in the public
schemas, lm-eval's own probes on local rows, local HF model folders (with and
without a chat template), dtype/device options, and end-to-end runs of the
full-scale sequences with a tiny random Llama. Nothing here reaches a hub."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from clbench.cli import main
from clbench.data_files import DATA_ENV
from clbench.registry import Registry

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

COUNTDOWN_ROWS = [{"target": t, "nums": n} for t, n in [
    (24, [3, 8, 1]), (98, [44, 19, 35]), (11, [2, 9, 4]), (36, [6, 6, 1]), (10, [1, 2, 3, 4]),
    (50, [25, 2, 7]), (7, [49, 7, 1]), (64, [8, 8, 1]), (15, [3, 5, 1]), (20, [4, 5, 2, 3]),
    (3, [9, 3, 1]), (90, [9, 10, 1])]]
GSM_ROWS = [{"question": f"Tom has {a} apples and buys {b} more. How many apples does he have?",
             "answer": f"He has {a}+{b}={a + b} apples.\n#### {a + b:,}"} for a, b in
            [(3, 4), (10, 5), (1200, 34), (7, 8), (2, 2), (9, 1)]]


def mbpp_row(i: int, k: int) -> dict:
    return {"task_id": i, "text": f"Write a function to add {k} to a number.",
            "code": f"def add_{i}(x):\n    return x + {k}",
            "test_list": [f"assert add_{i}(1) == {1 + k}", f"assert add_{i}(0) == {k}",
                          f"assert add_{i}(-{k}) == 0"],
            "test_setup_code": "", "challenge_test_list": []}


HELLASWAG = [{"ind": i, "activity_label": "Cooking", "ctx_a": "A man cuts an onion.", "ctx_b": "he",
              "ctx": "A man cuts an onion. he", "endings": ["puts it in a pan.", "flies away.",
                                                          "sings loudly.", "eats the knife."],
              "source_id": "x", "split": "val", "split_type": "indomain", "label": str(i % 4)}
             for i in range(4)]
ARC = [{"id": f"q{i}", "question": f"What is {i} plus one?",
        "choices": {"text": [str(i + 1), str(i + 2), str(i)], "label": ["A", "B", "C"]}, "answerKey": "A"}
       for i in range(4)]
PIQA = [{"goal": "To open a jar,", "sol1": "twist the lid.", "sol2": "eat the lid.", "label": 0},
        {"goal": "To dry hands,", "sol1": "use water.", "sol2": "use a towel.", "label": 1}]


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_data(root: Path) -> Path:
    """Every full-scale task and probe, a few rows each, in the public schemas."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "countdown-full").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(COUNTDOWN_ROWS), root / "countdown-full" / "train-00000-of-00001.parquet")
    _jsonl(root / "gsm8k" / "train.jsonl", GSM_ROWS[:4])
    _jsonl(root / "gsm8k" / "test.jsonl", GSM_ROWS[4:])
    _jsonl(root / "mbpp" / "train.jsonl", [mbpp_row(i, i) for i in range(1, 5)])
    _jsonl(root / "mbpp" / "test.jsonl", [mbpp_row(i, i) for i in range(11, 14)])
    _jsonl(root / "mbpp" / "validation.jsonl", [mbpp_row(i, i) for i in range(21, 23)])
    _jsonl(root / "hellaswag" / "validation.jsonl", HELLASWAG)
    _jsonl(root / "arc_easy" / "test.jsonl", ARC)
    _jsonl(root / "piqa" / "validation.jsonl", PIQA)
    _jsonl(root / "mmlu_high_school_mathematics" / "test.jsonl",
           [{"question": "1+1?", "subject": "high_school_mathematics", "choices": ["1", "2", "3", "4"],
             "answer": 1}])
    return root


def save_tiny_model(path: Path, chat_template: str | None, seed: int = 0, positions: int = 2048) -> Path:
    """A random 2-layer Llama with the char tokenizer, saved as any HF model folder is."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from clbench.model import build_char_tokenizer

    tok = build_char_tokenizer()
    tok.chat_template = chat_template
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=positions,
                      tie_word_embeddings=True, pad_token_id=tok.pad_token_id,
                      eos_token_id=tok.eos_token_id, bos_token_id=None)
    torch.manual_seed(seed)
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = write_data(tmp_path_factory.mktemp("data"))
    old = os.environ.get(DATA_ENV)
    os.environ[DATA_ENV] = str(root)
    for t in Registry.load().tasks.values():  # splits are cached per process: read them afresh
        t.obj.__dict__.pop("splits", None)
        t.obj.__dict__.pop("_loaded", None)
        t.obj.__dict__.pop("lm_eval_task", None)
    yield root
    if old is None:
        os.environ.pop(DATA_ENV, None)
    else:
        os.environ[DATA_ENV] = old


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"plain": save_tiny_model(root / "plain", None), "chat": save_tiny_model(root / "chat", CHATML)}


# ---- loaders ---------------------------------------------------------------------------
def test_countdown_full_reads_parquet_and_carves_disjoint_splits(data_dir):
    task = Registry.load().task("countdown-full")
    s = task.splits
    assert [len(s[k]) for k in ("train", "dev", "test")] == [6, 3, 3]
    keys = [{task.key(i) for i in s[k]} for k in ("train", "dev", "test")]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    item = next(i for sp in s.values() for i in sp if i["goal"] == 24)
    assert item["nums"] == [3, 8, 1] and "create an equation that equals 24" in item["prompt"]
    ok = task.score(item, "<think>3*8=24</think>\n<answer>3*8*1</answer>")
    assert (ok.reward, ok.correct) == (pytest.approx(1.1), True)
    wrong = task.score(item, "<answer>3*8</answer>")  # does not use every number
    assert (wrong.reward, wrong.correct) == (pytest.approx(0.05), False)
    assert task.chat and task.fingerprint == Registry.load().task("countdown-full").fingerprint


def test_gsm8k_uses_public_splits_and_scores_the_gold_number(data_dir):
    task = Registry.load().task("gsm8k")
    s = task.splits
    assert [i["target"] for i in s["test"]] == ["4", "10"]
    big = next(i for i in s["train"] + s["dev"] if i["target"] == "1234")  # '#### 1,234'
    assert task.score(big, "<think>1200+34</think>\n<answer>1,234</answer>").correct
    assert task.score(big, "<think>x</think>\n<answer>$1234.</answer>").reward == pytest.approx(1.1)
    assert task.score(big, "<answer>1235</answer>").reward == pytest.approx(0.05)
    assert not task.score(big, "1234").correct  # the answer must be tagged


def test_mbpp_scores_in_the_sandbox(data_dir):
    task = Registry.load().task("mbpp")
    s = task.splits
    assert [i["task_id"] for i in s["test"]] == [11, 12, 13] and len(s["dev"]) == 2
    item = s["test"][0]
    assert "assert add_11(1) == 12" in item["prompt"]
    good = "Here it is:\n```python\ndef add_11(x):\n    return x + 11\n```"
    half = "```python\ndef add_11(x):\n    return 12 if x == 1 else 0\n```"
    hostile = "```python\nimport os\ndef add_11(x):\n    os.system('touch /tmp/pwned')\n    return x + 11\n```"
    loop = "```python\ndef add_11(x):\n    while True:\n        pass\n```"
    got = task.score_many([item] * 4, [good, half, hostile, loop])
    assert [(round(g.reward, 3), g.correct) for g in got] == [(1.0, True), (0.667, False), (0.0, False),
                                                              (0.0, False)]
    assert task.score(item, task.splits["test"][0]["target"]).correct  # the reference passes


def test_missing_data_is_exit_2_naming_env_var_and_hub_id(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))  # an empty data folder, and offline
    task = Registry.load().task("countdown-full")
    for attr in ("splits", "_loaded"):
        task.__dict__.pop(attr, None)
    rc = main(["run", "--method", "es", "--sequence", "countdown-full", "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "countdown-full" in err and DATA_ENV in err and "Jiayi-Pan/Countdown-Tasks-3to4" in err
    assert not (tmp_path / "o").exists()  # nothing written
    task.__dict__.pop("splits", None)
    task.__dict__.pop("_loaded", None)


def test_wrong_schema_is_a_clean_error(tmp_path, monkeypatch):
    from clbench.errors import UserError

    _jsonl(tmp_path / "countdown-full" / "train.jsonl", [{"target": 3, "numbers": [1, 2]}])
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    task = type(Registry.load().task("countdown-full"))()
    with pytest.raises(UserError, match="lacks column.*nums"):
        task.splits


GOOD_GSM = [{"question": f"q{i}?", "answer": f"so\n#### {i}"} for i in range(6)]
GOOD_MBPP = [{"task_id": i, "text": f"t{i}", "code": "def f(x): return x", "test_list": [f"assert f({i}) == {i}"]}
             for i in range(6)]


@pytest.mark.parametrize("task,files,needle", [
    ("countdown-full", {"train.jsonl": [{"target": None, "nums": [3, 8, 1]}] + COUNTDOWN_ROWS}, "'target'"),
    ("countdown-full", {"train.jsonl": [{"target": 24.5, "nums": [3, 8, 1]}] + COUNTDOWN_ROWS}, "'target'"),
    ("countdown-full", {"train.jsonl": [{"target": 24, "nums": "3 8 1"}] + COUNTDOWN_ROWS}, "'nums'"),
    ("gsm8k", {"train.jsonl": [{"question": None, "answer": "#### 5"}] + GOOD_GSM}, "'question'"),
    ("gsm8k", {"train.jsonl": [{"question": "q", "answer": "five"}] + GOOD_GSM}, "#### NUMBER"),  # scored mid-run
    ("mbpp", {"train.jsonl": [{**GOOD_MBPP[0], "task_id": 99, "test_list": "assert f(0) == 0"}] + GOOD_MBPP},
     "'test_list'"),
    ("mbpp", {"train.jsonl": [{**GOOD_MBPP[0], "task_id": "x"}] + GOOD_MBPP}, "'task_id'"),
])
def test_bad_values_in_local_data_are_exit_2_naming_file_row_and_column(tmp_path, capsys, monkeypatch, task,
                                                                       files, needle):
    """A null, a non-number or a string where a list belongs is a UserError before anything
    is written, not a traceback (or, for a gold answer that is no number, a crash mid-run)."""
    if task != "countdown-full":  # math-then-code-full reads countdown-full first
        _jsonl(tmp_path / "data" / "countdown-full" / "train.jsonl", COUNTDOWN_ROWS)
    for name, rows in files.items():
        _jsonl(tmp_path / "data" / task / name, rows)
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    reg = Registry.load()
    fams = [reg.task(task), reg.task("countdown-full")]
    forget = lambda: [f.__dict__.pop(a, None) for f in fams for a in ("splits", "_loaded")]  # noqa: E731
    forget()
    args = {"countdown-full": ["run", "--method", "es", "--sequence", "countdown-full"],
            "mbpp": ["run", "--method", "es", "--sequence", "math-then-code-full"],
            "gsm8k": ["eval", "--tasks", "gsm8k", "--limit", "1"]}[task]
    rc = main(args + ["--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    forget()
    assert rc == 2 and "Traceback" not in err, err
    assert f"{task}/train.jsonl" in err and "row 0" in err and needle in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("files,needle", [
    ({"train.jsonl": GOOD_GSM[:4], "tset.jsonl": GOOD_GSM[4:]}, "not tset"),  # a typo: test carved instead
    ({"train.jsonl": GOOD_GSM[:4], "dev.jsonl": GOOD_GSM[4:]}, "not dev"),  # gsm8k carves dev from train
    ({"train.jsonl": GOOD_GSM[:4], "test.jsonl": []}, "test.jsonl holds no rows"),
])
def test_local_split_files_are_read_or_refused_never_silently_replaced(tmp_path, monkeypatch, files, needle):
    from clbench.errors import UserError

    for name, rows in files.items():
        (tmp_path / "gsm8k").mkdir(exist_ok=True)
        (tmp_path / "gsm8k" / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(UserError, match=needle):
        type(Registry.load().task("gsm8k"))().splits


def test_every_shard_of_a_split_is_read(tmp_path, monkeypatch):
    """Hub-style shards train-00000-of-00002 and train-00001-of-00002 are one split."""
    _jsonl(tmp_path / "countdown-full" / "train-00000-of-00002.jsonl", COUNTDOWN_ROWS[:6])
    _jsonl(tmp_path / "countdown-full" / "train-00001-of-00002.jsonl", COUNTDOWN_ROWS[6:])
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    s = type(Registry.load().task("countdown-full"))().splits
    assert sum(len(v) for v in s.values()) == len(COUNTDOWN_ROWS)


def test_the_generated_stand_in_is_never_the_real_task():
    reg = Registry.load()
    real, fake = reg.task("countdown-full"), reg.task("countdown-full-generated")
    assert real.source.hub_id == "Jiayi-Pan/Countdown-Tasks-3to4" and not hasattr(fake, "source")
    assert reg.sequence("countdown-full").tasks == ["countdown-full"]
    assert reg.sequence("countdown-full-generated").tasks == ["countdown-full-generated"]
    assert reg.sequence("math-then-code-full").tasks == ["countdown-full", "mbpp"]


# ---- lm-eval's own probes ----------------------------------------------------------------
def test_lm_eval_probes_read_local_rows_and_score_as_lm_eval(data_dir, models):
    from lm_eval.evaluator import evaluate

    from clbench.harness import Harness
    from clbench.model import load_model

    reg = Registry.load()
    hs = reg.task("hellaswag")
    assert len(hs.splits["test"]) == 4 and hs.splits["test"][0]["choices"][0] == "puts it in a pan."
    assert hs.splits["test"][1]["label"] == 1
    lm = load_model(str(models["plain"]))
    h = Harness(lm.model, lm.tokenizer)
    ours = h.score(["hellaswag", "arc_easy", "piqa"], split="test")
    direct = evaluate(lm=h.lm, task_dict={"hellaswag": hs.lm_eval_task}, verbosity="ERROR")
    assert ours["hellaswag"] == direct["results"]["hellaswag"]["acc,none"]
    assert all(0.0 <= v <= 1.0 for v in ours.values())


def test_probe_without_data_offline_is_exit_2_naming_it(tmp_path, models, capsys, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    from clbench.lm_eval_probe import LmEvalProbe
    from clbench.errors import UserError

    with pytest.raises(UserError, match="probe 'arc_easy'.*CLBENCH_DATA_DIR/arc_easy"):
        LmEvalProbe("arc_easy").splits


# ---- models: local folders, chat templates, dtype, device -----------------------------------
def test_chat_template_is_applied_only_where_the_model_has_one(models):
    from clbench.generation import chat_prompts
    from clbench.model import load_model

    plain, chat = load_model(str(models["plain"])), load_model(str(models["chat"]))
    assert chat_prompts(plain.tokenizer, ["hi"]) == ["hi"]
    assert chat_prompts(chat.tokenizer, ["hi"]) == ["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"]


def test_full_scale_answers_are_not_cut_at_a_newline(models):
    from clbench.generation import generate
    from clbench.model import load_model

    lm = load_model(str(models["plain"]))
    lines, _ = generate(lm.model, lm.tokenizer, ["cd 1 2=3:"] * 2, 40)
    free, tokens = generate(lm.model, lm.tokenizer, ["cd 1 2=3:"] * 2, 40, stop=())
    assert all("\n" not in c for c in lines)
    assert all(len(c) >= len(a) for c, a in zip(free, lines)) and tokens > 0


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_dtype_and_device_options(models, dtype):
    from clbench.model import load_model

    lm = load_model(str(models["plain"]), dtype=dtype, device="auto")
    p = next(lm.model.parameters())
    assert p.dtype == getattr(torch, dtype)
    assert p.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_is_exit_2(tmp_path, capsys):
    rc = main(["run", "--method", "es", "--sequence", "math-only", "--steps", "1", "--device", "cuda",
               "--output", str(tmp_path / "o")])
    assert rc == 2 and "cuda" in capsys.readouterr().err


def test_unknown_model_offline_is_exit_2_saying_how_to_provide_it(tmp_path, capsys):
    rc = main(["run", "--method", "es", "--sequence", "math-only", "--model", "nobody/no-such-model-xyz",
               "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "nobody/no-such-model-xyz" in err and "--model /path" in err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


def test_context_shorter_than_the_token_budget_is_exit_2_naming_both(tmp_path, data_dir, capsys):
    """A 512-position model cannot write countdown's 1024-token answers: exit 2 before the run
    folder exists, not a library assertion at the first generation."""
    short = save_tiny_model(tmp_path / "short", CHATML, positions=512)
    rc = main(["run", "--method", "es", "--sequence", "countdown-full-generated", "--model", str(short),
               "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and not (tmp_path / "o").exists()
    assert "holds 512 positions" in err and "max_new_tokens 1024" in err and "'countdown-full-generated'" in err


# ---- end to end ----------------------------------------------------------------------------
def _run(args: list[str], data_dir: Path) -> dict:
    """The installed CLI in a child process, as a user would run it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "clbench", "run", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = args[args.index("--output") + 1]
    return json.loads((Path(out) / "result.json").read_text())


QUICK = ["--steps", "2", "--eval-every", "2", "--eval-limit", "2", "--set", "population=2",
         "--set", "batch_size=2", "--set", "sigma=0.05", "--set", "alpha=0.01"]


@pytest.mark.slow
@pytest.mark.ci
def test_es_on_countdown_full_generated_with_a_local_chat_model(models, data_dir, tmp_path):
    res = _run(["--method", "es", "--sequence", "countdown-full-generated", "--model", str(models["chat"]),
                "--output", str(tmp_path / "r"), *QUICK], data_dir)
    assert res["matrix"]["columns"] == ["countdown-full-generated", "hellaswag", "arc_easy", "piqa"]
    assert res["model"]["name"] == str(models["chat"]) and res["budget"]["steps_per_task"] == {
        "countdown-full-generated": 2}
    assert res["summary"]["bwt"] is None and set(res["summary"]["probe_delta"]) == {"hellaswag", "arc_easy", "piqa"}
    assert res["cost"]["members_scored"] == 4 and res["cost"]["completions"] == 8
    assert res["budget"]["examples_per_column"]["hellaswag"] == 2
    drift = res["geometry"]["countdown-full-generated"]["drift_l2"]["overall"]
    rewards = [c["reward"] for c in res["curves"] if c["reward"] is not None]
    if all(r == 0.0 for r in rewards):  # a random model: equal rewards, zero z-scores, no update
        assert drift == 0.0


@pytest.mark.slow
@pytest.mark.ci
def test_es_on_countdown_full_from_a_local_parquet_file(models, data_dir, tmp_path):
    res = _run(["--method", "es", "--sequence", "countdown-full", "--model", str(models["plain"]),
                "--output", str(tmp_path / "r"), *QUICK], data_dir)
    assert res["sequence"]["tasks"] == ["countdown-full"]
    assert len(res["matrix"]["values"]) == 2 and res["cost"]["members_scored"] == 4


def test_es_in_bfloat16_on_cpu_reports_bf16_weights_and_sparsity(tmp_path, data_dir):
    res = _run(["--method", "es", "--sequence", "math-only", "--dtype", "bfloat16", "--steps", "2",
                "--eval-limit", "8", "--curve-examples", "8", "--backend", "inprocess",
                "--set", "population=4", "--set", "batch_size=16", "--output", str(tmp_path / "bf")], data_dir)
    assert res["model"]["dtype"] == "bfloat16"
    from safetensors.torch import load_file

    w = load_file(str(tmp_path / "bf" / "checkpoint" / "weights.safetensors"))
    assert all(t.dtype == torch.bfloat16 for t in w.values())
    geo = res["geometry"]["countdown"]
    own, bf16 = geo["sparsity"]["1e-06"]["overall"], geo["sparsity_bf16"]["1e-06"]["overall"]
    assert own == bf16  # weights stored in bfloat16: both measures are the storage precision
    assert 0.0 <= own < 1.0 and geo["drift_l2"]["overall"] > 0


def test_lm_eval_sees_the_prompt_training_rewards_see(data_dir, models):
    """A chat task's evaluation context (lm-eval's apply_chat_template) is the text
    ctx.score generates from (clbench.generation.chat_prompts)."""
    from clbench.generation import chat_prompts
    from clbench.harness import Harness
    from clbench.model import load_model

    lm = load_model(str(models["chat"]))
    h = Harness(lm.model, lm.tokenizer)
    task = h.our_tasks(["countdown-full"])["countdown_full"]
    task.build_all_requests(limit=2, apply_chat_template=True, chat_template=h.lm.apply_chat_template,
                            tokenizer_name=h.lm.tokenizer_name)
    contexts = [inst.args[0] for inst in sorted(task.instances, key=lambda i: i.doc_id)]
    items = Registry.load().task("countdown-full").split("test")[:2]
    assert contexts == chat_prompts(lm.tokenizer, [i["prompt"] for i in items], "<think>")
    assert contexts[0].startswith("<|im_start|>user\nUsing the numbers")
    assert contexts[0].endswith("</answer> tags, for example <answer> (1 + 2) / 3 </answer>.<|im_end|>\n"
                                "<|im_start|>assistant\n<think>")  # the papers open the turn with <think>
    plain = load_model(str(models["plain"]))  # no template: lm-eval's text is prompt + prefix
    task = Harness(plain.model, plain.tokenizer).our_tasks(["countdown-full"])["countdown_full"]
    task.build_all_requests(limit=2, apply_chat_template=False)
    contexts = [inst.args[0] for inst in sorted(task.instances, key=lambda i: i.doc_id)]
    assert contexts == chat_prompts(plain.tokenizer, [i["prompt"] for i in items], "<think>")
    assert contexts[0].endswith("</answer>.<think>")


def test_grpo_in_bfloat16_on_cpu_writes_a_valid_result(tmp_path, data_dir):
    pytest.importorskip("trl")
    if "grpo" not in Registry.load().methods:
        pytest.skip("grpo is not registered in this checkout")
    res = _run(["--method", "grpo", "--sequence", "math-only", "--dtype", "bfloat16", "--steps", "2",
                "--eval-limit", "8", "--curve-examples", "8", "--set", "num_generations=2",
                "--set", "prompts_per_step=2", "--output", str(tmp_path / "g")], data_dir)
    assert res["model"]["dtype"] == "bfloat16" and res["method"]["name"] == "grpo"
    assert res["cost"]["backward_tokens"] > 0 and res["budget"]["steps_per_task"] == {"countdown": 2}
    geo = res["geometry"]["countdown"]
    assert geo["sparsity"]["1e-06"]["overall"] == geo["sparsity_bf16"]["1e-06"]["overall"]
