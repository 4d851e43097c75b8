"""A lazy, named registry for plugins (tasks, first stages, rerankers, backends).

Entries are ``"module:attribute"`` strings so that listing names never imports heavy plugin code;
the object is imported on first ``get``. Unknown names raise a HarnessError with did-you-mean hints.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Generic, Iterator, TypeVar

from harness.errors import HarnessError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, cli_hint: str = ""):
        self.kind = kind
        self.cli_hint = cli_hint
        self._targets: dict[str, str] = {}
        self._descriptions: dict[str, str] = {}
        self._aliases: dict[str, str] = {}
        self._loaded: dict[str, Any] = {}

    def register(self, name: str, target: str, description: str = "", aliases: tuple[str, ...] = ()) -> None:
        if name in self._targets or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        if ":" not in target:
            raise ValueError(f"registry target must be 'module:attribute', got {target!r}")
        self._targets[name] = target
        self._descriptions[name] = description
        for alias in aliases:
            self._aliases[alias] = name

    def canonical(self, name: str) -> str:
        if name in self._targets:
            return name
        if name in self._aliases:
            return self._aliases[name]
        choices = list(self._targets) + list(self._aliases)
        close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = f" Known {self.kind}s: {', '.join(sorted(self._targets))}."
        extra = f" ({self.cli_hint})" if self.cli_hint else ""
        raise HarnessError(f"Unknown {self.kind} {name!r}.{hint}{listing}{extra}")

    def get(self, name: str) -> T:
        key = self.canonical(name)
        if key not in self._loaded:
            module_name, attr = self._targets[key].split(":", 1)
            module = importlib.import_module(module_name)
            self._loaded[key] = getattr(module, attr)
        return self._loaded[key]

    def __contains__(self, name: str) -> bool:
        return name in self._targets or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._targets))

    def describe(self) -> list[tuple[str, str, tuple[str, ...]]]:
        rows = []
        for name in sorted(self._targets):
            aliases = tuple(a for a, n in self._aliases.items() if n == name)
            rows.append((name, self._descriptions[name], aliases))
        return rows
