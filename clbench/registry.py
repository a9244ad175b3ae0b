"""Methods, tasks and sequences, all discovered through entry points.

Built-ins register in pyproject.toml exactly as a plugin package would, so
they have no private door (lm-eval issues #1457, #1621). A broken plugin is a
warning naming its package, never a crash of the rest; a duplicate name, a name
that is not lower-case kebab/snake (it becomes part of output paths), a wrong base
class or a method Config that is not a MethodConfig is rejected; built-ins are
loaded first, so a plugin cannot take over a built-in's name. An unknown name
lists the known ones. A sequence that names its base model but not its fingerprint
gets the registered one (clbench/leaderboard/registered.py).
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import ClassVar
from importlib.metadata import entry_points

from clbench.config import SequenceSpec
from clbench.leaderboard.registered import with_registered_base
from clbench.task import TaskFamily

METHODS_GROUP = "clbench.methods"
TASKS_GROUP = "clbench.tasks"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")  # es-awd, mmlu_world_religions; no '/', '.', spaces


class UnknownName(ValueError):
    """A user named something that is not registered."""


@dataclass
class Entry:
    obj: object
    origin: str  # distribution (package) that registered it


@dataclass
class Registry:
    methods: dict[str, Entry] = field(default_factory=dict)
    tasks: dict[str, Entry] = field(default_factory=dict)
    sequences: dict[str, Entry] = field(default_factory=dict)

    _cache: ClassVar["Registry | None"] = None

    @classmethod
    def load(cls, refresh: bool = False) -> "Registry":
        if cls._cache is None or refresh:
            reg = cls()
            for ep in sorted(entry_points(group=METHODS_GROUP), key=cls._load_order):
                reg._add_method(ep)
            for ep in sorted(entry_points(group=TASKS_GROUP), key=cls._load_order):
                reg._add_tasks(ep)
            cls._cache = reg
        return cls._cache

    @staticmethod
    def _load_order(ep) -> tuple[bool, str]:
        """clbench's own entry points first: on a name clash the first is kept, and a
        plugin whose entry point sorts early must not replace a built-in."""
        return getattr(getattr(ep, "dist", None), "name", None) != "clbench", ep.name

    @staticmethod
    def _origin(ep) -> str:
        dist = getattr(ep, "dist", None)
        return f"{dist.name} {dist.version}" if dist else "unknown"

    def _safe_load(self, ep):
        try:
            return ep.load()
        except Exception as e:  # a plugin's bug must not break the registry
            warnings.warn(f"clbench: plugin entry point {ep.name!r} from package "
                          f"{self._origin(ep)} failed to load: {e!r}; it is skipped", stacklevel=2)
            return None

    def _add_method(self, ep) -> None:
        from clbench.method import Method, MethodConfig

        obj = self._safe_load(ep)
        if obj is None:
            return
        if not (isinstance(obj, type) and issubclass(obj, Method)):
            warnings.warn(f"clbench: method {ep.name!r} from {self._origin(ep)} is not a "
                          "clbench.method.Method subclass; skipped", stacklevel=2)
            return
        if not (isinstance(obj.Config, type) and issubclass(obj.Config, MethodConfig)):
            warnings.warn(f"clbench: method {ep.name!r} from {self._origin(ep)}: its Config is not a "
                          "clbench.method.MethodConfig subclass; skipped", stacklevel=2)
            return
        self._put(self.methods, obj, ep)

    def _add_tasks(self, ep) -> None:
        obj = self._safe_load(ep)
        if obj is None:
            return
        for item in obj if isinstance(obj, (list, tuple)) else [obj]:
            if isinstance(item, TaskFamily):
                self._put(self.tasks, item, ep)
            elif isinstance(item, SequenceSpec):
                self._put(self.sequences, with_registered_base(item), ep)
            else:
                warnings.warn(f"clbench: entry point {ep.name!r} from {self._origin(ep)} gave "
                              f"{type(item).__name__}, not a TaskFamily or SequenceSpec; skipped",
                              stacklevel=2)

    def _put(self, table: dict, obj, ep) -> None:
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not NAME.match(name):
            warnings.warn(f"clbench: entry point {ep.name!r} from {self._origin(ep)} gave the name "
                          f"{name!r}; a name is lower-case letters, digits, '-' and '_'; skipped",
                          stacklevel=2)
            return
        if name in table:
            warnings.warn(f"clbench: {name!r} from {self._origin(ep)} duplicates the one from "
                          f"{table[name].origin}; the first is kept", stacklevel=2)
            return
        table[name] = Entry(obj, self._origin(ep))

    @staticmethod
    def _get(table: dict, kind: str, name: str):
        if name not in table:
            known = ", ".join(sorted(table)) or "(none)"
            raise UnknownName(f"{kind}: unknown {kind} {name!r}; known: {known}")
        return table[name].obj

    def method(self, name: str):
        return self._get(self.methods, "method", name)

    def task(self, name: str) -> TaskFamily:
        return self._get(self.tasks, "task", name)

    def sequence(self, name: str) -> SequenceSpec:
        seq = self._get(self.sequences, "sequence", name)
        for t in seq.tasks + seq.probes:
            if t not in self.tasks:
                raise UnknownName(f"sequence {name!r} names unknown task {t!r}; "
                                  f"known: {', '.join(sorted(self.tasks))}")
        return seq
