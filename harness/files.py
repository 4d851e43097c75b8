"""File helpers shared by every writer: content hashing and crash-safe writes.

Every file or directory the harness produces (records, run files, caches, indexes, downloads) is written next to
its final place under a temporary name, flushed to disk, and renamed into place. A directory that replaces an
older copy is never deleted first: the old copy is renamed aside, the new one renamed in, and only then is the old
one removed. A crash between the two renames leaves the old copy under ``.<name>.old-<pid>``, which
``recover_directory`` puts back, so a reader never finds neither.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


GZ = ".gz"


def stored_file(directory: str | os.PathLike, name: str) -> Path:
    """``directory/name``, or its gzip-compressed copy ``name.gz`` (the committed results tree stores run and
    traces files compressed; records keep the plain name and the sha256 of the plain content)."""
    plain = Path(directory) / name
    packed = plain.with_name(plain.name + GZ)
    return packed if not plain.exists() and packed.is_file() else plain


def open_text(path: str | os.PathLike):
    """A text handle on a file, decompressing ``.gz``."""
    import gzip

    path = Path(path)
    if path.suffix == GZ:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open("r", encoding="utf-8", errors="replace")


def sha256_content(path: str | os.PathLike) -> str:
    """sha256 of a file's content: of the decompressed bytes for ``.gz``."""
    import gzip

    path = Path(path)
    if path.suffix != GZ:
        return sha256_file(path)
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not every platform can open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary sibling + fsync + ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_text(obj: Any) -> str:
    """The JSON form every record file uses: indented, key order kept, UTF-8 kept as is."""
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json_text(obj))


def new_temp_dir(final: Path) -> Path:
    """A fresh temporary directory next to ``final`` (same file system, so the rename is atomic)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))


def _old_copies(final: Path) -> Iterator[Path]:
    return (p for p in final.parent.glob(f".{final.name}.old-*") if p.is_dir())


def recover_directory(final: Path) -> None:
    """Put back an old copy that a crash left renamed aside (only when ``final`` itself is missing)."""
    if final.exists():
        return
    old = sorted(_old_copies(final), key=lambda p: p.stat().st_mtime, reverse=True)
    if old:
        os.replace(old[0], final)


def install_directory(tmp: Path, final: Path) -> Path:
    """Move the finished directory ``tmp`` to ``final``, replacing an older copy without deleting it first."""
    for path in tmp.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    recover_directory(final)
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _fsync_dir(final.parent)
    return final


class TempDir:
    """``with TempDir(final) as tmp: ... write into tmp ...`` → installed at ``final`` on success, removed on error."""

    def __init__(self, final: str | os.PathLike):
        self.final = Path(final)
        self.path: Path | None = None

    def __enter__(self) -> Path:
        self.path = new_temp_dir(self.final)
        return self.path

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.path is not None
        if exc_type is None:
            try:
                install_directory(self.path, self.final)
            except BaseException:
                shutil.rmtree(self.path, ignore_errors=True)
                raise
        else:
            shutil.rmtree(self.path, ignore_errors=True)
