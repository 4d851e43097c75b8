"""Provenance for run records: versions, git state, GPU, timestamps. Never imports torch unless it is loaded."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import harness

TRACKED_PACKAGES = (
    "harness", "torch", "transformers", "tokenizers", "vllm", "ftfy", "pytrec-eval-terrier", "ir_datasets",
    "huggingface_hub", "numpy", "scipy", "pyserini", "sentence-transformers", "trl", "peft", "httpx",
)


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def package_versions(names=TRACKED_PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@lru_cache(maxsize=1)
def git_state() -> dict[str, object]:
    """Commit and dirty flag of the harness source tree (None when not a git checkout)."""
    root = Path(harness.__file__).resolve().parent.parent
    if not (root / ".git").exists() or not shutil.which("git"):
        return {"git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit, "git_dirty": dirty if commit else None}


@lru_cache(maxsize=1)
def gpu_info() -> dict[str, object] | str:
    """{"name", "count"} of the visible NVIDIA GPUs, or "cpu". Uses nvidia-smi, or torch if already imported."""
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=20).stdout
            names = [line.strip() for line in out.splitlines() if line.strip()]
            if names:
                return {"name": names[0], "count": len(names)}
        except (OSError, subprocess.SubprocessError):
            pass
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                return {"name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count()}
        except Exception:  # a broken CUDA setup must not break record writing
            pass
    return "cpu"


def provenance(started_utc: str, argv: list[str] | None = None) -> dict[str, object]:
    return {
        "harness_version": harness.__version__,
        **git_state(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "started_utc": started_utc,
        "finished_utc": utc_now(),
        "argv": [portable_arg(a) for a in (argv if argv is not None else sys.argv)],
    }


def portable_arg(arg: object) -> str:
    """A command-line argument without this machine's paths: the working directory becomes relative, the home
    directory ``~`` (records are published; the command should still read as it was typed)."""
    text = str(arg)
    for prefix, replacement in ((os.getcwd().rstrip("/") + "/", ""), (os.path.expanduser("~").rstrip("/") + "/",
                                                                         "~/")):
        if len(prefix) > 1 and prefix in text:
            text = text.replace(prefix, replacement)
    return text
