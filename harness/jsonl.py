"""Reading JSON-lines data files with errors that name the file, the line and the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from harness.errors import HarnessError


def read_jsonl(path: Path, *, fix: str = "Fix or remove that line.") -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for every non-blank line; bytes that are not UTF-8 are replaced, not fatal."""
    with Path(path).open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8", errors="replace"))
            except json.JSONDecodeError as exc:
                raise HarnessError(f"{path}:{lineno}: not valid JSON ({exc.msg}). {fix}") from exc
            if not isinstance(obj, dict):
                raise HarnessError(f"{path}:{lineno}: expected a JSON object per line. {fix}")
            yield lineno, obj
