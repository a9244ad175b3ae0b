"""GRPO through TRL's GRPOTrainer, driven by the common runner.

Shao et al., "DeepSeekMath" (arXiv 2402.03300) introduced Group Relative Policy
Optimization; the ES-vs-GRPO comparison this benchmark reproduces (arXiv
2601.20861) ran it in VERL with 30 rollouts per prompt, beta = 0.001 (KL to a
frozen reference), clip epsilon 0.2. Per optimizer step:

  G completions o_1..o_G sampled for each of B prompts q        (temperature 1)
  A_i = (r_i - mean_g(r)) / std_g(r)                             (within a group)
  loss = -mean_tokens[ min(rho*A, clip(rho, 1-eps, 1+eps)*A) ] + beta * KL(pi || pi_ref)

We do not write that loss: TRL's GRPOTrainer (the field's reference code) does,
and this file only adapts it to the runner. Every TRL default that changes the
algorithm is set explicitly (TRL turns on bf16 and gradient checkpointing, uses
lr 1e-6 and beta 0). Deliberate departures from TRL's loop, each a hook:

- the reference model is the model at the start of the current task (TRL
  reloads the checkpoint from disk, i.e. the base model for every task);
- prompts for step s are drawn by `ctx.step_rng(s)` and sampling/shuffling runs
  under a torch RNG seeded from (seed, task, s), so a resumed run reproduces an
  uninterrupted one exactly and needs only weights + optimizer state;
- generation stops at the task's stop string (newline) as well as EOS;
- the learning-rate schedule spans the task's whole budget even when a resumed
  trainer runs only the remaining steps.
"""
from __future__ import annotations

import shutil
import tempfile
from typing import Literal

import torch
from pydantic import Field

from clbench.method import Method, MethodConfig


class GRPOConfig(MethodConfig):
    num_generations: int = Field(30, ge=2, description="rollouts per prompt G; 30 matches the ES "
                                 "population (the paper's VERL setting)")
    prompts_per_step: int = Field(16, ge=1, description="prompts per optimizer step B; a step scores "
                                  "B*G completions. 16*30 = 480 (~2 s on 2 cores) keeps a 150-step task "
                                  "within the ES run's time; 8 learned less (README sweep)")
    learning_rate: float = Field(1e-4, gt=0, description="AdamW lr; TRL's 1e-6 barely moves a "
                                 "1.8M-parameter float32 model (README, GRPO tuning: 1e-4 "
                                 "learned most; 2e-4 and 4e-4 learned less)")
    beta: float = Field(0.001, ge=0, description="KL coefficient against the model at the start of "
                        "the task (the paper's 0.001; TRL's default 0 drops the KL term)")
    epsilon: float = Field(0.2, gt=0, description="PPO clip range (the paper's 0.2)")
    loss_type: Literal["grpo", "dapo", "bnpo", "dr_grpo"] = Field(
        "dapo", description="token aggregation; 'dapo' = mean over all completion tokens of the "
        "batch, which is VERL's token-mean that the paper used")
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="advantage = (r - group mean) / group std, as in the paper")
    temperature: float = Field(0.7, gt=0, description="sampling temperature of the rollouts; evaluation "
                               "is greedy, and 0.7 gained twice what 1.0 did on countdown (README sweep)")
    max_grad_norm: float = Field(1.0, ge=0, description="gradient-norm clip (0 = off)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay (decays towards 0, not "
                                "towards the base weights)")
    adam_beta1: float = Field(0.9, ge=0, lt=1, description="AdamW beta1")
    adam_beta2: float = Field(0.999, ge=0, lt=1, description="AdamW beta2")
    lr_scheduler: Literal["constant", "linear", "cosine"] = Field(
        "constant", description="learning-rate schedule over the task's steps")


def _cut(text: str, stops: tuple[str, ...]) -> str:
    """The completion up to its first stop string (TRL keeps the stop token)."""
    for s in stops:
        i = text.find(s)
        if i >= 0:
            text = text[:i]
    return text


def _trl():
    """TRL imported late: `clbench list` must not pay for it."""
    import trl
    from transformers import PrinterCallback, TrainerCallback

    class StepSampler(torch.utils.data.Sampler):
        """Prompt indices for steps start..steps-1, each repeated G times; step s draws
        its prompts with `ctx.step_rng(s)`, so the data order survives a resume."""

        def __init__(self, ctx, n_items: int, prompts: int, generations: int):
            self.ctx, self.n, self.b, self.g = ctx, n_items, prompts, generations

        def __iter__(self):
            for step in range(self.ctx.start_step, self.ctx.steps):
                for i in self.ctx.step_rng(step).sample(range(self.n), self.b):
                    yield from [i] * self.g

        def __len__(self):
            return (self.ctx.steps - self.ctx.start_step) * self.b * self.g

    class Trainer(trl.GRPOTrainer):
        """GRPOTrainer with the runner's seeding, reference model and budget."""

        def __init__(self, *a, ctx, stops, saved: dict | None, **kw):
            self.ctx, self.saved, self.stats = ctx, saved, {}
            super().__init__(*a, **kw)
            self.eos_token_ids = stops  # mask after the first stop token, not only EOS
            if self.ref_model is not None:  # pi_ref = the model when this task began
                with torch.no_grad():
                    ref = dict(self.ref_model.named_parameters())
                    for n, p in ctx.task_start_weights.items():
                        ref[n].copy_(p)

        def _get_train_sampler(self, dataset=None):
            g = self.args.num_generations
            return StepSampler(self.ctx, len(self.train_dataset), self.args.per_device_train_batch_size // g, g)

        def create_scheduler(self, num_training_steps, optimizer=None):
            # the schedule spans the whole task even when a resume runs only the rest
            sched = super().create_scheduler(self.ctx.steps, optimizer)
            if self.saved is not None:
                self.optimizer.load_state_dict(self.saved["optimizer"])
                sched.load_state_dict(self.saved["scheduler"])
                self.saved = None
            return sched

        def _prepare_inputs(self, generation_batch):
            if not self.model.training:
                return super()._prepare_inputs(generation_batch)
            step = self.ctx.start_step + self.state.global_step
            seed = self.ctx.step_rng(step).randrange(2**63)
            dev = next(self.model.parameters()).device
            with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                torch.manual_seed(seed)  # sampling and TRL's shuffle: a function of (seed, task, step)
                out = super()._prepare_inputs(generation_batch)
            tokens = int(out["prompt_mask"].sum() + out["completion_mask"].sum())
            passes = 2 + (self.beta != 0.0)  # generation, loss forward, reference forward
            self.stats.update(forward_tokens=passes * tokens, backward_tokens=tokens,
                              completions=int(out["completion_ids"].shape[0]))
            return out

    class Reporter(TrainerCallback):
        """One `ctx.step` per optimizer step: curves, geometry, checkpoints, cost."""

        def __init__(self, trainer):
            self.trainer = trainer

        def on_step_end(self, args, state, control, **kw):
            t = self.trainer
            t.ctx.step(reward=t.stats.pop("reward", None), **{k: t.stats.pop(k, 0) for k in
                       ("forward_tokens", "backward_tokens", "completions")})

    return trl, Trainer, Reporter, PrinterCallback


class GRPO(Method):
    name = "grpo"
    version = 1
    Config = GRPOConfig
    needs = frozenset({"gradients"})
    trainer_base = None  # subclasses (EWC) put their trainer mixin here

    def __init__(self, config: GRPOConfig):
        super().__init__(config)
        self.trainer = None  # live only inside learn()
        self._resume: dict | None = None

    # ---- TRL settings ------------------------------------------------------
    def trl_config(self, ctx, task, output_dir: str):
        """GRPOConfig with every default that matters stated (README, "GRPO and EWC")."""
        import trl

        c = self.config
        return trl.GRPOConfig(
            output_dir=output_dir, report_to="none", save_strategy="no", logging_strategy="no",
            disable_tqdm=True, seed=ctx.seed, data_seed=ctx.seed, dataloader_num_workers=0,
            use_cpu=next(ctx.model.parameters()).device.type == "cpu",
            bf16=False, fp16=False, gradient_checkpointing=False, use_vllm=False,
            learning_rate=c.learning_rate, optim="adamw_torch", weight_decay=c.weight_decay,
            adam_beta1=c.adam_beta1, adam_beta2=c.adam_beta2, adam_epsilon=1e-8,
            lr_scheduler_type=c.lr_scheduler, warmup_steps=0, max_grad_norm=c.max_grad_norm,
            max_steps=ctx.steps - ctx.start_step, gradient_accumulation_steps=1,
            per_device_train_batch_size=c.prompts_per_step * c.num_generations,
            num_generations=c.num_generations, num_iterations=1,
            max_completion_length=task.max_new_tokens, temperature=c.temperature, top_p=1.0, top_k=0,
            beta=c.beta, epsilon=c.epsilon, loss_type=c.loss_type, scale_rewards=c.scale_rewards,
            mask_truncated_completions=False, disable_dropout=True, log_completions=False,
            remove_unused_columns=False, shuffle_dataset=False,
        )

    def build_trainer(self, task, ctx, output_dir: str):
        import datasets

        from clbench.generation import task_prompts, task_stop_ids

        trl, Trainer, Reporter, PrinterCallback = _trl()
        cls = Trainer if self.trainer_base is None else type("Trainer", (self.trainer_base, Trainer), {})
        items = ctx.train_items(task)
        data = datasets.Dataset.from_dict({"prompt": task_prompts(task, ctx.tokenizer, items),
                                           "item": list(range(len(items)))})
        holder: dict = {}

        def task_reward(prompts, completions, item, **_):
            """The task's own scoring function, the same one evaluation uses."""
            scores = task.scores([items[i] for i in item], [_cut(c, task.stop) for c in completions])
            rewards = [s.reward for s in scores]
            holder["trainer"].stats["reward"] = sum(rewards) / len(rewards)
            return rewards

        stops = task_stop_ids(task, ctx.tokenizer)
        args = self.trl_config(ctx, task, output_dir)
        args.generation_kwargs = {"eos_token_id": stops}
        saved = self._resume if ctx.start_step > 0 else None
        trainer = cls(model=ctx.model, reward_funcs=task_reward, args=args, train_dataset=data,
                      processing_class=ctx.tokenizer, ctx=ctx, stops=stops, saved=saved, **self.trainer_kwargs(ctx))
        holder["trainer"] = trainer
        trainer.remove_callback(PrinterCallback)  # the runner's progress display is the one display
        trainer.add_callback(Reporter(trainer))
        return trainer

    def trainer_kwargs(self, ctx) -> dict:
        """Extra keyword arguments for the trainer class (EWC passes its penalty)."""
        return {}

    # ---- the loop ------------------------------------------------------------
    def learn(self, task, ctx) -> None:
        out = tempfile.mkdtemp(prefix="clbench-trl-")  # TRL wants a folder; nothing is written to it
        try:
            self.trainer = self.build_trainer(task, ctx, out)
            self.trainer.train()
        finally:
            self.trainer = None
            self._resume = None
            ctx.model.eval()
            ctx.model.zero_grad(set_to_none=True)
            shutil.rmtree(out, ignore_errors=True)

    # ---- resume --------------------------------------------------------------
    def state_dict(self) -> dict:
        """Optimizer and scheduler mid-task (the data order and sampling are seeded)."""
        if self.trainer is None:
            return {}
        return {"optimizer": self.trainer.optimizer.state_dict(),
                "scheduler": self.trainer.lr_scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self._resume = state if state.get("optimizer") is not None else None
