"""GRPO (through TRL) and EWC on the runner: steps, rewards, settings, Fisher, penalty, resume."""
import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch

from clbench.fisher import diagonal_fisher
from clbench.methods.ewc import EWC, EWCConfig, ewc_penalty
from clbench.methods.grpo import GRPO, GRPOConfig
from clbench.model import build_char_tokenizer, param_copy, stop_token_ids
from clbench.registry import Registry
from clbench.runner import RunContext

from test_runner import clbench, numbers
from conftest import cli_in_process

QUICK = ["--steps", "4", "--eval-every", "1", "--eval-limit", "16", "--curve-examples", "8",
         "--set", "num_generations=4", "--set", "prompts_per_step=4"]


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "g"
    clbench("run", "--method", "grpo", "--sequence", "math-then-code", "--output", str(out), *QUICK)
    return out


def test_grpo_updates_weights_and_steps_once_per_optimizer_step(grpo_run):
    r = json.loads((grpo_run / "result.json").read_text())
    assert [c["step"] for c in r["curves"]] == [0, 1, 2, 3, 4] * 2
    assert [c["global_step"] for c in r["curves"]] == [0, 1, 2, 3, 4, 4, 5, 6, 7, 8]
    assert all(c["reward"] is not None for c in r["curves"] if c["step"] > 0)
    drifts = [c["drift_l2"] for c in r["curves"]]
    assert drifts[0] == 0.0 and all(b > a for a, b in zip(drifts[:4], drifts[1:5]))
    assert r["cost"]["completions"] == 4 * 4 * 4 * 2  # prompts x generations x steps x tasks
    assert r["budget"]["completions_per_task"] == {"countdown": 64, "code": 64}
    assert r["cost"]["backward_tokens"] > 0 and r["cost"]["forward_tokens"] == 3 * r["cost"]["backward_tokens"]
    assert r["cost"]["members_scored"] == 0
    assert not list(grpo_run.glob("checkpoint-*")) and not (grpo_run / "runs").exists()


def kill_mid_second_task_then_resume(method: str, out) -> int:
    """Start a run, SIGKILL it after the second task's first checkpoint, resume; return steps done."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "clbench", "run", "--method", method, "--sequence",
                             "math-then-code", "--output", str(out), *QUICK],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    state = out / "checkpoint" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline:  # kill mid-way through the second task, after its first update
        if state.exists():
            st = json.loads(state.read_text())
            if st["task_index"] == 1 and st["step_in_task"] >= 1:
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "result.json").exists()
    done = json.loads(state.read_text())["global_step"]
    assert 4 < done < 8
    clbench("run", "--resume", str(out))
    return done


@pytest.mark.slow
@pytest.mark.ci
def test_grpo_sigkill_then_resume_equals_uninterrupted(grpo_run, tmp_path):
    done = kill_mid_second_task_then_resume("grpo", tmp_path / "k")
    assert numbers(tmp_path / "k") == numbers(grpo_run)
    assert json.loads((tmp_path / "k" / "processes.json").read_text()) == [{"resumed": True, "steps": 8 - done}]


@pytest.mark.slow
def test_ewc_sigkill_then_resume_equals_uninterrupted(tmp_path):
    clbench("run", "--method", "ewc", "--sequence", "math-then-code", "--output", str(tmp_path / "u"), *QUICK)
    done = kill_mid_second_task_then_resume("ewc", tmp_path / "k")
    assert numbers(tmp_path / "k") == numbers(tmp_path / "u")
    assert json.loads((tmp_path / "k" / "processes.json").read_text()) == [{"resumed": True, "steps": 8 - done}]


@pytest.mark.parametrize("key,value", [("beta", "-1"), ("learning_rate", "fast"), ("num_generations", "1"),
                                       ("ewc_lambda", "3")])
def test_bad_grpo_value_exits_2_naming_the_field(key, value, tmp_path):
    p = cli_in_process("run", "--method", "grpo", "--sequence", "math-then-code", "--output", str(tmp_path / "x"),
                "--set", f"{key}={value}")
    assert p.returncode == 2 and key in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "x").exists()


# ---- in-process: real TRL, real model, a standalone context holding the task-start weights ----

def context(loaded, task_index=0, steps=3):
    reg = Registry.load()
    return RunContext(loaded.model, loaded.tokenizer, reg, reg.task("countdown"), task_index=task_index,
                      steps=steps, task_start_weights=param_copy(loaded.model))


def test_explicit_trl_settings_reach_grpoconfig(embedded, tmp_path):
    task = Registry.load().task("countdown")
    m = GRPO(GRPOConfig(beta=0.004, epsilon=0.3, learning_rate=2e-5, num_generations=6, prompts_per_step=3))
    args = m.trl_config(context(embedded), task, str(tmp_path))
    assert (args.beta, args.epsilon, args.learning_rate) == (0.004, 0.3, 2e-5)
    assert args.bf16 is False and args.fp16 is False and args.gradient_checkpointing is False
    assert args.use_vllm is False and args.report_to in ([], "none", ["none"])
    assert args.num_generations == 6 and args.per_device_train_batch_size == 18
    assert args.max_completion_length == task.max_new_tokens and args.max_steps == 3
    assert args.loss_type == "dapo" and args.scale_rewards == "group" and args.save_strategy == "no"


def test_reward_is_the_task_scorer_and_generation_stops_at_newline(embedded, tmp_path):
    reg = Registry.load()
    task = reg.task("countdown")
    items = task.split("train")
    trainer = GRPO(GRPOConfig()).build_trainer(task, context(embedded), str(tmp_path))
    comps = [items[0]["target"] + "\n", items[1]["target"] + "+1\nzz", "1+1", items[3]["target"]]  # raw, with stops
    got = trainer.reward_funcs[0](prompts=[items[i]["prompt"] for i in range(4)], completions=comps,
                                  item=[0, 1, 2, 3])
    want = [task.score(items[i], c.split("\n")[0]).reward for i, c in enumerate(comps)]
    assert got == want and got[0] == got[3] == max(got) > got[1]
    nl = embedded.tokenizer.convert_tokens_to_ids("\n")
    assert nl in trainer.eos_token_ids and set(trainer.generation_config.eos_token_id) == set(
        stop_token_ids(embedded.tokenizer))
    assert trainer.generation_config.max_new_tokens == task.max_new_tokens


# ---- EWC against hand computations on a tiny Llama ----

@pytest.fixture
def tiny():
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_char_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return SimpleNamespace(model=LlamaForCausalLM(cfg).eval(), tokenizer=tok)


PAIRS = [("cd 1 2=3:", "1+2\n"), ("cd 4 2=8:", "4*2\n"), ("cd 9 3=3:", "9/3\n")]


def grad_of_loglik(model, tok, prompt, completion):
    """Independent path: HF's own token loss with the prompt masked, times the token count."""
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    c = tok(completion, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p + c])
    labels = torch.tensor([[-100] * len(p) + c])
    loglik = -model(input_ids=ids, labels=labels).loss * len(c)
    params = dict(model.named_parameters())
    return dict(zip(params, torch.autograd.grad(loglik, list(params.values()))))


def test_fisher_is_mean_of_per_example_squared_gradients(tiny):
    f = diagonal_fisher(tiny.model, tiny.tokenizer, PAIRS)
    grads = [grad_of_loglik(tiny.model, tiny.tokenizer, p, c) for p, c in PAIRS]
    for n in f:
        want = sum(g[n] ** 2 for g in grads) / len(PAIRS)
        assert torch.allclose(f[n], want, rtol=1e-4, atol=1e-10), n
    squared_mean = {n: (sum(g[n] for g in grads) / len(PAIRS)) ** 2 for n in f}
    total = sum(f[n].sum() for n in f)
    assert total > 0 and abs(total - sum(v.sum() for v in squared_mean.values())) > 0.05 * total


def test_penalty_is_half_lambda_fisher_weighted_squared_distance(tiny):
    params = dict(tiny.model.named_parameters())
    gen = torch.Generator().manual_seed(1)
    fisher = {n: torch.rand(p.shape, generator=gen) for n, p in params.items()}
    anchor = {n: p.detach() + 0.1 * torch.randn(p.shape, generator=gen) for n, p in params.items()}
    got = ewc_penalty(tiny.model, fisher, anchor, lam=7.0)
    want = 0.0
    for n, p in params.items():
        for f, t, a in zip(fisher[n].flatten().tolist(), p.detach().flatten().tolist(), anchor[n].flatten().tolist()):
            want += f * (t - a) ** 2
    assert got.item() == pytest.approx(3.5 * want, rel=1e-5)
    got.backward()
    n0 = next(iter(params))
    assert torch.allclose(params[n0].grad, 7.0 * fisher[n0] * (params[n0].detach() - anchor[n0]), atol=1e-6)


def test_online_fisher_decays_by_gamma_across_two_tasks(tiny):
    reg = Registry.load()
    tasks = [reg.task("countdown"), reg.task("code")]
    ewc = EWC(EWCConfig(gamma=0.5, fisher_examples=3))
    f = []
    for ti, task in enumerate(tasks):
        if ti:
            with torch.no_grad():
                for p in tiny.model.parameters():
                    p.add_(0.01)
        ctx = RunContext(tiny.model, tiny.tokenizer, reg, task, task_index=ti, steps=1)
        ewc.end_task(task, ctx)
        f.append({n: v.clone() for n, v in ewc.fisher.items()})
    import random

    chosen = random.Random("0/1/fisher").sample(tasks[1].split("train"), 3)
    f2 = diagonal_fisher(tiny.model, tiny.tokenizer, [(i["prompt"], i["target"] + "\n") for i in chosen])
    for n in f2:
        assert torch.allclose(f[1][n], 0.5 * f[0][n] + f2[n], rtol=1e-5, atol=1e-12)
        assert torch.equal(ewc.anchor[n], dict(tiny.model.named_parameters())[n].detach())
    st = ewc.state_dict()
    other = EWC(EWCConfig())
    other.load_state_dict(st)
    assert all(torch.equal(other.fisher[n], ewc.fisher[n]) for n in f2) and other.anchor is not None


def test_ewc_loss_is_grpo_loss_plus_penalty(embedded, tmp_path):
    reg = Registry.load()
    task = reg.task("countdown")
    ewc = EWC(EWCConfig(num_generations=2, prompts_per_step=2, ewc_lambda=10.0))
    ctx = context(embedded)
    params = dict(embedded.model.named_parameters())
    ewc.fisher = {n: torch.ones_like(p) for n, p in params.items()}
    ewc.anchor = {n: p.detach() + 0.01 for n, p in params.items()}
    trainer = ewc.build_trainer(task, ctx, str(tmp_path))
    embedded.model.train()
    try:
        inputs = trainer._prepare_inputs([trainer.train_dataset[i] for i in (0, 0, 1, 1)])
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop before each step
        grpo_loss = super(type(trainer).__mro__[1], trainer).compute_loss(embedded.model, inputs)
        total = trainer.compute_loss(embedded.model, inputs)
    finally:
        embedded.model.eval()
    n = sum(p.numel() for p in params.values())
    assert (total - grpo_loss).item() == pytest.approx(0.5 * 10.0 * n * 1e-4, rel=1e-3)
