"""The lm-eval harness agrees with an independent check: plain transformers + our scoring."""
import torch

from clbench.registry import Registry

N = 40


def _greedy_one_by_one(lm, prompt: str, max_new: int) -> str:
    tok = lm.tokenizer
    ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
    nl = tok.convert_tokens_to_ids("\n")
    out = []
    with torch.no_grad():
        for _ in range(max_new):  # no cache, no padding, no generate(): independent of both
            nxt = int(lm.model(ids).logits[0, -1].argmax())
            if nxt in (nl, tok.eos_token_id):
                break
            out.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return tok.decode(out)


def test_generative_scores_equal_independent_check(embedded, harness):
    reg = Registry.load()
    for name in ("countdown", "sort", "code"):
        fam = reg.task(name)
        items = fam.split("test")[:N]
        comps = [_greedy_one_by_one(embedded, i["prompt"], fam.max_new_tokens) for i in items]
        expected = sum(s.correct for s in fam.score_many(items, comps)) / N
        assert harness.score([name], limit=N)[name] == expected, name


def test_choice_scores_equal_independent_loglikelihood(embedded, harness):
    fam = Registry.load().task("sort-choice")
    tok = embedded.tokenizer
    items = fam.split("test")[:N]
    right = 0
    for item in items:
        p = tok(item["prompt"], add_special_tokens=False)["input_ids"]
        lls = []
        for choice in item["choices"]:
            c = tok(choice, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(embedded.model(torch.tensor([p + c])).logits[0].float(), -1)
            lls.append(sum(float(logp[len(p) - 1 + k, t]) for k, t in enumerate(c)))
        right += fam.score(item, item["choices"][max(range(4), key=lls.__getitem__)]).correct
    assert harness.score(["sort-choice"], limit=N)["sort-choice"] == right / N


def test_dev_split_is_scored_when_asked(harness):
    reg = Registry.load()
    fam = reg.task("sort")
    dev = harness.score(["sort"], split="dev", limit=20)["sort"]
    test = harness.score(["sort"], split="test", limit=20)["sort"]
    assert 0.0 <= dev <= 1.0 and 0.0 <= test <= 1.0
    assert fam.split("dev")[0]["prompt"] != fam.split("test")[0]["prompt"]
