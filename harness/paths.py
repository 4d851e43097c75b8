"""Where the harness keeps downloads, indexes and caches. All locations come from environment variables."""

from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE = "HARNESS_CACHE_DIR"  # root of every harness cache (default ~/.cache/harness)
ENV_FIRST_STAGE_DIR = "HARNESS_FIRST_STAGE_DIR"  # local mirror of published runs: <task>/<file>.trec


def cache_root() -> Path:
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "harness").expanduser()


def cache_dir(*parts: str) -> Path:
    """``$HARNESS_CACHE_DIR/<parts>``, created if needed (an existing read-only directory is returned as is)."""
    path = cache_root().joinpath(*parts)
    if path.is_dir():
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from harness.errors import HarnessError

        raise HarnessError(f"Cannot create the cache directory {path} ({exc.strerror or exc}). Set {ENV_CACHE} to a "
                           "writable directory.") from exc
    return path


def writable(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)
