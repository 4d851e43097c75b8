"""What each kind of OpenAI-compatible server honours, and how a request is written for it.

OpenAI's completions schema covers little of what a faithful reranker needs (top-k off, min-p 0, repetition penalty 1,
min_tokens, token masks, top-20 log-probs by token id), and servers differ in which extensions they accept, what they
call them and what they do when they are missing: some reject unknown fields (``transformers serve``: HTTP 422), some
fail on values they dislike (llama.cpp: HTTP 500 for ``top_k: -1``), most silently ignore the rest — and a server
fills every field it is not sent from its own generation defaults (``vllm serve`` applies the checkpoint's
``generation_config.json``, e.g. ``repetition_penalty 1.05`` for Qwen2.5; llama-cpp-python defaults to
``temperature 0.8, top_k 40, min_p 0.05, repeat_penalty 1.1``). A ``ServerProfile`` states, per server, which
capabilities it has and writes every field it honours explicitly, so no server default can leak in.

Profiles (``--server-profile``; ``auto`` detects from ``GET /v1/models``'s ``owned_by``):

* ``vllm`` — every vLLM sampling field, ``top_k: 0`` for "off" (vLLM's own convention; −1 is only tolerated),
  log-probs keyed ``token_id:N`` (``return_tokens_as_token_ids``), ``allowed_token_ids``.
* ``sglang`` — the same fields as vLLM's OpenAI server [unverified beyond the field names SGLang documents].
* ``llama.cpp`` — llama-cpp-python's server: ``top_k: 0``, ``min_p``, ``repeat_penalty`` (its name), ``min_tokens``;
  log-probs come keyed by token *text* and are mapped to ids with the tokenizer; a token mask becomes
  ``logit_bias`` +100 on the allowed ids (the ratio of their probabilities is unchanged). llama.cpp reports log-probs
  of the unmasked distribution, so a one-token restricted choice (Rank1's fix pass) is asked once per allowed token,
  forcing it, to read each one's own log-prob.
* ``transformers`` — ``transformers serve``: standard fields plus a ``generation_config`` JSON (do_sample, top_k,
  repetition_penalty, min_new_tokens); it returns no log-probs and keeps stop strings in the text (cut here).
* ``strict-openai`` — standard OpenAI fields only (hosted APIs). A request that would decode differently without an
  extension is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError

PROFILES = ("vllm", "sglang", "llama.cpp", "transformers", "strict-openai")
# owned_by in GET /v1/models → profile
OWNERS = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llama.cpp", "llama.cpp": "llama.cpp", "me": "llama.cpp",
          "local": "transformers", "transformers": "transformers", "openai": "strict-openai",
          "system": "strict-openai", "openai-internal": "strict-openai"}
# every capability a reranker may ask for (harness.llm.Backend.capabilities)
# label_logprobs: one forced next-token choice among given label tokens with their log-probs (Qwen3-Reranker's
# yes/no, Rank1's fix pass); score: a sequence-classification head's score of a (query, document) pair.
CAPABILITIES = ("generate", "sampling", "stop", "min_tokens", "allowed_token_ids", "logprobs", "label_logprobs",
                "score")


@dataclass(frozen=True)
class ServerProfile:
    name: str
    capabilities: frozenset[str]
    logprobs_keys: str = "token_id"  # token_id | text | none

    def body(self, model: str, request) -> dict[str, Any]:
        p = request.params
        body: dict[str, Any] = {"model": model, "prompt": request.prompt, "max_tokens": p.max_tokens,
                                "temperature": p.temperature, "top_p": p.top_p, "n": 1, "stream": False}
        if p.stop:
            body["stop"] = list(p.stop)
        if p.seed is not None:
            body["seed"] = p.seed
        if self.name in ("vllm", "sglang"):
            body.update(echo=False, top_k=p.top_k if p.top_k > 0 else 0, min_p=p.min_p, min_tokens=p.min_tokens,
                        repetition_penalty=p.repetition_penalty, skip_special_tokens=p.skip_special_tokens,
                        include_stop_str_in_output=p.include_stop_str_in_output)
            if p.allowed_token_ids is not None:
                body["allowed_token_ids"] = list(p.allowed_token_ids)
            if p.logprobs is not None:
                body["logprobs"] = p.logprobs
                body["return_tokens_as_token_ids"] = True
        elif self.name == "llama.cpp":
            body.update(echo=False, top_k=p.top_k if p.top_k > 0 else 0, min_p=p.min_p,
                        repeat_penalty=p.repetition_penalty, min_tokens=p.min_tokens)
            if p.allowed_token_ids is not None:
                body["logit_bias"] = {str(t): 100.0 for t in p.allowed_token_ids}
            if p.logprobs is not None:
                body["logprobs"] = p.logprobs
        elif self.name == "transformers":
            config = {"do_sample": p.temperature > 0, "repetition_penalty": p.repetition_penalty,
                      "max_new_tokens": p.max_tokens}
            if p.temperature > 0:
                config.update(temperature=p.temperature, top_p=p.top_p, top_k=p.top_k if p.top_k > 0 else 0)
                if p.min_p > 0:
                    config["min_p"] = p.min_p
            if p.min_tokens:
                config["min_new_tokens"] = p.min_tokens
            body["generation_config"] = json.dumps(config)
            del body["top_p"], body["n"]  # in generation_config / unsupported (it would only log a warning)
            self._refuse(request, {"allowed_token_ids": p.allowed_token_ids is not None,
                                   "logprobs": p.logprobs is not None})
        else:  # strict-openai
            self._refuse(request, {"top_k": p.top_k > 0, "min_p": p.min_p > 0, "min_tokens": p.min_tokens > 0,
                                   "repetition_penalty": p.repetition_penalty != 1.0,
                                   "allowed_token_ids": p.allowed_token_ids is not None,
                                   "token-id log-probs": p.logprobs is not None,
                                   "skip_special_tokens": not p.skip_special_tokens,
                                   "include_stop_str_in_output": p.include_stop_str_in_output})
        return body

    def _refuse(self, request, needed: dict[str, bool]) -> None:
        missing = [name for name, needs in needed.items() if needs]
        if missing:
            raise HarnessError(
                f"{request.label or 'This request'} needs {', '.join(missing)}, which a {self.name} server does not "
                "honour; the decoding would silently differ. Serve the model with `vllm serve` (or SGLang / "
                "llama.cpp) and pick its --server-profile, or use --backend hf.")


_ALL = frozenset(CAPABILITIES)
_PROFILES = {
    # `vllm serve` of a cross-encoder answers POST /score; of a generative model, completions
    "vllm": ServerProfile("vllm", _ALL),
    "sglang": ServerProfile("sglang", _ALL - {"score"}),
    "llama.cpp": ServerProfile("llama.cpp", _ALL - {"score"}, logprobs_keys="text"),
    "transformers": ServerProfile("transformers", frozenset({"generate", "sampling", "stop", "min_tokens"}),
                                  logprobs_keys="none"),
    "strict-openai": ServerProfile("strict-openai", frozenset({"generate", "stop"}), logprobs_keys="none"),
}


def profile(name: str) -> ServerProfile:
    if name not in _PROFILES:
        import difflib

        close = difflib.get_close_matches(name, PROFILES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise HarnessError(f"Unknown server profile {name!r}.{hint} Profiles: {', '.join(PROFILES)}.")
    return _PROFILES[name]


def detect(models: dict[str, Any] | None) -> str | None:
    """The profile named by a ``GET /v1/models`` answer (``owned_by``), or None when it does not say."""
    try:
        entries = models["data"] if isinstance(models, dict) else None
        owner = str(entries[0].get("owned_by", "")).strip().lower() if entries else ""
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return OWNERS.get(owner)


def cut_at_stop(text: str, stops, include: bool) -> tuple[str, bool]:
    """vLLM's stop semantics on a text a server returned uncut: (text up to the first stop string, found)."""
    hits = [(text.find(s), s) for s in stops or () if s and s in text]
    if not hits:
        return text, False
    position, stop = min(hits)
    return (text[: position + len(stop)] if include else text[:position]), True
