"""Inference backend registry ("vllm", "hf", "openai", "replay:PATH").

Each backend module declares ``OPTIONS`` (an ``harness.options.OptionSet`` of its engine settings) and a factory
``create(model, revision, execution, engine) -> harness.llm.Backend`` where ``engine`` holds the validated
settings (the reranker's reference engine defaults for that backend, overridden by ``--backend-arg``/flags).
``build_backend`` resolves "auto", validates the settings, and wraps the engine: metering (engine-time shares),
then the model-call cache, then the traces writer.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any, Mapping

from harness.errors import HarnessError
from harness.llm import Backend
from harness.models import cache_model_key, resolve_model_revision
from harness.options import OptionSet
from harness.registry import Registry

BACKENDS: Registry = Registry("backend", cli_hint="use --backend vllm|hf|openai|replay:PATH")
BACKENDS.register("vllm", "harness.backends.vllm:create", "vLLM engine (GPU; extra 'vllm')")
BACKENDS.register("hf", "harness.backends.hf:create", "transformers generate (CPU or GPU; extra 'hf')")
BACKENDS.register("openai", "harness.backends.openai:create", "any OpenAI-compatible server via --base-url")
BACKENDS.register("replay", "harness.backends.replay:create", "answers from a saved traces file: replay:PATH")


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


def backend_options(name: str) -> OptionSet:
    """The declared engine settings of backend ``name`` (without importing its engine library)."""
    module_name = BACKENDS._targets[BACKENDS.canonical(name)].split(":")[0]
    return importlib.import_module(module_name).OPTIONS


def engine_settings(name: str, defaults: Mapping[str, Mapping[str, Any]] | None,
                    backend_args: Mapping[str, Any]) -> dict[str, Any]:
    """Validated engine settings: the reranker's reference defaults for this backend, then the user's arguments."""
    options = backend_options(name)
    chosen = dict((defaults or {}).get(name, {}))
    chosen.update(options.validate(dict(backend_args), "--backend-arg"))
    return chosen


def build_backend(model: str, execution, *, revision: str | None = None,
                  engine_defaults: Mapping[str, Mapping[str, Any]] | None = None, head: str = "causal-lm") -> Backend:
    """Construct the backend named by ``execution.backend`` for ``model``, metered, cached and traced.

    Replay is never wrapped with the cache: it is itself a store of answers, and copying them into the model-call
    cache would make recorded outputs look like fresh model calls. ``head`` is what the reranker loads the weights
    as: ``causal-lm`` (generation) or ``sequence-classification`` (cross-encoders, answering ``kind="score"``).
    """
    from harness.backends.metering import MeteredBackend

    name, argument = resolve_backend_name(execution.backend)
    if name == "replay" and execution.save_traces and Path(argument).expanduser().resolve() == \
            Path(execution.save_traces).expanduser().resolve():
        raise HarnessError(f"--save-traces {execution.save_traces} is the file being replayed; writing it would erase "
                           "it. Save the new traces to another path.")
    engine = engine_settings(name, engine_defaults, dict(execution.backend_args))
    factory = BACKENDS.get(name)
    if execution.data_parallel > 1:
        from harness.backends.data_parallel import DataParallelBackend

        backend: Backend = DataParallelBackend(name, model, revision, execution, engine, head=head,
                                               replicas=execution.data_parallel)
    elif name == "replay":
        backend = factory(model, revision, execution, engine, argument)
    else:
        backend = factory(model, revision, execution, engine, head=head)
    if backend.revision is None:
        backend.revision = resolve_model_revision(model)
    backend = MeteredBackend(backend)
    if execution.cache and name != "replay":
        from harness.cache import CachedBackend, CallCache

        try:
            backend = CachedBackend(backend, CallCache(execution.cache_dir), backend.cache_identity())
        except BaseException:
            backend.close()
            raise
    if execution.save_traces:
        from harness.traces import TracesWriter

        try:
            backend = TracesWriter(backend, execution.save_traces, model_key=cache_model_key(model, backend.revision))
        except BaseException:
            backend.close()
            raise
    return backend


__all__ = ["BACKENDS", "backend_options", "build_backend", "cache_model_key", "engine_settings",
           "resolve_backend_name", "resolve_model_revision"]
