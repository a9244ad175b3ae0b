"""Countdown scoring: one function for training reward and evaluation metric.

Reward as in the ES papers (arXiv 2509.24372, 2601.20861): 0.1 * format + answer.
The expression is parsed with `ast` and evaluated by walking the tree: nothing
the model writes is ever executed.
"""
from __future__ import annotations

import ast
import re
from collections import Counter

from clbench.task import Score

ALLOWED = re.compile(r"^[0-9+\-*/() ]+$")
MAX_LEN = 64
OPEN, CLOSE, THINK, THINK_CLOSE = "<answer>", "</answer>", "<think>", "</think>"
SEAM = THINK_CLOSE + "\n" + OPEN


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return float(node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        a, b = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        if b == 0:
            raise ZeroDivisionError
        return a / b
    raise ValueError("not an arithmetic expression")


def _numbers(node: ast.AST) -> list[int]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant)]


def parse_expression(text: str) -> ast.Expression | None:
    """The expression's tree if it is plain arithmetic on integers, else None."""
    text = text.strip()
    if not text or len(text) > MAX_LEN or not ALLOWED.match(text):
        return None
    try:
        tree = ast.parse(text, mode="eval")
        _eval(tree)  # rejects unary minus, ** and anything else
    except ZeroDivisionError:
        return tree
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None
    return tree


def answer_correct(text: str, nums: list[int], target: int) -> bool:
    """Uses exactly `nums` once each and evaluates to `target` within 1e-5."""
    tree = parse_expression(text)
    if tree is None:
        return False
    if Counter(_numbers(tree)) != Counter(nums):
        return False
    try:
        return abs(_eval(tree) - target) < 1e-5
    except (ZeroDivisionError, OverflowError):
        return False


def score_plain(completion: str, nums: list[int], target: int) -> Score:
    """Embedded format: the completion is the bare expression."""
    fmt = 1.0 if parse_expression(completion) is not None else 0.0
    ok = answer_correct(completion, nums, target)
    return Score(reward=0.1 * fmt + float(ok), correct=ok)


def _exact_shape(text: str) -> bool:
    """`<think>...</think>\\n<answer>...</answer>` with nothing around it, checked with
    str.find: the regex form backtracks quadratically on a long hostile completion."""
    seam = text.find(SEAM, len(THINK))
    return (text.startswith(THINK) and text.endswith(CLOSE)
            and seam != -1 and seam + len(SEAM) <= len(text) - len(CLOSE))


def _last_answer(text: str) -> str | None:
    """The last `<answer>...</answer>` pair, scanning left to right as a lazy regex would,
    but linear: once an opening tag has no closing tag, no later one has either."""
    last, pos = None, 0
    while (start := text.find(OPEN, pos)) != -1:
        end = text.find(CLOSE, start + len(OPEN))
        if end == -1:
            break
        last, pos = text[start + len(OPEN):end], end + len(CLOSE)
    return last


def _has_pair(text: str, open_: str, close: str) -> bool:
    """An opening tag with a closing one after it (the papers' `re.search(open.*?close)`)."""
    start = text.find(open_)
    return start != -1 and text.find(close, start + len(open_)) != -1


def tagged_answer(completion: str) -> tuple[float, str | None]:
    """(format credit in [0, 1], the last <answer> pair's text or None) of a completion in
    the papers' <think>/<answer> format; every tagged task's score starts here.

    As in the papers' reward code, the text judged is "<think>" + completion: their
    prompt opens the assistant turn with <think> (our tagged tasks' `assistant_prefix`),
    so a completion reads `reasoning</think>\n<answer>...</answer>`. Only matched pairs
    earn format credit; one final newline is allowed (their regex's `$`), nothing else
    around the exact shape."""
    text = THINK + completion
    text = text[:-1] if text.endswith("\n") else text
    if _exact_shape(text):
        fmt = 1.0
    else:
        fmt = 0.1 * _has_pair(text, THINK, THINK_CLOSE) + 0.5 * _has_pair(text, OPEN, CLOSE)
    return fmt, _last_answer(text)


def score_tagged(completion: str, nums: list[int], target: int) -> Score:
    """Papers' format: `<think>` (in the prompt), then reasoning</think>\\n<answer>...</answer>;
    the last answer pair counts."""
    fmt, answer = tagged_answer(completion)
    ok = answer is not None and answer_correct(answer, nums, target)
    return Score(reward=0.1 * fmt + float(ok), correct=ok)
