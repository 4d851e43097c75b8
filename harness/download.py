"""Downloading single files (published runs, run URLs) into the harness cache.

``fetch`` writes atomically (temporary file + rename), so an interrupted download never leaves a file that
looks complete, and verifies an expected sha256 before the file gets its final name.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from harness.errors import DataNotAvailableError, HarnessError


_CHUNK = 1 << 16


def quarantine(path: Path, like: Path | None = None) -> Path:
    """Move a file that failed verification aside as ``<name>.bad`` (kept for inspection, never used again)."""
    like = like or path
    target = like.with_name(like.name + ".bad")
    os.replace(path, target)
    return target


def fetch(url: str, dest: str | os.PathLike, sha256: str | None = None, *, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` unless it is already there. Returns ``dest``.

    An existing ``dest`` is reused as is (callers verify it); a fresh download whose sha256 differs from the
    expected one is quarantined next to ``dest`` as ``<name>.bad`` and raises HarnessError.
    """
    import httpx

    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    manual = (f"Download it by hand on a machine with network access and place it at {dest}"
              + (f" (sha256 {sha256})" if sha256 else "") + ".")
    h = hashlib.sha256()
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=timeout) as response:
            if response.status_code != 200:
                raise HarnessError(f"Downloading {url} failed: HTTP {response.status_code}. {manual}")
            with tmp.open("wb") as fh:
                for block in response.iter_bytes(_CHUNK):
                    fh.write(block)
                    h.update(block)
        if sha256 and h.hexdigest() != sha256:
            bad = quarantine(tmp, like=dest)
            raise HarnessError(
                f"Downloaded {url} has sha256 {h.hexdigest()}, expected {sha256}; the file was moved to {bad}. "
                f"The source changed or the download was corrupted. {manual}"
            )
        os.replace(tmp, dest)
    except httpx.HTTPError as exc:
        raise DataNotAvailableError(
            f"Cannot download {url} ({type(exc).__name__}: {exc}); the machine looks offline. {manual}"
        ) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest
