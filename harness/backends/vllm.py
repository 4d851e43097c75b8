"""vLLM engine backend (GPU; extra ``vllm``), written against vLLM's public async API.

``vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(...))`` (AsyncLLM in the V1 engine) with
``tensor_parallel_size = --gpus``, prefix caching on and ``gpu_memory_utilization = 0.9`` like the reference runs;
no dtype and no ``max_model_len`` unless a reranker asks (Rank1's ``max_model_len=16000, dtype="float16"``).

The engine is created on the first call that misses the cache. Every ``agenerate`` call becomes one ``engine.generate(prompt, SamplingParams, request_id)`` request submitted
immediately, so a query's next window joins the running batch as soon as its previous window returns (continuous
batching stays full) instead of waiting for the slowest chain of a lock-step position.

The engine lives on its own event loop in a background thread: vLLM binds its output handler to the loop of the
first request, while callers may run several short-lived loops (one ``asyncio.run`` per subset). Callers await a
future bridged from that loop. Generation seconds = wall time from submission to the final output of that request.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import os
import threading
import time
from typing import Any

from harness.errors import HarnessError, require
from harness.llm import Backend, Generation, GenerationRequest, SamplingParams
from harness.options import Option, OptionSet

GPU_MEMORY_UTILIZATION = 0.9
OPTIONS = OptionSet("backend vllm", [
    Option("max_model_len", int, None, "context length of the engine (default: the model config's)", minimum=1),
    Option("dtype", str, None, "weights dtype (default: the checkpoint's)",
           choices=("auto", "float16", "bfloat16", "float32", "half")),
    Option("trust_remote_code", bool, None, "allow the checkpoint's own modelling code"),
    Option("enforce_eager", bool, None, "disable CUDA graphs (less memory, slower)"),
    Option("quantization", str, None, "weights quantization method (awq, gptq, fp8, …); changes the model",
           identity=True),
    Option("max_num_seqs", int, None, "sequences batched at once", minimum=1),
    Option("gpu_memory_utilization", float, GPU_MEMORY_UTILIZATION, "share of GPU memory for the engine",
           minimum=0.05, maximum=1.0, source="ReasonRank and rank_llm reference runs (0.9)"),
    Option("seed", int, None, "engine seed", minimum=0),
])
_ENGINE_EXTRA_KEYS = tuple(o.name for o in OPTIONS if o.name != "gpu_memory_utilization")


def create(model: str, revision: str | None, execution, engine: dict) -> "VLLMBackend":
    from harness.models import resolve_model_path

    engine_kwargs = {key: value for key, value in engine.items() if value is not None}
    return VLLMBackend(resolve_model_path(model), gpus=execution.tensor_parallel, engine_kwargs=engine_kwargs,
                       model_id=model, revision=revision)


def sampling_params(vllm_module, params: SamplingParams):
    """harness SamplingParams → vllm.SamplingParams (all fields explicit, so checkpoint defaults never leak in)."""
    kwargs: dict[str, Any] = dict(
        n=1,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k,  # -1 disables top-k in every vLLM version
        min_p=params.min_p,
        max_tokens=params.max_tokens,
        min_tokens=params.min_tokens,
        stop=list(params.stop) or None,
        include_stop_str_in_output=params.include_stop_str_in_output,
        logprobs=params.logprobs,
        repetition_penalty=params.repetition_penalty,
        seed=params.seed,
        skip_special_tokens=params.skip_special_tokens,
    )
    if params.allowed_token_ids is not None:
        kwargs["allowed_token_ids"] = list(params.allowed_token_ids)
    output_kind = _request_output_kind(vllm_module)
    if output_kind is not None:
        kwargs["output_kind"] = output_kind.FINAL_ONLY  # one output per request: no per-token streaming overhead
    return vllm_module.SamplingParams(**kwargs)


def _request_output_kind(vllm_module):
    try:
        module = importlib.import_module(f"{vllm_module.__name__}.sampling_params")
    except ImportError:
        return None
    kind = getattr(module, "RequestOutputKind", None)
    return kind if kind is not None and hasattr(kind, "FINAL_ONLY") else None


def _logprobs(position_logprobs) -> list[dict[int, float]] | None:
    if position_logprobs is None:
        return None
    converted = []
    for position in position_logprobs:
        converted.append({int(token_id): float(getattr(lp, "logprob", lp)) for token_id, lp in position.items()})
    return converted


class VLLMBackend(Backend):
    name = "vllm"

    def __init__(self, model: str, gpus: int = 1, engine_kwargs: dict[str, Any] | None = None,
                 model_id: str | None = None, revision: str | None = None):
        if gpus < 1:
            raise HarnessError(f"--gpus must be at least 1 (got {gpus}).")
        self._vllm = require("vllm", "vllm", "The vLLM backend (--backend vllm)")
        self.model_id = model_id or model
        self.revision = revision
        self.gpus = gpus
        kwargs = dict(engine_kwargs or {})
        kwargs.setdefault("gpu_memory_utilization", GPU_MEMORY_UTILIZATION)
        self.engine_args = dict(model=model, tensor_parallel_size=gpus, enable_prefix_caching=True,
                                disable_log_stats=True, **kwargs)
        self._ids = itertools.count()
        self.in_flight = 0
        self.max_in_flight = 0
        self._engine = None
        self._start_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="harness-vllm-engine", daemon=True)
        self._thread.start()

    def _engine_ready(self):
        """Load the engine on the first call that reaches it: a rerun served entirely from the cache never loads
        the weights. Blocks the caller while loading (every pending call needs the engine anyway)."""
        with self._start_lock:
            if self._engine is None:
                try:
                    self._engine = asyncio.run_coroutine_threadsafe(self._start_engine(), self._loop).result()
                except Exception as exc:
                    raise HarnessError(f"vLLM could not load {self.model_id!r} on {self.gpus} GPU(s): "
                                       f"{type(exc).__name__}: {exc}. Check the model id/path, free GPU memory "
                                       "and --gpus.") from exc
            return self._engine

    async def _start_engine(self):
        if "max_model_len" in self.engine_args:  # Rank1's 16,000 exceeds some checkpoints' configured length
            os.environ.setdefault("VLLM_ALLOW_LONG_MAX_MODEL_LEN", "1")
        args = self._vllm.AsyncEngineArgs(**self.engine_args)
        return self._vllm.AsyncLLMEngine.from_engine_args(args)

    async def agenerate(self, request: GenerationRequest) -> Generation:
        self._engine_ready()
        future = asyncio.run_coroutine_threadsafe(self._generate(request), self._loop)
        return await asyncio.wrap_future(future)

    async def _generate(self, request: GenerationRequest) -> Generation:
        params = sampling_params(self._vllm, request.params)
        request_id = f"harness-{next(self._ids)}"
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        started = time.perf_counter()
        final = None
        try:
            async for output in self._engine.generate(request.prompt, params, request_id):
                final = output
        except ValueError as exc:  # vLLM's validation errors, e.g. prompt longer than the context
            raise HarnessError(f"vLLM rejected {request.label or 'a request'}: {exc}. Shorten the prompt "
                               "(--passage-length, --window-size) or raise the model's max_model_len.") from exc
        finally:
            self.in_flight -= 1
        seconds = time.perf_counter() - started
        if final is None or not final.outputs:
            raise HarnessError(f"vLLM returned no output for {request.label or 'a request'}.")
        completion = final.outputs[0]
        return Generation(
            text=completion.text,
            input_tokens=len(final.prompt_token_ids or ()),
            output_tokens=len(completion.token_ids),
            seconds=seconds,
            finish_reason=completion.finish_reason or "stop",
            logprobs=_logprobs(completion.logprobs) if request.params.logprobs is not None else None,
        )

    def describe(self) -> dict[str, Any]:
        return {"vllm_version": getattr(self._vllm, "__version__", None), "tensor_parallel_size": self.gpus,
                "enable_prefix_caching": True,
                "gpu_memory_utilization": self.engine_args["gpu_memory_utilization"],
                **{k: v for k, v in self.engine_args.items() if k in _ENGINE_EXTRA_KEYS}}

    def hardware(self) -> dict[str, Any]:
        from harness.provenance import gpu_info

        gpu = gpu_info()
        name = gpu["name"] if isinstance(gpu, dict) else "cuda"
        return {"backend": self.name, "accelerator": name, "count": self.gpus, "tensor_parallel": self.gpus,
                "data_parallel": 1}

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        if not self._loop.is_running():
            self._loop.close()

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None and hasattr(engine, "shutdown"):
            try:
                self._loop.call_soon_threadsafe(engine.shutdown)
            except RuntimeError:
                engine.shutdown()
        if not self._loop.is_closed():
            self._stop_loop()
