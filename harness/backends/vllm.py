"""vLLM engine backend (GPU; extra ``vllm``), written against vLLM's public async API (checked against 0.33).

``vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(...))`` (an alias of the V1 ``AsyncLLM``) with
``tensor_parallel_size = --gpus``, prefix caching on and ``gpu_memory_utilization = 0.9`` like the reference runs;
no dtype and no ``max_model_len`` unless a reranker asks (Rank1's ``max_model_len=16000, dtype="float16"``).

Facts of the 0.33 API this file depends on (tests/fake_vllm.py models them; tests/test_vllm_conformance.py
compares the fake with the real package when it is importable):

* prompts go in as token ids from the reranker's tokenizer (``vllm.inputs.tokens_input``; a raw string is
  "deprecated" and re-tokenized by the engine). Ids are made the way the engine would make them from the string
  (``add_special_tokens=True``), so the model sees exactly what the original string prompt gave it;
* ``top_k = 0`` disables top-k (-1 is only "quietly accepted"); older releases need -1, so the value is read from
  the installed ``SamplingParams``' own default;
* V1 returns log-probs of the *raw* distribution by default (``logprobs_mode="raw_logprobs"``): in Rank1's
  forced-verdict pass the non-sampled verdict can then fall out of the top 20 and the pair would score 0.5. The
  engine is started with ``logprobs_mode="processed_logprobs"`` (the masked distribution the original V0 runs
  reported) and forced-choice requests also ask for ``logprob_token_ids`` = the allowed tokens, so both verdicts
  always come back;
* bad requests raise ``vllm.exceptions.VLLMClientError`` subclasses (``VLLMValidationError``: e.g. a prompt longer
  than ``max_model_len``), not ``ValueError``; anything else in a request surfaces as
  ``vllm.v1.engine.exceptions.EngineGenerateError`` and a dead engine as ``EngineDeadError``;
* ``SamplingParams.output_kind = RequestOutputKind.FINAL_ONLY`` (module ``vllm.sampling_params``): one output per
  request instead of one per token.

The engine is created on the first call that misses the cache. Every ``agenerate`` call becomes one
``engine.generate(prompt, SamplingParams, request_id)`` request submitted immediately, so a query's next window
joins the running batch as soon as its previous window returns (continuous batching stays full) instead of waiting
for the slowest chain of a lock-step position.

The engine lives on its own event loop in a background thread: vLLM binds its output handler to the loop of the
first request, while callers may run several short-lived loops (one ``asyncio.run`` per subset). Callers await a
future bridged from that loop. Generation seconds = wall time from submission to the final output of that request.
"""

from __future__ import annotations

import asyncio
import dataclasses
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
LOGPROBS_MODE = "processed_logprobs"
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
    Option("logprobs_mode", str, LOGPROBS_MODE, "which distribution log-probs come from (after the logits "
           "processors, like the original V0 runs, or before)", identity=True,
           choices=("processed_logprobs", "raw_logprobs")),
    Option("seed", int, None, "engine seed", minimum=0),
])
_ENGINE_EXTRA_KEYS = tuple(o.name for o in OPTIONS if o.name != "gpu_memory_utilization")


def create(model: str, revision: str | None, execution, engine: dict, head: str = "causal-lm") -> "VLLMBackend":
    # a cross-encoder head is not served by this backend: it lacks the `score` capability, which the reranker checks
    from harness.models import resolve_model_path

    engine_kwargs = {key: value for key, value in engine.items() if value is not None}
    return VLLMBackend(resolve_model_path(model), gpus=execution.tensor_parallel, engine_kwargs=engine_kwargs,
                       model_id=model, revision=revision)


class _API:
    """What the installed vLLM offers, looked up once (names moved between releases; see the module docstring)."""

    def __init__(self, vllm_module):
        self.vllm = vllm_module
        self.sampling_fields = _field_names(vllm_module.SamplingParams)
        self.engine_fields = _field_names(vllm_module.AsyncEngineArgs)
        self.disabled_top_k = _disabled_top_k(vllm_module.SamplingParams)
        sampling = _optional_module(vllm_module, "sampling_params")
        kind = getattr(sampling, "RequestOutputKind", None)
        self.final_only = getattr(kind, "FINAL_ONLY", None)
        inputs = _optional_module(vllm_module, "inputs")
        self.tokens_input = getattr(inputs, "tokens_input", None)
        self.tokens_prompt = getattr(inputs, "TokensPrompt", None) or getattr(vllm_module, "TokensPrompt", None)
        exceptions = _optional_module(vllm_module, "exceptions")
        engine_exceptions = _optional_module(vllm_module, "v1.engine.exceptions")
        # before vllm.exceptions existed, validation failures were ValueErrors
        self.client_errors = tuple(c for c in (getattr(exceptions, "VLLMClientError", None), ValueError) if c)
        self.dead_error = getattr(engine_exceptions, "EngineDeadError", None)
        self.generate_error = getattr(engine_exceptions, "EngineGenerateError", None)

    def prompt(self, token_ids: list[int]):
        if self.tokens_input is not None:
            return self.tokens_input(token_ids)
        if self.tokens_prompt is not None:
            return self.tokens_prompt(prompt_token_ids=token_ids)
        return {"prompt_token_ids": token_ids}


def _optional_module(vllm_module, name: str):
    try:
        return importlib.import_module(f"{vllm_module.__name__}.{name}")
    except ImportError:
        return None


def _field_names(cls) -> frozenset[str] | None:
    """Constructor fields of a dataclass or msgspec.Struct; None when they cannot be read (then nothing is dropped)."""
    if dataclasses.is_dataclass(cls):
        return frozenset(f.name for f in dataclasses.fields(cls))
    fields = getattr(cls, "__struct_fields__", None)
    return frozenset(fields) if fields is not None else None


def _disabled_top_k(sampling_cls) -> int:
    fields = tuple(getattr(sampling_cls, "__struct_fields__", ()))
    values = tuple(getattr(sampling_cls, "__struct_defaults__", ()))
    defaults = dict(zip(fields[len(fields) - len(values):], values))  # msgspec: defaults belong to the last fields
    if "top_k" not in defaults and dataclasses.is_dataclass(sampling_cls):
        defaults = {f.name: f.default for f in dataclasses.fields(sampling_cls)}
    value = defaults.get("top_k", -1)
    return value if isinstance(value, int) and value <= 0 else -1


def sampling_params(api: _API, params: SamplingParams):
    """harness SamplingParams → vllm.SamplingParams (all fields explicit, so checkpoint defaults never leak in)."""
    kwargs: dict[str, Any] = dict(
        n=1,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k if params.top_k > 0 else api.disabled_top_k,
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
        if params.logprobs is not None and _supports(api.sampling_fields, "logprob_token_ids"):
            kwargs["logprob_token_ids"] = list(params.allowed_token_ids)
    if api.final_only is not None:
        kwargs["output_kind"] = api.final_only  # one output per request: no per-token streaming overhead
    return api.vllm.SamplingParams(**kwargs)


def _supports(fields: frozenset[str] | None, name: str) -> bool:
    return fields is not None and name in fields


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
        self._api = _API(self._vllm)
        self.model = model
        self.model_id = model_id or model
        self.revision = revision
        self.gpus = gpus
        kwargs = dict(engine_kwargs or {})
        kwargs.setdefault("gpu_memory_utilization", GPU_MEMORY_UTILIZATION)
        kwargs.setdefault("logprobs_mode", LOGPROBS_MODE)
        if self._api.engine_fields is not None and "logprobs_mode" not in self._api.engine_fields:
            kwargs.pop("logprobs_mode")  # V0-era releases: log-probs always came after the logits processors
        self.engine_args = dict(model=model, tensor_parallel_size=gpus, enable_prefix_caching=True,
                                disable_log_stats=True, **kwargs)
        if revision and (self._api.engine_fields is None or "revision" in self._api.engine_fields):
            self.engine_args["revision"] = revision
        self._tokenizer = None
        self._ids = itertools.count()
        self.in_flight = 0
        self.max_in_flight = 0
        self._engine = None
        self._start_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="harness-vllm-engine", daemon=True)
        self._thread.start()

    def bind_tokenizer(self, tokenizer) -> None:
        self._tokenizer = tokenizer

    def _token_ids(self, prompt: str) -> list[int]:
        if self._tokenizer is None:
            from harness.models import load_tokenizer

            self._tokenizer = load_tokenizer(self.model, self.revision)
        # the ids the engine would make from this string itself (its completion path adds special tokens)
        return list(self._tokenizer(prompt, add_special_tokens=True).input_ids)

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
        token_ids = self._token_ids(request.prompt)
        future = asyncio.run_coroutine_threadsafe(self._generate(request, token_ids), self._loop)
        return await asyncio.wrap_future(future)

    async def _generate(self, request: GenerationRequest, token_ids: list[int]) -> Generation:
        what = request.label or "a request"
        api = self._api
        request_id = f"harness-{next(self._ids)}"
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        started = time.perf_counter()
        final = None
        try:
            params = sampling_params(api, request.params)
            async for output in self._engine.generate(api.prompt(token_ids), params, request_id):
                final = output
        except api.client_errors as exc:  # the request itself is wrong, e.g. a prompt longer than the context
            raise HarnessError(f"vLLM rejected {what} ({len(token_ids)} prompt tokens): {exc}. Shorten the prompt "
                               "(--passage-length, --window-size) or raise the engine's context "
                               "(--backend-arg max_model_len=N).") from exc
        except Exception as exc:
            if api.dead_error is not None and isinstance(exc, api.dead_error):
                raise HarnessError(f"the vLLM engine died while serving {what}: {exc}. Its log above names the "
                                   "cause (often GPU memory: lower --backend-arg gpu_memory_utilization or "
                                   "max_num_seqs); finished queries are kept, rerun to resume.") from exc
            if api.generate_error is not None and isinstance(exc, api.generate_error):
                cause = exc.__cause__
                detail = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc) or type(exc).__name__
                raise HarnessError(f"vLLM failed on {what}: {detail}.") from exc
            raise
        finally:
            self.in_flight -= 1
        seconds = time.perf_counter() - started
        if final is None or not final.outputs:
            raise HarnessError(f"vLLM returned no output for {what}.")
        completion = final.outputs[0]
        return Generation(
            text=completion.text,
            input_tokens=len(final.prompt_token_ids or token_ids),
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
