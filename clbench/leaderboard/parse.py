"""Strict JSON for untrusted files: size cap, depth cap, no duplicate keys, finite numbers.

Python's json accepts NaN/Infinity literals, turns 1e999 into inf, keeps the last
of two duplicate keys and recurses on deep nesting; each would let a doctored
file through or crash the validator, so each is a named problem here.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

MAX_BYTES = 5 * 1024 * 1024  # a real result.json is ~50 kB; 5 MB leaves room for long curves
MAX_DEPTH = 24               # RunResult nests 7 deep (geometry.task.sparsity.tau.by_layer.n)
MAX_INT = 2**63 - 1          # counts, seeds and bytes fit 64 bits; beyond, float() overflows


class ParseError(ValueError):
    """The file is not a JSON document we are willing to read; the message names why."""


def _depth(text: str) -> int:
    """Deepest bracket nesting outside strings, in one pass: no recursion, and no regex
    that rescans the rest of the text from every quote (quadratic on `"\\"\\"...`)."""
    depth = best = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


def _no_duplicates(pairs: list) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise ParseError(f"duplicate key {k!r} in one JSON object (which one counts is ambiguous)")
        out[k] = v
    return out


def _no_constants(name: str):
    raise ParseError(f"{name} is not a JSON number (NaN and Infinity literals are refused)")


def non_finite(obj, path: str = "$") -> list[str]:
    """Paths of every non-finite float in a parsed document (1e999 parses as inf)."""
    return _paths(obj, path, lambda o: isinstance(o, float) and not math.isfinite(o))


def huge_integers(obj, path: str = "$") -> list[str]:
    """Paths of every integer beyond 64 bits: a seed of 4000 digits makes a file name
    too long, token counts of 400 digits overflow the board's float arithmetic."""
    return _paths(obj, path, lambda o: isinstance(o, int) and not isinstance(o, bool)
                  and abs(o) > MAX_INT)


def _paths(obj, path: str, bad_leaf) -> list[str]:
    """Sorted paths of the leaves where `bad_leaf` holds; iterative, so depth is no issue."""
    stack, bad = [(obj, path)], []
    while stack:
        o, p = stack.pop()
        if isinstance(o, dict):
            stack.extend((v, f"{p}.{k}") for k, v in o.items())
        elif isinstance(o, list):
            stack.extend((v, f"{p}[{i}]") for i, v in enumerate(o))
        elif bad_leaf(o):
            bad.append(p)
    return sorted(bad)


def load_bytes(data: bytes):
    """Parse one untrusted JSON document; ParseError names the first problem."""
    if len(data) > MAX_BYTES:
        raise ParseError(f"{len(data) / 1e6:.1f} MB exceeds the {MAX_BYTES // (1024 * 1024)} MB limit")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ParseError(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    if _depth(text) > MAX_DEPTH:
        raise ParseError(f"nested deeper than {MAX_DEPTH} levels; a RunResult is not")
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except ParseError:
        raise
    except json.JSONDecodeError as e:
        raise ParseError(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno} "
                         "(truncated or hand-edited?)") from None
    except (ValueError, RecursionError) as e:  # e.g. an integer with too many digits
        raise ParseError(f"not a readable JSON document: {e}") from None
    return obj


def read_capped(path: str | Path) -> bytes:
    """Read at most MAX_BYTES + 1 bytes, so a huge file is refused without reading it all."""
    path = Path(path)
    if not path.is_file():
        raise ParseError("not a file")
    if path.stat().st_size > MAX_BYTES:
        raise ParseError(f"{path.stat().st_size / 1e6:.1f} MB exceeds the "
                         f"{MAX_BYTES // (1024 * 1024)} MB limit")
    with path.open("rb") as f:
        return f.read(MAX_BYTES + 1)


def load_file(path: str | Path):
    return load_bytes(read_capped(path))
