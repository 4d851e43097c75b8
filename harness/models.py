"""Models as the harness identifies them: hub ids, local checkpoint directories, their revisions and tokenizers.

* ``resolve_model_revision``: a local checkpoint directory → ``sha256:`` fingerprint of its config/index files and
  weight files (name, size, first and last MiB: hashing tens of GB on every run would be too slow, and fine-tunes
  differ in those bytes anyway); a hub id → the commit of the locally cached snapshot (None when not cached).
* ``model_label``: what records show — the hub id, or ``<directory name>`` for a local checkpoint (machine paths
  never enter records).
* ``load_tokenizer``: the model's own tokenizer (prompt building, truncation, token counts), cached per process.
* ``model_not_available``: the one user-facing error for a model or tokenizer that cannot be loaded offline.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from harness.errors import HarnessError, require

_IDENTITY_FILES = ("config.json", "generation_config.json", "model.safetensors.index.json",
                   "pytorch_model.bin.index.json", "adapter_config.json")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
_FINGERPRINT_BYTES = 1 << 20


def is_local_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or Path(model).expanduser().exists()


def resolve_model_path(model: str) -> str:
    """A name the embedded-model registry knows (``smollm2-135m``) → its prepared directory; anything else as is."""
    from harness.embedded import EMBEDDED_MODELS, prepared_path

    if model in EMBEDDED_MODELS:
        return str(prepared_path(model))
    return model


def model_label(model: str | None) -> str | None:
    if model is None:
        return None
    from harness.embedded import EMBEDDED_MODELS

    if model in EMBEDDED_MODELS:
        return model
    path = Path(model).expanduser()
    if is_local_path(model) and path.is_dir():
        return path.resolve().name
    return model


def model_fingerprint(model: str) -> str | None:
    """What identifies a model's weights by content, without loading it: an embedded model by its pinned source
    file, a local checkpoint directory by its fingerprint; None for hub ids (their revision pins them)."""
    from harness.embedded import EMBEDDED_MODELS

    if model in EMBEDDED_MODELS:
        return f"embedded:sha256:{EMBEDDED_MODELS[model].gguf_sha256}"
    path = Path(model).expanduser()
    return fingerprint_dir(path) if path.is_dir() else None


def resolve_model_revision(model: str) -> str | None:
    """Best effort, never raises (a revision is provenance, not a reason to fail a run)."""
    try:
        path = Path(model).expanduser()
        if path.is_dir():
            return fingerprint_dir(path)
        if path.exists():
            return None
        return _hub_snapshot_commit(model)
    except Exception:
        return None


def fingerprint_dir(path: Path) -> str | None:
    digest = hashlib.sha256()
    found = False
    for name in _IDENTITY_FILES:
        file = path / name
        if file.is_file():
            found = True
            digest.update(f"{name}\n".encode())
            digest.update(file.read_bytes())
    for file in sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES)):
        found = True
        size = file.stat().st_size
        digest.update(f"{file.name}\n{size}\n".encode())
        with file.open("rb") as fh:
            digest.update(fh.read(_FINGERPRINT_BYTES))
            if size > 2 * _FINGERPRINT_BYTES:
                fh.seek(size - _FINGERPRINT_BYTES)
                digest.update(fh.read(_FINGERPRINT_BYTES))
            elif size > _FINGERPRINT_BYTES:
                digest.update(fh.read())
    return f"sha256:{digest.hexdigest()}" if found else None


def _hub_snapshot_commit(model: str) -> str | None:
    if model.count("/") != 1 or model.startswith((".", "~", "/")):
        return None  # not a hub id (a missing local path, a served-model name)
    from huggingface_hub import try_to_load_from_cache

    for filename in ("config.json", "adapter_config.json", "tokenizer_config.json"):
        cached = try_to_load_from_cache(model, filename)
        if isinstance(cached, str):
            return Path(cached).parent.name  # …/snapshots/<commit>/config.json
    return None


def cache_model_key(model: str, revision: str | None) -> str:
    """Backend-independent identity of the weights for the model-call cache: a local checkpoint by its content
    fingerprint (so moving the directory keeps its cache), a hub id by id and snapshot commit."""
    if revision and revision.startswith("sha256:"):  # only local checkpoints get content fingerprints
        return f"local@{revision}"
    return f"{model}@{revision or 'unknown'}"


def model_not_available(model_or_path: str, what: str, exc: Exception) -> HarnessError:
    """The user-facing error for a model/tokenizer that cannot be loaded offline."""
    looks_like_path = model_or_path.startswith((".", "/", "~")) or Path(model_or_path).expanduser().exists()
    if looks_like_path and not Path(model_or_path).expanduser().is_dir():
        return HarnessError(f"Cannot load the {what} of {model_or_path!r}: that directory does not exist. "
                            "Pass --model with a Hugging Face id or an existing checkpoint directory.")
    return HarnessError(
        f"Cannot load the {what} of {model_or_path!r}: it is not in the Hugging Face cache and could not be "
        "downloaded (offline, HF_HUB_OFFLINE=1, gated or misspelled). Download it first "
        f"(`hf download {model_or_path}`) or pass --model with a local checkpoint directory. Details: {exc}"
    )


@lru_cache(maxsize=8)
def load_tokenizer(model_or_path: str, revision: str | None = None):
    """``transformers.AutoTokenizer`` for an HF id or a local directory; cached per (model, revision)."""
    transformers = require("transformers", "hf", "Building reranker prompts with the model's tokenizer")
    path = resolve_model_path(model_or_path)
    try:
        return transformers.AutoTokenizer.from_pretrained(path, revision=revision)
    except (OSError, ValueError) as exc:  # ValueError: huggingface_hub rejects a malformed repo id
        raise model_not_available(model_or_path, "tokenizer", exc) from exc
