"""Any OpenAI-compatible server (``vllm serve``, SGLang, llama.cpp, ``transformers serve``, hosted APIs) via
``--base-url``.

Requests go to ``<base-url>/completions`` with the exact prompt string (rerankers apply the chat template
themselves, so the chat endpoint is only used by training-data teachers, ``api=chat``). They are asynchronous and
limited to ``--concurrency`` in flight, so every query advances to its next window as soon as its previous one returns
while the server's continuous batching stays full.

What is sent depends on the server (``harness.backends.servers``): the profile is detected from ``GET /v1/models``
(``owned_by``) or set with ``--server-profile``; each profile writes every field its server honours explicitly, so the
server's generation defaults cannot leak in, and declares its capabilities, so a reranker that needs one the server
lacks (Rank1's token-id log-probs, RankZephyr's ``min_tokens``) stops at start-up with a message naming it. Log-probs
keyed by token text (llama.cpp) are mapped to token ids with the reranker's tokenizer. A server that does not say who
it is is treated as vLLM-compatible (the record says the profile was assumed).

Model-call cache: a remote model is whatever the server serves, so answers are keyed by the server — base URL,
served model and what ``/v1/models`` reports — never by a local tokenizer's fingerprint.

Transient failures (connection errors, timeouts, 408/409/425/429, 502–504, and 500 unless its body is a validation
error) are retried with exponential backoff (honouring ``Retry-After``), up to ``--max-retries``, each counted;
anything else, or exhausted retries, raises a HarnessError naming the URL.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import time
from typing import Any

from harness.backends.servers import PROFILES, ServerProfile, cut_at_stop, detect, profile
from harness.errors import HarnessError
from harness.llm import Backend, Generation, GenerationRequest
from harness.options import Option, OptionSet

_TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_VALIDATION_WORDS = ("validation", "unexpected", "invalid", "must be", "not supported", "unsupported", "extra")
_TOKEN_ID_PREFIX = "token_id:"

OPTIONS = OptionSet("backend openai", [
    Option("served_model", str, None, "model name the server serves (default: --model)"),
    Option("server_profile", str, "auto", "which server it is: what to send and what it can do (auto: from "
           "GET /v1/models)", choices=("auto",) + PROFILES),
    Option("request_timeout", float, 1800.0, "seconds to wait for one response", minimum=1.0),
    Option("max_retries", int, 6, "retries of a transient failure (connection error, 429, 5xx)", minimum=0),
    Option("server_extensions", bool, True, "off: send only standard OpenAI fields (= --server-profile "
           "strict-openai)"),
    Option("api_key", str, None, "API key (default: $OPENAI_API_KEY); never written to records"),
    Option("api", str, "completions", "endpoint: completions (the exact prompt string; rerankers) or chat "
           "(the request's chat messages; teachers of `harness train synthesize`)", choices=("completions", "chat")),
])


def create(model: str, revision: str | None, execution, engine: dict, head: str = "causal-lm") -> "OpenAIBackend":
    if not execution.base_url:
        raise HarnessError("--backend openai needs the server address: --base-url http://HOST:PORT/v1 "
                           "(e.g. started with `vllm serve MODEL`).")
    chosen = engine.get("server_profile") or "auto"
    if engine.get("server_extensions") is False:
        if chosen not in ("auto", "strict-openai"):
            raise HarnessError(f"--no-server-extensions contradicts --server-profile {chosen}; drop one.")
        chosen = "strict-openai"
    backend = OpenAIBackend(
        model=model,
        base_url=execution.base_url,
        concurrency=execution.concurrency,
        api_key=engine.get("api_key") or os.environ.get("OPENAI_API_KEY"),
        served_model=engine.get("served_model"),
        max_retries=int(engine.get("max_retries", 6)),
        request_timeout=float(engine.get("request_timeout", 1800.0)),
        server_profile=chosen,
        api=str(engine.get("api", "completions")),
    )
    backend.probe()
    return backend


def request_body(model: str, request: GenerationRequest, server_extensions: bool = True) -> dict[str, Any]:
    """The completions body for a vLLM-compatible server (or, without extensions, a strict OpenAI-style API)."""
    return profile("vllm" if server_extensions else "strict-openai").body(model, request)


def chat_body(model: str, request: GenerationRequest) -> dict[str, Any]:
    """The JSON body of a ``/chat/completions`` request; the request's prompt holds the messages as JSON."""
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


def convert_logprobs(choice_logprobs: dict[str, Any] | None, url: str, token_ids=None) -> list[dict[int, float]] | None:
    """``logprobs.top_logprobs`` → list of ``{token_id: logprob}``. Keys ``token_id:N`` (vLLM) are read directly;
    keys that are token text (llama.cpp) need ``token_ids(text) -> id | None`` (the tokenizer)."""
    if not choice_logprobs:
        return None
    if not isinstance(choice_logprobs, dict) or not isinstance(choice_logprobs.get("top_logprobs", []),
                                                               (list, type(None))):
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
            value = float(logprob) if logprob is not None else float("-inf")
            if token.startswith(_TOKEN_ID_PREFIX):
                converted[int(token[len(_TOKEN_ID_PREFIX):])] = value
                continue
            if token_ids is None:
                raise HarnessError(
                    f"The server at {url} returned log-probs keyed by token text ({token!r}) instead of "
                    "'token_id:N'. Choose its profile (--server-profile llama.cpp maps text to ids with the "
                    "tokenizer) or serve the model with `vllm serve` (return_tokens_as_token_ids).")
            token_id = token_ids(token)
            if token_id is not None:
                converted.setdefault(token_id, value)
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
                 api: str = "completions", server_profile: str = "auto"):
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
        if not server_extensions:
            server_profile = "strict-openai"
        self.profile_name = server_profile if server_profile != "auto" else "vllm"
        self.profile_source = "option" if server_profile != "auto" else "assumed (not probed)"
        self.profile: ServerProfile = profile(self.profile_name)
        self.served_by: dict[str, Any] = {}
        self.token_ids = None  # text → token id, for servers that key log-probs by text (set by the reranker)
        self._decode = None
        self.retries = 0  # transient failures retried so far
        self.timeouts = 0  # requests that timed out
        self._state: _LoopState | None = None
        self._auto = server_profile == "auto"

    @property
    def server_extensions(self) -> bool:
        return self.profile_name != "strict-openai"

    def probe(self) -> None:
        """Ask ``GET /v1/models`` who the server is (profile, model id) — once, before the first request."""
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = httpx.get(f"{self.base_url}/models", headers=headers, timeout=min(30.0, self.request_timeout))
            models = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            models = None
        if isinstance(models, dict) and isinstance(models.get("data"), list) and models["data"]:
            entry = next((m for m in models["data"] if isinstance(m, dict) and m.get("id") == self.served_model),
                         models["data"][0])
            if isinstance(entry, dict):
                self.served_by = {k: entry[k] for k in ("id", "root", "owned_by") if isinstance(entry.get(k), str)}
        if self._auto:
            detected = detect(models)
            if detected is not None:
                self.profile_name, self.profile_source = detected, f"detected (owned_by {self.served_by.get('owned_by')!r})"
            else:
                self.profile_name = "vllm"
                self.profile_source = "assumed vLLM-compatible (GET /v1/models did not name the server)"
            self.profile = profile(self.profile_name)
        if self.profile_name == "strict-openai":
            import warnings

            warnings.warn(
                f"{self.base_url}: strict OpenAI mode sends only standard fields, so the server's own generation "
                "defaults apply to the rest (e.g. `vllm serve` uses the checkpoint's generation_config, "
                "repetition_penalty 1.05 for Qwen2.5); prefer --server-profile vllm for such servers.", stacklevel=2)

    def capabilities(self) -> frozenset[str]:
        return self.profile.capabilities

    def bind_tokenizer(self, tokenizer) -> None:
        def token_id(text: str) -> int | None:
            ids = tokenizer.encode(text, add_special_tokens=False)
            return ids[0] if len(ids) == 1 else None

        self.token_ids = token_id
        self._decode = lambda token: tokenizer.decode([token])

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
        if request.kind == "score":
            return await self._score(request)
        p = request.params
        if (self.profile_name == "llama.cpp" and p.allowed_token_ids and p.max_tokens == 1 and p.logprobs is not None
                and self.api == "completions"):
            return await self._forced_choice(request)
        state = self._loop_state()
        body = chat_body(self.served_model, request) if self.api == "chat" else \
            self.profile.body(self.served_model, request)
        async with state.semaphore:
            started = time.perf_counter()
            data = await self._post(state.client, body, request.label)
            seconds = time.perf_counter() - started
        if self.api == "chat":
            return self._chat_generation(data, seconds, request)
        return self._to_generation(data, seconds, request)

    async def _score(self, request: GenerationRequest) -> Generation:
        """A cross-encoder pair through vLLM's score API (``vllm serve`` of a sequence-classification model):
        ``POST <base-url>/score`` with ``text_1`` = query and ``text_2`` = document."""
        from harness.llm import score_pair

        if "score" not in self.capabilities():
            raise HarnessError(f"The {self.profile_name} server at {self.base_url} has no score API; serve the "
                               "cross-encoder with `vllm serve MODEL` or use --backend hf.")
        query, document = score_pair(request)
        state = self._loop_state()
        url = f"{self.base_url}/score"
        async with state.semaphore:
            started = time.perf_counter()
            data = await self._post(state.client, {"model": self.served_model, "text_1": query, "text_2": document},
                                    request.label, url=url)
            seconds = time.perf_counter() - started
        try:
            score = float(data["data"][0]["score"])
            if not math.isfinite(score):
                raise ValueError(f"score {score}")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise HarnessError(f"The server at {url} returned no score for {request.label or 'a pair'} ({exc}): "
                               f"{str(data)[:300]}") from exc
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return Generation(text=repr(score), input_tokens=_token_count(usage, "prompt_tokens", url), output_tokens=0,
                          seconds=seconds, extra={"score": score, "usage_reported": bool(usage)})

    async def _forced_choice(self, request: GenerationRequest) -> Generation:
        """One token restricted to ``allowed_token_ids`` on llama.cpp, which reports log-probs of the unmasked
        distribution, so the non-chosen allowed tokens are often missing from its top list: one request per allowed
        token, each forcing it with logit_bias, reads that token's own log-prob (always reported for the chosen token).
        The log-probs of the allowed tokens relative to each other — all a restricted choice needs — are exact."""
        import dataclasses

        allowed = list(request.params.allowed_token_ids)
        started = time.perf_counter()
        logprobs: dict[int, float] = {}
        input_tokens = 0
        for token in allowed:
            single = dataclasses.replace(request.params, allowed_token_ids=(token,))
            state = self._loop_state()
            body = self.profile.body(self.served_model, GenerationRequest(request.prompt, single, request.label))
            async with state.semaphore:
                data = await self._post(state.client, body, request.label)
            generation = self._to_generation(data, 0.0, GenerationRequest(request.prompt, single, request.label))
            input_tokens = generation.input_tokens
            position = generation.logprobs[0] if generation.logprobs else {}
            if token in position:
                logprobs[token] = position[token]
        best = max(logprobs, key=logprobs.get) if logprobs else allowed[0]
        text = self.token_text(best) if logprobs else ""
        return Generation(text=text, input_tokens=input_tokens, output_tokens=1,
                          seconds=time.perf_counter() - started, logprobs=[logprobs] if logprobs else None,
                          extra={"forced_choice_requests": len(allowed)})

    def token_text(self, token_id: int) -> str:
        return self._decode(token_id) if self._decode else ""

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

    async def _post(self, client, body: dict[str, Any], label: str, url: str | None = None) -> dict[str, Any]:
        import httpx

        url = url or self.url
        what = f" ({label})" if label else ""
        for attempt in range(self.max_retries + 1):
            retry_after: float | None = None
            try:
                response = await client.post(url, json=body)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                if isinstance(exc, httpx.TimeoutException):
                    self.timeouts += 1
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise HarnessError(f"The server at {url} returned a body that is not JSON{what}: "
                                           f"{response.text[:200]!r}") from exc
                problem = f"HTTP {response.status_code}: {response.text[:300]}"
                validation = response.status_code == 500 and any(w in response.text.lower()
                                                                  for w in _VALIDATION_WORDS)
                if response.status_code not in _TRANSIENT_STATUS or validation:
                    raise HarnessError(f"The server at {url} rejected a request{what}: {problem}."
                                       f"{self._hint(response.status_code, response.text)}")
                retry_after = _retry_after_seconds(response.headers.get("retry-after"))
            if attempt == self.max_retries:
                raise HarnessError(f"The server at {url} kept failing{what}: {problem} "
                                   f"(gave up after {self.max_retries + 1} attempts). Is the server running and "
                                   "reachable? Lower --concurrency if it is overloaded; --max-retries and "
                                   "--request-timeout set the patience.")
            self.retries += 1
            delay = min(self.retry_max_seconds, self.retry_base_seconds * (2 ** attempt))
            delay = retry_after if retry_after is not None else delay * (0.5 + random.random() / 2)
            await asyncio.sleep(min(delay, self.retry_max_seconds))
        raise AssertionError("unreachable")

    def _hint(self, status: int, text: str) -> str:
        lowered = text.lower()
        if status == 404:
            return " Check --base-url (it usually ends in /v1) and --served-model (the name the server serves)."
        if status in (401, 403):
            return " Set OPENAI_API_KEY to a key the server accepts."
        if status in (400, 422, 500) and any(w in lowered for w in ("unexpected", "extra", "unrecognized",
                                                                    "not permitted", "unsupported")):
            return (f" The server rejects a field the {self.profile_name} profile sends: choose the profile of "
                    f"this server with --server-profile ({', '.join(PROFILES)}).")
        if status in (400, 422, 500):
            return (" The server rejected a value (or the prompt exceeds its context length): check the server's "
                    f"log; the request was written for the {self.profile_name} profile.")
        return ""

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
        params = request.params
        logprobs = None
        if params.logprobs is not None:
            keyed_by_text = self.profile.logprobs_keys == "text"
            logprobs = convert_logprobs(choice.get("logprobs"), self.url,
                                        self.token_ids if keyed_by_text else None)
        text, cut = cut_at_stop(text, params.stop, params.include_stop_str_in_output)
        output_tokens = _token_count(usage, "completion_tokens", self.url)
        if not usage.get("completion_tokens") and logprobs is not None:
            output_tokens = len(logprobs)
        reason = choice.get("finish_reason")
        return Generation(
            text=text,
            input_tokens=_token_count(usage, "prompt_tokens", self.url),
            output_tokens=output_tokens,
            seconds=seconds,
            finish_reason="stop" if cut else (reason if isinstance(reason, str) and reason else "stop"),
            logprobs=logprobs,
            extra={"usage_reported": bool(usage)},
        )

    def describe(self) -> dict[str, Any]:
        return {"served_model": self.served_model, "server_profile": self.profile_name,
                "server_profile_source": self.profile_source, "served_by": self.served_by,
                "request_timeout": self.request_timeout, "max_retries": self.max_retries}

    def hardware(self) -> dict[str, Any]:
        return {"backend": self.name, "accelerator": "remote", "count": 0, "tensor_parallel": 1, "data_parallel": 1}

    def cache_identity(self) -> str:
        # A remote model is whatever the server serves under that name: answers are keyed by the server, never by
        # a local tokenizer's fingerprint (a local cache must not answer for a server it never contacted).
        served = json.dumps(self.served_by, sort_keys=True)
        return f"openai:{self.base_url}|{self.served_model}|{self.api}|{self.profile_name}|{served}"

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
