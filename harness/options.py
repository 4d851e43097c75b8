"""Typed, declared options: every reranker, backend and first stage states the options it reads.

An ``Option`` has a name, a type, a default, a help text, a valid range or set of choices and the source of its
default. ``OptionSet.validate`` is the one place where user values (command-line flags, ``--reranker-arg
key=value``, ``--backend-arg key=value`` and YAML config keys) are checked and converted, so every path gives the
same errors: an unknown key lists the valid keys with a did-you-mean; a value of the wrong type, zero where at least
one is needed, or out of range names the option and the range. Nothing is silently replaced by a default.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from harness.errors import HarnessError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class Option:
    name: str
    type: type = str  # int, float, str or bool
    default: Any = None  # None: unset (the plugin resolves it, e.g. per dataset)
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    source: str = ""  # where the default comes from (paper, reference code), shown by `harness ls -v`
    identity: bool = False  # an engine setting that changes the model (part of the experiment identity)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def range_text(self) -> str:
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"{_number(self.minimum)}..{_number(self.maximum)}"
        if self.minimum is not None:
            return f"≥ {_number(self.minimum)}"
        if self.maximum is not None:
            return f"≤ {_number(self.maximum)}"
        return {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(self.type, "")

    def convert(self, value: Any, where: str) -> Any:
        """``value`` as this option's type, checked against its range; raises HarnessError naming the option."""
        if value is None:
            return None
        label = f"{where}{' ' if where else ''}option {self.name!r}"
        converted = _coerce(value, self.type)
        if converted is _INVALID:
            raise HarnessError(f"{label} must be {self.range_text()}; got {value!r}.")
        if self.choices is not None and converted not in self.choices:
            close = difflib.get_close_matches(str(converted), [str(c) for c in self.choices], n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise HarnessError(f"{label} must be {self.range_text()}; got {value!r}.{hint}")
        if isinstance(converted, (int, float)) and not isinstance(converted, bool):
            if self.minimum is not None and converted < self.minimum:
                raise HarnessError(f"{label} must be {self.range_text()}; got {value!r}.")
            if self.maximum is not None and converted > self.maximum:
                raise HarnessError(f"{label} must be {self.range_text()}; got {value!r}.")
        return converted


_INVALID = object()


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _coerce(value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        return _INVALID
    if kind is int:
        if isinstance(value, bool):
            return _INVALID
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                return _INVALID
        return _INVALID
    if kind is float:
        if isinstance(value, bool):
            return _INVALID
        if isinstance(value, (int, float)):
            result = float(value)
        elif isinstance(value, str):
            try:
                result = float(value.strip())
            except ValueError:
                return _INVALID
        else:
            return _INVALID
        return result if result == result and result not in (float("inf"), float("-inf")) else _INVALID
    if kind is str:
        return value if isinstance(value, str) else _INVALID
    return value


class OptionSet:
    """The declared options of one plugin (``owner``, e.g. "reranker reasonrank")."""

    def __init__(self, owner: str, options: Iterable[Option] = ()):
        self.owner = owner
        self.options: dict[str, Option] = {}
        for option in options:
            if option.name in self.options:
                raise ValueError(f"{owner}: option {option.name!r} declared twice")
            self.options[option.name] = option

    def __contains__(self, name: str) -> bool:
        return name in self.options

    def __iter__(self):
        return iter(self.options.values())

    def __add__(self, other: "OptionSet") -> "OptionSet":
        return OptionSet(self.owner, [*self.options.values(), *(o for o in other if o.name not in self.options)])

    def extended(self, owner: str, options: Iterable[Option]) -> "OptionSet":
        """A copy for ``owner`` with ``options`` added (an option of the same name replaces the inherited one)."""
        merged = dict(self.options)
        for option in options:
            merged[option.name] = option
        return OptionSet(owner, merged.values())

    def unknown_error(self, key: str, where: str = "") -> HarnessError:
        names = sorted(self.options)
        close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(names) if names else "none"
        place = f"{where}: " if where else ""
        return HarnessError(f"{place}{self.owner} has no option {key!r}.{hint} Its options: {listing}.")

    def validate(self, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """Checked and converted values (unset ones left out); raises HarnessError on the first bad key or value."""
        out: dict[str, Any] = {}
        for key, value in values.items():
            name = str(key).replace("-", "_")
            option = self.options.get(name)
            if option is None:
                raise self.unknown_error(name, where)
            converted = option.convert(value, f"{where}: {self.owner}" if where else self.owner)
            if converted is not None:
                out[name] = converted
        return out

    def resolved(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Every option with its value: the validated user value, else the default (None = resolved later)."""
        return {name: values.get(name, option.default) for name, option in self.options.items()}

    def describe(self) -> list[tuple[str, str, str, str, str]]:
        """(name, type, default, range, help + source) rows for `harness ls ... -v`."""
        rows = []
        for option in self.options.values():
            default = "per dataset / resolved at run time" if option.default is None else repr(option.default)
            help_text = option.help + (f" [source: {option.source}]" if option.source else "")
            rows.append((option.name, option.type.__name__, default, option.range_text(), help_text))
        return rows


def parse_key_values(items: Iterable[str] | None, flag: str) -> dict[str, str]:
    """``["k=v", ...]`` from a repeatable ``--…-arg`` flag → ``{k: "v"}``; a malformed item is a clear error."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HarnessError(f"{flag} {item!r}: expected KEY=VALUE, e.g. {flag} temperature=0.6.")
        key = key.strip().replace("-", "_")
        if key in out:
            raise HarnessError(f"{flag}: {key!r} is given twice ({out[key]!r} and {value!r}).")
        out[key] = value
    return out
