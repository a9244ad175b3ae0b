"""An example clbench plugin: a (1+1) evolution strategy, an `upper` task and a sequence
that learns it (README, "Write your own method" and "Write your own task")."""
import random
import string

import torch
from pydantic import Field

from clbench.config import Budget, SequenceSpec
from clbench.method import Method, MethodConfig
from clbench.task import TaskFamily, exact_match


class HillClimbConfig(MethodConfig):
    sigma: float = Field(0.01, gt=0, description="noise scale of the one candidate per step")
    batch_size: int = Field(16, ge=1, description="training prompts per step")


class HillClimb(Method):
    """Perturb once per step; keep the candidate if its reward is not lower."""

    name = "hill-climb"
    Config = HillClimbConfig

    def learn(self, task, ctx):
        params = [p for _, p in ctx.model.named_parameters()]
        for step in range(ctx.start_step, ctx.steps):
            rng = ctx.step_rng(step)  # seeded by (seed, task, step): resumable
            items = rng.sample(ctx.train_items(task), self.config.batch_size)
            before, tokens_a = ctx.score(task, items)
            saved = [p.detach().clone() for p in params]
            gen = torch.Generator().manual_seed(rng.randrange(2**31))
            with torch.no_grad():
                for p in params:
                    p.add_(torch.randn(p.shape, generator=gen), alpha=self.config.sigma)
            after, tokens_b = ctx.score(task, items)
            if sum(after) < sum(before):
                with torch.no_grad():
                    for p, s in zip(params, saved):
                        p.copy_(s)
            ctx.step(forward_tokens=tokens_a + tokens_b, members_scored=2,
                     completions=2 * len(items), reward=sum(after) / len(after))


class Upper(TaskFamily):
    name = "upper"
    description = "upper-case a word (example plugin)"
    max_new_tokens = 8

    def sample(self, rng: random.Random) -> dict:
        word = "".join(rng.choice(string.ascii_lowercase) for _ in range(5))
        return {"prompt": f"up {word}:", "target": word.upper()}

    def score(self, item, completion):
        return exact_match(item, completion)


UPPER = Upper()
UPPER_THEN_PROBES = SequenceSpec(
    name="upper-only", description="the plugin's task, with two built-in probes",
    tasks=["upper"], probes=["sort", "reverse"], model="embedded",
    budget=Budget(steps=20, completions=20 * 2 * 16, eval_every=10, dev_examples=16))
