"""Verdicts of program-mode asserts (MBPP) computed on the host, never by the answer.

Why: the sandboxed child runs the model's program, so anything it reports can be forged:
a program that writes "all passed" to the result pipe and exits would pass every assert
whose verdict the child computes (reward hacking built into the benchmark). So each
`assert TEST` is split: every maximal sub-expression of TEST that touches the answer
(a call of its function, one of its names, an attribute of its values) is sent to the
child as a value request, whose answer comes back as a plain-data repr; the rest of TEST
(comparisons, `set(...)`, `math.isclose(...)`, literals, `and`/`or`/`not`) is evaluated
here on those values. The child never sees the expected side of a comparison, so a
forger must compute what the function is asked for: no better than writing it.

The host part only ever applies the check's own trusted code to bounded plain data
(each value's repr is at most 16 KiB): a call whose function could run long on a hostile
value (`range`, `pow`, `math.factorial`) and `*`, `**`, `<<` with a value operand are
sent to the child whole instead.
"""
from __future__ import annotations

import ast
import builtins
import math
from dataclasses import dataclass

# Functions the host applies to answer values: each is bounded by its argument's size.
SAFE_CALLS = frozenset({
    "abs", "all", "any", "bool", "dict", "float", "frozenset", "int", "isinstance", "len",
    "list", "max", "min", "round", "set", "sorted", "str", "sum", "tuple", "type"})
SAFE_MATH = frozenset({"isclose", "sqrt", "floor", "ceil", "fabs", "isnan", "isinf", "isfinite",
                       "log", "log2", "log10", "exp", "sin", "cos", "tan", "trunc", "pi", "e",
                       "inf", "nan", "tau"})
# Names the check's own code may use on the host (with no answer value involved, any of them).
HOST_NAMES = SAFE_CALLS | {"range", "enumerate", "zip", "map", "filter", "reversed", "chr", "ord",
                           "divmod", "pow", "hash", "repr", "bytes", "complex"}
STRUCTURAL = (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.List, ast.Tuple, ast.Set,
              ast.Dict, ast.Subscript, ast.IfExp, ast.Call, ast.Slice)
UNBOUNDED_OPS = (ast.Mult, ast.Pow, ast.LShift)
PLACEHOLDER = "__clbench_v{}"


@dataclass(frozen=True)
class HostCheck:
    template: ast.Expression   # TEST with each value request replaced by a placeholder name
    requests: tuple[str, ...]  # source of each value the child must compute


def _bound_names(node: ast.AST) -> set[str]:
    """Names a lambda or comprehension inside `node` binds (its own locals, not the answer's)."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Lambda):
            out |= {a.arg for a in n.args.args + n.args.kwonlyargs + n.args.posonlyargs}
        elif isinstance(n, ast.comprehension):
            out |= {t.id for t in ast.walk(n.target) if isinstance(t, ast.Name)}
    return out


def _is_math(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "math" and node.attr in SAFE_MATH)


def _trusted(node: ast.AST) -> bool:
    """Only the check's own code: no name, attribute or call that could be the answer's."""
    local = _bound_names(node)
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and n.id not in HOST_NAMES and n.id not in local and n.id != "math":
            return False
        if isinstance(n, ast.Attribute) and not _is_math(n):
            return False
        if isinstance(n, (ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom)):
            return False
    return True


class _Split(ast.NodeTransformer):
    def __init__(self):
        self.requests: list[str] = []

    def request(self, node: ast.AST) -> ast.Name:
        self.requests.append(ast.unparse(node))
        return ast.copy_location(ast.Name(PLACEHOLDER.format(len(self.requests) - 1), ast.Load()), node)

    def visit(self, node):
        if not isinstance(node, ast.expr):  # keyword, comprehension, ...: look inside
            return self.generic_visit(node)
        if _trusted(node):
            return node
        if not self._host_may_apply(node):
            return self.request(node)
        return self.generic_visit(node)

    @staticmethod
    def _host_may_apply(node: ast.AST) -> bool:
        """The host may evaluate this node over answer values (bounded work)."""
        if not isinstance(node, STRUCTURAL):
            return False
        if isinstance(node, ast.BinOp) and isinstance(node.op, UNBOUNDED_OPS):
            return False
        if isinstance(node, ast.Call):
            plain = isinstance(node.func, ast.Name) and node.func.id in SAFE_CALLS
            args = node.args + [k.value for k in node.keywords]
            unbounded_key = any(isinstance(n, ast.BinOp) and isinstance(n.op, UNBOUNDED_OPS)
                                for a in args for n in ast.walk(a))
            # a generator or lambda that calls the answer has no plain value of its own: the
            # child evaluates the whole call (`all(f(i) == i for i in xs)`)
            opaque = any(isinstance(a, (ast.GeneratorExp, ast.Lambda)) and not _trusted(a) for a in args)
            return (plain or _is_math(node.func)) and not unbounded_key and not opaque and not any(
                isinstance(a, ast.Starred) for a in node.args) and all(k.arg for k in node.keywords)
        return True


def host_check(check: str) -> HostCheck | None:
    """The host-side form of a one-line `assert TEST[, message]`, or None for any other check
    (which the child then runs as an ordinary statement)."""
    try:
        tree = ast.parse(check, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        return None
    split = _Split()
    test = split.visit(tree.body[0].test)
    return HostCheck(ast.fix_missing_locations(ast.Expression(test)), tuple(split.requests))


HOST_NAMESPACE = {**{n: getattr(builtins, n) for n in HOST_NAMES}, "math": math}


def verdict(check: HostCheck, values: list) -> bool:
    """Whether the assert holds, given the child's reprs of its value requests (None: that
    value raised or could not be sent back). Any error here is a failed check."""
    ns = {"__builtins__": {}, **HOST_NAMESPACE}
    for i, text in enumerate(values):
        if type(text) is not str:
            return False
        try:
            ns[PLACEHOLDER.format(i)] = ast.literal_eval(text)
        except Exception:  # not a literal: forged or garbled
            return False
    try:
        return bool(eval(compile(check.template, "<check>", "eval"), ns))  # noqa: S307 - the check's own code
    except Exception:
        return False
