"""Any OpenAI-compatible server (``vllm serve``, SGLang, hosted APIs) via ``--base-url``.

Requests go to ``<base-url>/completions`` with the exact prompt string (rerankers apply the chat template
themselves, so the chat endpoint is never used). Requests are asynchronous and limited to ``--concurrency`` in
flight, which lets every query advance to its next window as soon as its previous one returns while the server's
continuous batching stays full.

Sampling parameters beyond the OpenAI schema (``top_k``, ``min_p``, ``min_tokens``, ``repetition_penalty``,
``allowed_token_ids``, ``skip_special_tokens``, ``include_stop_str_in_output``) are sent as vLLM/SGLang extra
fields, always explicitly: ``vllm serve`` otherwise fills them from the checkpoint's ``generation_config.json``
(e.g. a repetition penalty), which the reference runs did not use. Log-probs are requested with
``return_tokens_as_token_ids`` so they come back keyed ``token_id:N`` and convert to ``{token_id: logprob}``.

Transient failures (connection errors, timeouts, 429, 5xx) are retried with exponential backoff (honouring
``Retry-After``); anything else, or exhausted retries, raises a HarnessError naming the URL.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Any

from harness.errors import HarnessError
from harness.llm import Backend, Generation, GenerationRequest, SamplingParams
from harness.options import Option, OptionSet

_TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_TOKEN_ID_PREFIX = "token_id:"

OPTIONS = OptionSet("backend openai", [
    Option("served_model", str, None, "model name the server serves (default: --model)"),
    Option("request_timeout", float, 1800.0, "seconds to wait for one response", minimum=1.0),
    Option("max_retries", int, 6, "retries of a transient failure (connection error, 429, 5xx)", minimum=0),
    Option("server_extensions", bool, True, "send vLLM/SGLang sampling fields (off for strict hosted APIs)"),
    Option("api_key", str, None, "API key (default: $OPENAI_API_KEY); never written to records"),
    Option("api", str, "completions", "endpoint: completions (the exact prompt string; rerankers) or chat "
           "(the request's chat messages; teachers of `harness train synthesize`)", choices=("completions", "chat")),
])


def create(model: str, revision: str | None, execution, engine: dict) -> "OpenAIBackend":
    if not execution.base_url:
        raise HarnessError("--backend openai needs the server address: --base-url http://HOST:PORT/v1 "
                           "(e.g. started with `vllm serve MODEL`).")
    return OpenAIBackend(
        model=model,
        base_url=execution.base_url,
        concurrency=execution.concurrency,
        api_key=engine.get("api_key") or os.environ.get("OPENAI_API_KEY"),
        served_model=engine.get("served_model"),
        max_retries=int(engine.get("max_retries", 6)),
        request_timeout=float(engine.get("request_timeout", 1800.0)),
        server_extensions=bool(engine.get("server_extensions", True)),
        api=str(engine.get("api", "completions")),
    )


_EXTENSION_DEFAULTS = {"top_k": -1, "min_p": 0.0, "min_tokens": 0, "repetition_penalty": 1.0,
                       "skip_special_tokens": True, "include_stop_str_in_output": False}


def request_body(model: str, request: GenerationRequest, server_extensions: bool = True) -> dict[str, Any]:
    """The JSON body for one completion request.

    With ``server_extensions`` (the default, for ``vllm serve`` / SGLang) every vLLM sampling field is sent
    explicitly, so the server cannot fill it from the checkpoint's generation_config. Without them (strict hosted
    OpenAI-style APIs, which reject unknown fields) only standard fields are sent; a request that needs an extension
    with a non-neutral value, or log-probs by token id (Rank1), is refused with a clear error instead of silently
    changing the decoding."""
    p: SamplingParams = request.params
    body: dict[str, Any] = {
        "model": model,
        "prompt": request.prompt,
        "max_tokens": p.max_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
        "n": 1,
        "stream": False,
        "echo": False,
        # vLLM / SGLang extensions
        "top_k": p.top_k,
        "min_p": p.min_p,
        "min_tokens": p.min_tokens,
        "repetition_penalty": p.repetition_penalty,
        "skip_special_tokens": p.skip_special_tokens,
        "include_stop_str_in_output": p.include_stop_str_in_output,
    }
    if p.stop:
        body["stop"] = list(p.stop)
    if p.seed is not None:
        body["seed"] = p.seed
    if p.allowed_token_ids is not None:
        body["allowed_token_ids"] = list(p.allowed_token_ids)
    if p.logprobs is not None:
        body["logprobs"] = p.logprobs
        body["return_tokens_as_token_ids"] = True
    if not server_extensions:
        needed = [k for k, neutral in _EXTENSION_DEFAULTS.items() if body[k] != neutral]
        needed += [k for k in ("allowed_token_ids", "return_tokens_as_token_ids") if k in body]
        if needed:
            raise HarnessError(
                f"{request.label or 'This request'} needs server extensions ({', '.join(needed)}) that strict "
                "OpenAI-style APIs do not accept; serve the model with `vllm serve` or SGLang and drop "
                "--no-server-extensions."
            )
        for key in _EXTENSION_DEFAULTS:
            del body[key]
    return body


def chat_body(model: str, request: GenerationRequest) -> dict[str, Any]:
    """The JSON body of a ``/chat/completions`` request; the request's prompt holds the messages as JSON."""
    import json

    try:
        messages = json.loads(request.prompt)
    except ValueError as exc:
        raise HarnessError(f"{request.label or 'A chat request'}: the prompt must be JSON chat messages.") from exc
    p = request.params
    body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": p.max_tokens,
                            "temperature": p.temperature, "top_p": p.top_p, "n": 1, "stream": False}
    if p.seed is not None:
        body["seed"] = p.seed
    return body


def _token_count(usage: dict[str, Any], key: str, url: str) -> int:
    value = usage.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
        raise HarnessError(f"The server at {url} reported usage.{key} = {value!r}, not a token count.")
    return int(value)


def convert_logprobs(choice_logprobs: dict[str, Any] | None, url: str) -> list[dict[int, float]] | None:
    """OpenAI completions ``logprobs.top_logprobs`` (keys ``token_id:N``) → list of ``{token_id: logprob}``."""
    if not choice_logprobs:
        return None
    if not isinstance(choice_logprobs, dict) or not isinstance(choice_logprobs.get("top_logprobs", []), (list, type(None))):
        raise HarnessError(f"The server at {url} returned malformed log-probs: {str(choice_logprobs)[:200]}")
    top = choice_logprobs.get("top_logprobs")
    if top is None:
        return None
    positions: list[dict[int, float]] = []
    for entry in top:
        if entry is not None and not isinstance(entry, dict):
            raise HarnessError(f"The server at {url} returned malformed top log-probs: {str(entry)[:200]}")
        converted: dict[int, float] = {}
        for token, logprob in (entry or {}).items():
            if logprob is not None and (isinstance(logprob, bool) or not isinstance(logprob, (int, float))):
                raise HarnessError(f"The server at {url} returned a log-prob that is not a number: {logprob!r}")
            if not token.startswith(_TOKEN_ID_PREFIX):
                raise HarnessError(
                    f"The server at {url} returned log-probs keyed by token text ({token!r}) instead of "
                    "'token_id:N'. It must support the vLLM option return_tokens_as_token_ids "
                    "(vllm serve ≥ 0.6); Rank1 scoring needs token ids."
                )
            converted[int(token[len(_TOKEN_ID_PREFIX):])] = float(logprob) if logprob is not None else float("-inf")
        positions.append(converted)
    return positions


class _LoopState:
    """The HTTP client and semaphore belong to one event loop; a reranker may run several loops in turn."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client, concurrency: int):
        self.loop = loop
        self.client = client
        self.semaphore = asyncio.Semaphore(concurrency)


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, model: str, base_url: str, concurrency: int = 64, api_key: str | None = None,
                 served_model: str | None = None, max_retries: int = 6, request_timeout: float = 1800.0,
                 retry_base_seconds: float = 1.0, retry_max_seconds: float = 30.0, server_extensions: bool = True,
                 api: str = "completions"):
        if concurrency < 1:
            raise HarnessError(f"--concurrency must be at least 1 (got {concurrency}).")
        self.model_id = model
        self.revision = None
        self.base_url = base_url.rstrip("/")
        self.api = api
        self.url = f"{self.base_url}/chat/completions" if api == "chat" else f"{self.base_url}/completions"
        self.served_model = served_model or model
        self.concurrency = concurrency
        self.api_key = api_key
        self.max_retries = max_retries
        self.request_timeout = request_timeout
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds
        self.server_extensions = server_extensions
        self.retries = 0  # transient failures retried so far
        self.timeouts = 0  # requests that timed out
        self._state: _LoopState | None = None

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            import httpx

            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
            timeout = httpx.Timeout(self.request_timeout, connect=30.0)
            client = httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout)
            self._state = _LoopState(loop, client, self.concurrency)  # the old loop's client died with its loop
        return self._state

    async def agenerate(self, request: GenerationRequest) -> Generation:
        state = self._loop_state()
        body = chat_body(self.served_model, request) if self.api == "chat" else \
            request_body(self.served_model, request, self.server_extensions)
        async with state.semaphore:
            started = time.perf_counter()
            data = await self._post(state.client, body, request.label)
            seconds = time.perf_counter() - started
        if self.api == "chat":
            return self._chat_generation(data, seconds, request)
        return self._to_generation(data, seconds, request)

    def _chat_generation(self, data: dict[str, Any], seconds: float, request: GenerationRequest) -> Generation:
        try:
            choice = data["choices"][0]
            message = choice["message"]
            content = message.get("content") or ""
            if not isinstance(content, str):
                raise TypeError("content is not a string")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise HarnessError(f"The server at {self.url} returned no message for {request.label or 'a call'}: "
                               f"{str(data)[:300]}") from exc
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        return Generation(text=content, input_tokens=_token_count(usage, "prompt_tokens", self.url),
                          output_tokens=_token_count(usage, "completion_tokens", self.url), seconds=seconds,
                          finish_reason=choice.get("finish_reason") or "stop",
                          extra={"reasoning": reasoning if isinstance(reasoning, str) else "",
                                 "usage_reported": bool(usage)})

    async def _post(self, client, body: dict[str, Any], label: str) -> dict[str, Any]:
        import httpx

        what = f" ({label})" if label else ""
        for attempt in range(self.max_retries + 1):
            retry_after: float | None = None
            try:
                response = await client.post(self.url, json=body)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                if isinstance(exc, httpx.TimeoutException):
                    self.timeouts += 1
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise HarnessError(f"The server at {self.url} returned a body that is not JSON{what}: "
                                           f"{response.text[:200]!r}") from exc
                problem = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code not in _TRANSIENT_STATUS:
                    hint = ""
                    if response.status_code == 404:
                        hint = " Check --base-url (it usually ends in /v1) and --model (the name the server serves)."
                    elif response.status_code in (401, 403):
                        hint = " Set OPENAI_API_KEY to a key the server accepts."
                    elif response.status_code == 400:
                        hint = " The prompt may exceed the server's context length, or the server rejects a field."
                    raise HarnessError(f"The server at {self.url} rejected a request{what}: {problem}.{hint}")
                retry_after = _retry_after_seconds(response.headers.get("retry-after"))
            if attempt == self.max_retries:
                raise HarnessError(f"The server at {self.url} kept failing{what}: {problem} "
                                   f"(gave up after {self.max_retries + 1} attempts). Is the server running and "
                                   "reachable? Lower --concurrency if it is overloaded.")
            self.retries += 1
            delay = min(self.retry_max_seconds, self.retry_base_seconds * (2 ** attempt))
            delay = retry_after if retry_after is not None else delay * (0.5 + random.random() / 2)
            await asyncio.sleep(min(delay, self.retry_max_seconds))
        raise AssertionError("unreachable")

    def _to_generation(self, data: dict[str, Any], seconds: float, request: GenerationRequest) -> Generation:
        what = request.label or "a call"
        try:
            choice = data["choices"][0]
            text = choice["text"]
            if not isinstance(text, str):
                raise TypeError(f"text is {type(text).__name__}, not a string")
        except (KeyError, IndexError, TypeError) as exc:
            raise HarnessError(f"The server at {self.url} returned no completion text for {what} ({exc}): "
                               f"{str(data)[:300]}") from exc
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        logprobs = convert_logprobs(choice.get("logprobs"), self.url) if request.params.logprobs is not None else None
        output_tokens = _token_count(usage, "completion_tokens", self.url)
        if not usage.get("completion_tokens") and logprobs is not None:
            output_tokens = len(logprobs)
        reason = choice.get("finish_reason")
        return Generation(
            text=text,
            input_tokens=_token_count(usage, "prompt_tokens", self.url),
            output_tokens=output_tokens,
            seconds=seconds,
            finish_reason=reason if isinstance(reason, str) and reason else "stop",
            logprobs=logprobs,
            extra={"usage_reported": bool(usage)},
        )

    def describe(self) -> dict[str, Any]:
        return {"served_model": self.served_model, "server_extensions": self.server_extensions,
                "request_timeout": self.request_timeout, "max_retries": self.max_retries}

    def hardware(self) -> dict[str, Any]:
        return {"backend": self.name, "accelerator": "remote", "count": 0, "tensor_parallel": 1, "data_parallel": 1}

    def cache_identity(self) -> str:
        # A remote model is whatever the server serves under that name: answers are keyed by the server, never by
        # a local tokenizer's fingerprint (a local cache must not answer for a server it never contacted).
        return f"openai:{self.base_url}|{self.served_model}|{self.api}"

    def close(self) -> None:
        state, self._state = self._state, None
        if state is None or state.loop.is_closed():
            return  # connections of a finished loop are already gone
        if not state.loop.is_running():
            try:
                state.loop.run_until_complete(state.client.aclose())
            except Exception:  # closing is best effort
                pass


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
