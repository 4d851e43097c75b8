"""User-facing errors. The CLI prints these as one line and exits non-zero; anything else is a bug."""

from __future__ import annotations


class HarnessError(Exception):
    """An error caused by the user's input or environment; the message names the input and the fix."""


class MissingExtraError(HarnessError):
    """An optional dependency is not installed."""

    def __init__(self, module: str, extra: str, purpose: str):
        self.module = module
        self.extra = extra
        super().__init__(
            f"{purpose} needs the '{module}' package, which is not installed. "
            f"Install the '{extra}' extra: pip install -c constraints.txt -e '.[{extra}]'"
        )


class DataNotAvailableError(HarnessError):
    """A dataset, model or file is not cached locally and cannot be downloaded."""


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency or raise MissingExtraError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra, purpose) from exc
