"""RunContext stands alone: a method runs on plain values and counts into its own
recorder, with no runner behind it (issue 18, item 1; README "Write your own method")."""
from __future__ import annotations

import pytest
import torch

from clbench.context import RunContext, SpendRecorder
from clbench.errors import UserError
from clbench.model import param_copy
from clbench.registry import Registry


def test_es_runs_on_a_standalone_context_and_the_recorder_counts_every_step(embedded):
    reg = Registry.load()
    task = reg.task("countdown")
    es = reg.method("es")
    method = es(es.Config(population=4, batch_size=4))
    rewards = []
    recorder = SpendRecorder(after_step=rewards.append)
    before = param_copy(embedded.model)
    ctx = RunContext(embedded.model, embedded.tokenizer, reg, task, steps=2, base_weights=before,
                     task_start_weights=before, recorder=recorder)
    try:
        method.learn(task, ctx)
    finally:
        with torch.no_grad():
            for n, p in embedded.model.named_parameters():
                p.copy_(before[n])  # the session's shared model goes back as it was
    st = recorder.state
    assert st.step_in_task == 2 and st.global_step == 2 and len(rewards) == 2
    assert all(r is not None and 0 <= r <= 1 for r in rewards)
    # 4 members scored per step, each on a batch of 4 prompts
    assert st.cost.members_scored == 8 and st.cost.completions == st.completions_per_task["countdown"] == 32
    assert st.cost.forward_tokens > 0 and st.cost.backward_tokens == 0
    assert not st.data_access.earlier_tasks and not st.data_access.general


def test_replay_and_general_data_are_recorded_in_the_context_s_recorder(embedded):
    reg = Registry.load()
    seq = reg.sequence("math-then-code")
    ctx = RunContext(embedded.model, embedded.tokenizer, reg, reg.task("code"), task_index=1,
                     earlier_tasks=[reg.task("countdown")], general_replay=seq.general_replay,
                     sequence_name=seq.name)
    assert set(ctx.replay_items()) == {"countdown"}
    assert ctx.recorder.state.data_access.earlier_tasks and not ctx.recorder.state.data_access.general
    assert ctx.general_items() and ctx.recorder.state.data_access.general
    bare = RunContext(embedded.model, embedded.tokenizer, reg, reg.task("code"), sequence_name="mine")
    with pytest.raises(UserError, match="'mine' declares no general_replay set"):
        bare.general_items()


def test_a_standalone_context_refuses_a_process_backend_naming_the_fix(embedded):
    reg = Registry.load()
    ctx = RunContext(embedded.model, embedded.tokenizer, reg, reg.task("countdown"))
    assert ctx.population().name == "inprocess"  # a standalone context's own: the model it holds
    with pytest.raises(UserError, match="backend=inprocess"):
        ctx.population("local", 2)
    with pytest.raises(UserError, match="not one of inprocess, local, ray"):
        ctx.population("gpu-farm", 2)
    assert ctx.population("inprocess").name == "inprocess"
