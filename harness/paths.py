"""Where the harness keeps downloads, indexes and caches. All locations come from environment variables."""

from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE = "HARNESS_CACHE_DIR"  # root of every harness cache (default ~/.cache/harness)
ENV_FIRST_STAGE_DIR = "HARNESS_FIRST_STAGE_DIR"  # local mirror of published runs: <task>/<file>.trec


def cache_dir(*parts: str) -> Path:
    root = Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "harness").expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
