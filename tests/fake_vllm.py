"""A stand-in for the ``vllm`` package, following vLLM 0.33's public API (no GPU, no vllm here).

Signatures, field names and defaults copy 0.33's (tests/test_vllm_conformance.py compares them with the real package
when it is importable); behaviour models what the harness depends on:

* ``AsyncLLM.generate(prompt, sampling_params, request_id, *, ...)`` is an async generator; its output handler
  binds to the event loop of the first request (later requests from another loop fail);
* a prompt is a rendered ``tokens_input`` (``{"type": "token", "prompt_token_ids": [...]}``); a raw string or a
  ``TokensPrompt`` is accepted but logged as deprecated (``engine.deprecations``);
* a prompt longer than ``max_model_len`` raises ``VLLMValidationError`` (not a ``ValueError``); other failures in a
  request surface as ``EngineGenerateError`` chained to their cause; ``logprobs`` above ``max_logprobs`` (20) is a
  validation error;
* ``output_kind``: ``CUMULATIVE`` (the default) yields once per generated token, ``FINAL_ONLY`` once;
* log-probs: a small deterministic "model" over ``VOCAB`` tokens. ``logprobs_mode="raw_logprobs"`` (the default)
  reports the distribution before ``allowed_token_ids`` masks it, ``"processed_logprobs"`` after; ``logprobs=k``
  returns the top k plus the sampled token, ``logprob_token_ids`` exactly those ids plus the sampled token.

Prompt token ids are UTF-8 bytes (``ByteTokenizer``), so text and ids map both ways without a model.
"""

from __future__ import annotations

import asyncio
import math
import sys
import types
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, NotRequired, TypedDict

__version__ = "0.33.0"
VOCAB = 256
MAX_LOGPROB_TOKEN_IDS = 128
_SAMPLING_EPS = 1e-5


# --- vllm.exceptions, vllm.v1.engine.exceptions -------------------------------------------------------------------
class VLLMError(Exception):
    pass


class VLLMClientError(VLLMError):
    pass


class VLLMServerError(VLLMError):
    pass


class VLLMValidationError(VLLMClientError):
    def __init__(self, message: str, *, parameter: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.value = value


class EngineGenerateError(VLLMServerError):
    pass


class EngineDeadError(VLLMServerError):
    def __init__(self, *args, suppress_context: bool = False, **kwargs):
        super().__init__("EngineCore encountered an issue. See stack trace (above) for the root cause.", *args)
        self.__suppress_context__ = suppress_context


# --- vllm.sampling_params -----------------------------------------------------------------------------------------
class RequestOutputKind(Enum):
    CUMULATIVE = 0
    DELTA = 1
    FINAL_ONLY = 2


@dataclass
class SamplingParams:
    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    max_tokens: int | None = 16
    min_tokens: int = 0
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    logprob_token_ids: list[int] | None = None
    detokenize: bool = True
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True
    include_stop_str_in_output: bool = False
    output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE
    logit_bias: dict[int, float] | None = None
    allowed_token_ids: list[int] | None = None
    extra_args: dict[str, Any] | None = None
    bad_words: list[str] | None = None

    def __post_init__(self):
        if self.top_k < -1:
            raise VLLMValidationError(f"top_k must be 0 (disable), or at least 1, got {self.top_k}.")
        if not 0.0 <= self.temperature <= 2.0:
            raise VLLMValidationError(f"temperature must be in [0, 2], got {self.temperature}.",
                                      parameter="temperature", value=self.temperature)
        if not 0.0 < self.top_p <= 1.0:
            raise VLLMValidationError(f"top_p must be in (0, 1], got {self.top_p}.", parameter="top_p",
                                      value=self.top_p)
        if self.max_tokens is not None and self.max_tokens < 1:
            raise VLLMValidationError(f"max_tokens must be at least 1, got {self.max_tokens}.",
                                      parameter="max_tokens", value=self.max_tokens)
        if self.logprob_token_ids is not None and len(self.logprob_token_ids) > MAX_LOGPROB_TOKEN_IDS:
            raise VLLMValidationError(f"logprob_token_ids must have at most {MAX_LOGPROB_TOKEN_IDS} entries.")
        if self.temperature < _SAMPLING_EPS:  # greedy
            self.top_p, self.top_k, self.min_p = 1.0, 0, 0.0


# --- vllm.inputs ----------------------------------------------------------------------------------------------------
class TokensPrompt(TypedDict):
    prompt_token_ids: list[int]
    prompt: NotRequired[str]


class TokensInput(TypedDict):
    type: Literal["token"]
    prompt_token_ids: list[int]
    prompt: NotRequired[str]


def tokens_input(prompt_token_ids: list[int], *, prompt: str | None = None,
                 cache_salt: str | None = None) -> TokensInput:
    inputs = TokensInput(type="token", prompt_token_ids=prompt_token_ids)
    if prompt is not None:
        inputs["prompt"] = prompt
    if cache_salt is not None:
        inputs["cache_salt"] = cache_salt
    return inputs


# --- vllm.logprobs, vllm.outputs ----------------------------------------------------------------------------------
@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


class RequestOutput:
    def __init__(self, request_id: str, prompt: str | None, prompt_token_ids: list[int] | None,
                 prompt_logprobs, outputs: list[CompletionOutput], finished: bool, metrics=None,
                 lora_request=None, encoder_prompt: str | None = None,
                 encoder_prompt_token_ids: list[int] | None = None, num_cached_tokens: int | None = None,
                 **kwargs):
        self.request_id = request_id
        self.prompt = prompt
        self.prompt_token_ids = prompt_token_ids
        self.prompt_logprobs = prompt_logprobs
        self.outputs = outputs
        self.finished = finished
        self.num_cached_tokens = num_cached_tokens


# --- vllm.engine.arg_utils ----------------------------------------------------------------------------------------
@dataclass
class AsyncEngineArgs:
    model: str = "Qwen/Qwen3-0.6B"
    tokenizer: str | None = None
    revision: str | None = None
    trust_remote_code: bool = False
    dtype: str = "auto"
    seed: int = 0
    max_model_len: int | None = None
    quantization: str | None = None
    enforce_eager: bool = False
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.92
    max_num_seqs: int | None = None
    max_logprobs: int = 20
    logprobs_mode: str = "raw_logprobs"
    disable_log_stats: bool = False
    enable_prefix_caching: bool | None = None


class UsageContext(Enum):
    UNKNOWN_CONTEXT = "UNKNOWN_CONTEXT"
    LLM_CLASS = "LLM_CLASS"
    API_SERVER = "API_SERVER"
    OPENAI_API_SERVER = "OPENAI_API_SERVER"
    OPENAI_BATCH_RUNNER = "OPENAI_BATCH_RUNNER"
    ENGINE_CONTEXT = "ENGINE_CONTEXT"


# --- vllm.v1.engine.async_llm -------------------------------------------------------------------------------------
def _logits(context: list[int], vocab: int = VOCAB) -> list[float]:
    """A deterministic "model": peaked at a token that depends on the context, falling off quadratically."""
    centre = (sum(context[-3:]) * 31 + len(context)) % vocab
    return [-((v - centre) ** 2) / 50.0 for v in range(vocab)]


def _log_softmax(values: list[float], keep: set[int] | None = None) -> list[float]:
    finite = [x for i, x in enumerate(values) if keep is None or i in keep]
    top = max(finite)
    total = math.log(sum(math.exp(x - top) for x in finite)) + top
    return [(x - total) if keep is None or i in keep else -math.inf for i, x in enumerate(values)]


class AsyncLLM:
    """0.33's AsyncLLM (``vllm.AsyncLLMEngine`` is an alias)."""

    engines: list["AsyncLLM"] = []  # every engine created since install(), for assertions

    def __init__(self, engine_args: AsyncEngineArgs):
        self.args = engine_args
        self.max_model_len = engine_args.max_model_len or 4096
        self.loop = None
        self.active = 0
        self.max_active = 0
        self.requests: list[tuple[Any, SamplingParams, str]] = []
        self.outputs_yielded = 0
        self.deprecations: list[str] = []
        self.shut_down = False

    @classmethod
    def from_engine_args(cls, engine_args: AsyncEngineArgs, start_engine_loop: bool = True,
                         usage_context: UsageContext = UsageContext.ENGINE_CONTEXT,
                         stat_loggers: list | None = None) -> "AsyncLLM":
        engine = cls(engine_args)
        AsyncLLM.engines.append(engine)
        return engine

    def _prompt_ids(self, prompt) -> list[int]:
        if isinstance(prompt, dict) and prompt.get("type") == "token":
            return list(prompt["prompt_token_ids"])
        self.deprecations.append("Passing raw prompts to InputProcessor is deprecated")
        if isinstance(prompt, str):
            return list(prompt.encode("utf-8"))
        return list(prompt["prompt_token_ids"])

    async def generate(self, prompt, sampling_params: SamplingParams, request_id: str, *,
                       prompt_text: str | None = None, lora_request=None,
                       tokenization_kwargs: dict[str, Any] | None = None,
                       trace_headers: Mapping[str, str] | None = None, priority: int = 0,
                       data_parallel_rank: int | None = None, session_id: str | None = None, kv_hints=None,
                       reasoning_ended: bool | None = None,
                       reasoning_parser_kwargs: dict[str, Any] | None = None) -> AsyncGenerator[RequestOutput, None]:
        loop = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = loop
        if loop is not self.loop:
            raise EngineGenerateError() from RuntimeError("the output handler runs on another event loop")
        ids = self._prompt_ids(prompt)
        self.requests.append((prompt, sampling_params, request_id))
        if len(ids) > self.max_model_len:
            raise VLLMValidationError(f"The decoder prompt (length {len(ids)}) is longer than the maximum model "
                                      f"length of {self.max_model_len}. Make sure that `max_model_len` is no "
                                      "smaller than the number of text tokens.")
        if (sampling_params.logprobs or 0) > self.args.max_logprobs:
            raise VLLMValidationError(f"Requested sample logprobs of {sampling_params.logprobs}, which is greater "
                                      f"than max allowed: {self.args.max_logprobs}", parameter="logprobs",
                                      value=sampling_params.logprobs)
        text = bytes(i % 256 for i in ids).decode("utf-8", errors="replace")
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if "crash" in text:
                raise EngineGenerateError() from RuntimeError("CUDA error: an illegal memory access")
            await asyncio.sleep(0.05)  # every request in flight at once overlaps here: continuous batching
            n = sampling_params.max_tokens or 16
            steps = min(n, 4)
            context, generated, positions = list(ids), [], []
            keep = set(sampling_params.allowed_token_ids) if sampling_params.allowed_token_ids else None
            for step in range(steps):
                logits = _logits(context)
                processed = _log_softmax(logits, keep)
                token = max(range(VOCAB), key=lambda v: processed[v])
                generated.append(token)
                context.append(token)
                # getattr: older releases' params and args (tests build them) lack these fields; V0 reported
                # log-probs after the logits processors
                wanted_ids = getattr(sampling_params, "logprob_token_ids", None)
                if sampling_params.logprobs is not None or wanted_ids:
                    mode = getattr(self.args, "logprobs_mode", "processed_logprobs")
                    reported = processed if mode == "processed_logprobs" else _log_softmax(logits)
                    if wanted_ids:
                        wanted = list(wanted_ids)
                    else:
                        wanted = sorted(range(VOCAB), key=lambda v: -reported[v])[:sampling_params.logprobs]
                    positions.append({v: Logprob(reported[v]) for v in [token, *wanted]})
                finished = step == steps - 1
                if finished or sampling_params.output_kind is RequestOutputKind.CUMULATIVE:
                    self.outputs_yielded += 1
                    yield RequestOutput(request_id, None, ids, None, [CompletionOutput(
                        0, f"echo:{text}"[: 5 + len(text) * (step + 1) // steps], list(generated), None,
                        [dict(p) for p in positions] if positions else None,
                        ("length" if n <= 4 else "stop") if finished else None)], finished)
        finally:
            self.active -= 1

    def shutdown(self):
        self.shut_down = True


class ByteTokenizer:
    """What the harness binds as the reranker's tokenizer in these tests: UTF-8 bytes as token ids."""

    def __call__(self, text: str, add_special_tokens: bool = True):
        return types.SimpleNamespace(input_ids=list(text.encode("utf-8")))

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(text.encode("utf-8"))


# --- the package --------------------------------------------------------------------------------------------------
_LAYOUT = {
    "vllm.exceptions": ["VLLMError", "VLLMClientError", "VLLMServerError", "VLLMValidationError"],
    "vllm.v1": [],
    "vllm.v1.engine": [],
    "vllm.v1.engine.exceptions": ["EngineGenerateError", "EngineDeadError"],
    "vllm.v1.engine.async_llm": ["AsyncLLM"],
    "vllm.sampling_params": ["SamplingParams", "RequestOutputKind"],
    "vllm.inputs": ["TokensPrompt", "TokensInput", "tokens_input"],
    "vllm.logprobs": ["Logprob"],
    "vllm.outputs": ["CompletionOutput", "RequestOutput"],
    "vllm.engine": [],
    "vllm.engine.arg_utils": ["AsyncEngineArgs"],
    "vllm.engine.async_llm_engine": [],
    "vllm.usage.usage_lib": ["UsageContext"],
}
_TOP_LEVEL = ["AsyncEngineArgs", "SamplingParams", "TokensPrompt", "RequestOutput", "CompletionOutput"]


def install(monkeypatch) -> types.ModuleType:
    """Put the fake package into sys.modules for one test; returns the top-level ``vllm`` module."""
    AsyncLLM.engines = []
    this = sys.modules[__name__]
    top = types.ModuleType("vllm")
    top.__path__ = []  # a package, so submodule imports resolve through sys.modules
    top.__version__ = __version__
    for name in _TOP_LEVEL:
        setattr(top, name, getattr(this, name))
    top.AsyncLLMEngine = AsyncLLM
    top.engines = AsyncLLM.engines
    monkeypatch.setitem(sys.modules, "vllm", top)
    for module_name, names in _LAYOUT.items():
        module = types.ModuleType(module_name)
        module.__path__ = []
        for name in names:
            setattr(module, name, getattr(this, name))
        if module_name == "vllm.engine.async_llm_engine":
            module.AsyncLLMEngine = AsyncLLM
        monkeypatch.setitem(sys.modules, module_name, module)
    return top
