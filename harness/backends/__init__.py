"""Inference backend registry ("vllm", "hf", "openai", "replay:PATH").

Each entry is a factory ``f(model: str, options: RerankerOptions, argument: str | None) -> harness.llm.Backend``.
``build_backend`` resolves "auto", then wraps the backend with the model-call cache and the traces writer.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from harness.errors import HarnessError
from harness.llm import Backend
from harness.registry import Registry

BACKENDS: Registry = Registry("backend", cli_hint="use --backend vllm|hf|openai|replay:PATH")
BACKENDS.register("vllm", "harness.backends.vllm:create", "vLLM offline engine (GPU; extra 'vllm')")
BACKENDS.register("hf", "harness.backends.hf:create", "transformers generate (CPU or GPU; extra 'hf')")
BACKENDS.register("openai", "harness.backends.openai:create", "any OpenAI-compatible server via --base-url")
BACKENDS.register("replay", "harness.backends.replay:create", "answers from a saved traces file: replay:PATH")

# Files that identify a local checkpoint; weights are fingerprinted by name, size and their first/last MiB
# (hashing tens of GB on every run would be too slow; fine-tunes differ in those bytes anyway).
_IDENTITY_FILES = ("config.json", "generation_config.json", "model.safetensors.index.json",
                   "pytorch_model.bin.index.json", "adapter_config.json")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
_FINGERPRINT_BYTES = 1 << 20


def resolve_backend_name(spec: str | None) -> tuple[str, str | None]:
    """``None``/"auto" → "vllm" when a CUDA GPU and the vllm package are present, else "hf"; splits "replay:PATH"."""
    spec = (spec or "auto").strip()
    name, sep, argument = spec.partition(":")
    if name == "auto":
        return ("vllm" if _vllm_usable() else "hf"), None
    if name == "replay" and not argument:
        raise HarnessError("--backend replay needs the traces file to answer from: --backend replay:PATH "
                           "(write one with --save-traces PATH).")
    if sep and name != "replay":
        raise HarnessError(f"--backend {spec!r}: only 'replay' takes an argument (replay:PATH).")
    return BACKENDS.canonical(name), (argument or None)


def _vllm_usable() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    from harness.provenance import gpu_info

    return gpu_info() != "cpu"


def build_backend(model: str, options) -> Backend:
    """Construct the backend named by ``options.backend`` for ``model``, with the cache and traces wrappers.

    Replay is never wrapped with the cache: it is itself a store of answers, and copying them into the model-call
    cache would make recorded outputs look like fresh model calls.
    """
    name, argument = resolve_backend_name(getattr(options, "backend", None))
    if name == "replay" and options.save_traces and Path(argument).expanduser().resolve() == \
            Path(options.save_traces).expanduser().resolve():
        raise HarnessError(f"--save-traces {options.save_traces} is the file being replayed; writing it would erase "
                           "it. Save the new traces to another path.")
    backend: Backend = BACKENDS.get(name)(model, options, argument)
    if backend.revision is None:
        backend.revision = resolve_model_revision(model)
    model_key = cache_model_key(model, backend.revision)
    if options.cache and name != "replay":
        from harness.cache import CachedBackend, CallCache

        try:
            backend = CachedBackend(backend, CallCache(options.cache_dir), model_key)
        except BaseException:
            backend.close()
            raise
    if options.save_traces:
        from harness.traces import TracesWriter

        try:
            backend = TracesWriter(backend, options.save_traces, model_key=model_key)
        except BaseException:
            backend.close()
            raise
    return backend


def cache_model_key(model: str, revision: str | None) -> str:
    """Backend-independent identity of the weights: a local checkpoint by its content fingerprint (so moving the
    directory keeps its cache), a hub id by id and snapshot commit."""
    if revision and revision.startswith("sha256:"):  # only local checkpoints get content fingerprints
        return f"local@{revision}"
    return f"{model}@{revision or 'unknown'}"


def resolve_model_revision(model: str) -> str | None:
    """Best effort, never raises. Local directory → ``sha256:…`` fingerprint of its config/index files and weight
    files (name, size, first and last MiB), or None if it has none of them. Hub id → the commit hash of the locally
    cached snapshot, or None when it is not cached."""
    try:
        path = Path(model).expanduser()
        if path.is_dir():
            return _fingerprint_dir(path)
        if path.exists():
            return None
        return _hub_snapshot_commit(model)
    except Exception:  # a revision is provenance, not a reason to fail a run
        return None


def _fingerprint_dir(path: Path) -> str | None:
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

    for filename in ("config.json", "adapter_config.json"):
        cached = try_to_load_from_cache(model, filename)
        if isinstance(cached, str):
            return Path(cached).parent.name  # …/snapshots/<commit>/config.json
    return None


__all__ = ["BACKENDS", "build_backend", "cache_model_key", "resolve_backend_name", "resolve_model_revision"]
