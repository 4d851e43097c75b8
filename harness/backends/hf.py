"""``hf`` backend: transformers ``generate`` on CPU or GPU.

Decoding is fully explicit so a checkpoint's ``generation_config.json`` (repetition penalty, top-p, top-k…) never
leaks in: the model's generation config is replaced by a bare one at load time (keeping only its EOS ids) and
every request passes ``do_sample``, temperature, top-k/top-p/min-p and ``repetition_penalty`` itself.

Semantics follow vLLM's so rerankers behave the same on every backend:
- the prompt string is tokenized with the tokenizer's default special tokens (vLLM's default for text prompts);
- ``stop`` strings end generation as soon as the decoded continuation contains one; the returned text is cut
  before it (or after it with ``include_stop_str_in_output``); the token that completed it is counted;
- an EOS token ends generation, is counted in ``output_tokens`` and left out of the text;
- ``min_tokens`` suppresses EOS until that many tokens exist; ``allowed_token_ids`` masks every other token;
- ``logprobs=n`` returns, per generated position, the top-n log-probabilities (plus the chosen token) of the
  distribution the token was picked from (after the masks, like vLLM's V0 sampler); masked (-inf) entries dropped.

Requests are served by a single worker thread (generate is not re-entrant): concurrent ``agenerate`` calls queue,
and the greedy requests with equal sampling parameters that are waiting together (up to ``batch_size``, default 8)
are decoded in one left-padded ``generate`` call — on a CPU a batch of 8 costs little more than one sequence, and
each request gets the tokens it gets alone (tested on SmolLM2). Each request's engine seconds are its equal share of
its batch's time, so they add up to the engine's busy time. Sampled requests are never batched.
"""

from __future__ import annotations

import asyncio
import math
import time
import threading
from typing import Any

from harness.errors import HarnessError, require
from harness.llm import Backend, Generation, GenerationRequest
from harness.options import Option, OptionSet

OPTIONS = OptionSet("backend hf", [
    Option("device", str, None, "torch device, e.g. cpu, cuda, cuda:1 (default: cuda when available, else cpu)"),
    Option("dtype", str, None, "weights dtype (default: auto on GPU, float32 on CPU)",
           choices=("auto", "float32", "float16", "bfloat16")),
    Option("trust_remote_code", bool, False, "allow the checkpoint's own modelling code"),
    Option("batch_size", int, None, "greedy requests in flight decoded together in one generate (left padding; "
           "same tokens as one at a time) [default: 8]", minimum=1),
    Option("max_length", int, None, "cross-encoders: pair length in tokens, longest_first truncation (default: the "
           "tokenizer's model_max_length, capped by the model's positions)", minimum=8),
])
DEFAULT_BATCH_SIZE = 8


def create(model: str, revision: str | None, execution, engine: dict, head: str = "causal-lm") -> Backend:
    kwargs = dict(revision=revision, device=engine.get("device"), dtype=engine.get("dtype"),
                  trust_remote_code=bool(engine.get("trust_remote_code", False)),
                  batch_size=int(engine.get("batch_size") or DEFAULT_BATCH_SIZE))
    if head == "sequence-classification":
        return HFScoreBackend(model, max_length=engine.get("max_length"), **kwargs)
    return HFBackend(model, **kwargs)


class HFBackend(Backend):
    name = "hf"

    def __init__(self, model_id: str, revision: str | None = None, device: str | None = None,
                 dtype: str | None = None, trust_remote_code: bool = False, batch_size: int = 1):
        torch = require("torch", "hf", "The hf backend")
        transformers = require("transformers", "hf", "The hf backend")
        from harness.models import model_not_available, resolve_model_path

        self.model_id = model_id
        self.revision = revision
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype is None:
            dtype = "auto" if self.device.startswith("cuda") else "float32"
        self.dtype = dtype
        path = resolve_model_path(model_id)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, revision=revision,
                                                                        trust_remote_code=trust_remote_code)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(
                path, revision=revision, dtype=dtype if dtype == "auto" else getattr(torch, dtype),
                trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:  # ValueError: huggingface_hub rejects a malformed repo id
            raise model_not_available(model_id, "model (hf backend)", exc) from exc
        self.model.to(self.device)
        self.model.eval()
        self._eos_ids = self._collect_eos_ids()
        pad = self.tokenizer.pad_token_id
        self._pad_id = pad if pad is not None else self._eos_ids[0]
        # Nothing from the checkpoint's generation_config.json may influence decoding.
        self.model.generation_config = transformers.GenerationConfig(eos_token_id=self._eos_ids,
                                                                     pad_token_id=self._pad_id)
        self._max_positions = getattr(self.model.config, "max_position_embeddings", None)
        self.batch_size = batch_size
        self._pending: list[tuple[GenerationRequest, asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._wake = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._serve, name="hf-generate", daemon=True)
        self._worker.start()

    def _collect_eos_ids(self) -> list[int]:
        ids: list[int] = []
        candidates = [self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)]
        for value in candidates:
            for token_id in (value if isinstance(value, (list, tuple)) else [value]):
                if token_id is not None and token_id not in ids:
                    ids.append(int(token_id))
        if not ids:
            raise HarnessError(f"Model {self.model_id!r} defines no EOS token; the hf backend cannot stop generation.")
        return ids

    async def agenerate(self, request: GenerationRequest) -> Generation:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._wake:
            if self._closed:
                raise HarnessError("The hf backend was closed.")
            self._pending.append((request, loop, future))
            self._wake.notify()
        return await future

    # -- the worker: one generate at a time, batching compatible requests that are waiting -----------------------

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed and not self._pending:
                    return
                first = self._pending.pop(0)
                batch = [first]
                if self.batch_size > 1 and first[0].params.temperature == 0:
                    for item in list(self._pending):
                        if len(batch) >= self.batch_size:
                            break
                        if item[0].params == first[0].params:
                            batch.append(item)
                            self._pending.remove(item)
            try:
                results = self.generate_batch([item[0] for item in batch])
            except BaseException as exc:  # delivered to every caller of the batch
                results = [exc] * len(batch)
            for (_, loop, future), result in zip(batch, results):
                loop.call_soon_threadsafe(_deliver, future, result)

    def generate(self, request: GenerationRequest) -> Generation:
        """One request on its own (the reference path: exactly a single ``generate`` call)."""
        return self.generate_batch([request])[0]

    def generate_batch(self, requests: list[GenerationRequest]) -> list[Generation]:
        """Greedy requests with equal sampling parameters in one left-padded ``generate`` call; each gets the tokens
        it gets alone (checked on SmolLM2 by the tests) and an equal share of the call's time as engine seconds."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        params = requests[0].params
        encoded = [self.tokenizer(r.prompt).input_ids for r in requests]
        longest = max(len(ids) for ids in encoded)
        max_new = params.max_tokens
        if self._max_positions:
            for request, ids in zip(requests, encoded):
                if len(ids) >= self._max_positions:
                    raise HarnessError(
                        f"Prompt of {request.label or 'a request'} has {len(ids)} tokens, more than the model's "
                        f"{self._max_positions} positions. Use a shorter --passage-length or a smaller --window-size.")
            max_new = min(max_new, self._max_positions - longest)
        input_ids = torch.full((len(encoded), longest), self._pad_id, dtype=torch.long)
        attention = torch.zeros((len(encoded), longest), dtype=torch.long)
        for row, ids in enumerate(encoded):  # left padding: every prompt ends where generation starts
            input_ids[row, longest - len(ids):] = torch.tensor(ids, dtype=torch.long)
            attention[row, longest - len(ids):] = 1
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        sampling = params.temperature > 0
        processors = LogitsProcessorList()
        if params.allowed_token_ids:
            processors.append(_AllowedTokens(params.allowed_token_ids))
        stopping = StoppingCriteriaList()
        stop_criterion = None
        if params.stop:
            stop_criterion = _StopStrings(self.tokenizer, params.stop, longest, params.skip_special_tokens)
            stopping.append(stop_criterion)
        config = GenerationConfig(
            max_new_tokens=max_new,
            min_new_tokens=min(params.min_tokens, max_new) if params.min_tokens else 0,
            do_sample=sampling,
            temperature=params.temperature if sampling else None,
            top_k=(params.top_k if params.top_k > 0 else 0) if sampling else None,
            top_p=params.top_p if sampling else None,
            min_p=params.min_p if sampling and params.min_p > 0 else None,
            repetition_penalty=params.repetition_penalty,
            num_beams=1,
            eos_token_id=self._eos_ids,
            pad_token_id=self._pad_id,
            output_scores=params.logprobs is not None,
            return_dict_in_generate=True,
        )
        if sampling and params.seed is not None:
            torch.manual_seed(params.seed)
        started = time.perf_counter()
        with torch.inference_mode():
            output = self.model.generate(input_ids=input_ids, attention_mask=attention, generation_config=config,
                                         logits_processor=processors, stopping_criteria=stopping)
        seconds = time.perf_counter() - started
        results = []
        for row, ids in enumerate(encoded):
            new_ids = output.sequences[row, longest:].tolist()
            length = len(new_ids)
            for position, token in enumerate(new_ids):  # a finished row is padded; it ended at its EOS …
                if token in self._eos_ids:
                    length = position + 1
                    break
            if stop_criterion is not None and row in stop_criterion.done_at:  # … or at its stop string
                length = min(length, stop_criterion.done_at[row] + 1)
            new_ids = new_ids[:length]
            text, finish_reason = self._text_and_reason(new_ids, params, max_new)
            logprobs = _top_logprobs([step[row:row + 1] for step in output.scores], new_ids, params.logprobs) \
                if params.logprobs is not None else None
            results.append(Generation(
                text=text, input_tokens=len(ids), output_tokens=len(new_ids), seconds=seconds,
                finish_reason=finish_reason, logprobs=logprobs,
                extra={"token_ids": new_ids, "batch": len(encoded)},
                # the worker runs one call at a time: its share of the engine time is exact
                engine_seconds=seconds / len(encoded)))
        return results

    def _text_and_reason(self, new_ids: list[int], params, max_new: int) -> tuple[str, str]:
        ended_by_eos = bool(new_ids) and new_ids[-1] in self._eos_ids
        text_ids = new_ids[:-1] if ended_by_eos else new_ids
        text = self.tokenizer.decode(text_ids, skip_special_tokens=params.skip_special_tokens)
        hits = [(text.find(s), s) for s in params.stop if s and s in text]
        if hits:
            position, stop = min(hits)
            return (text[: position + len(stop)] if params.include_stop_str_in_output else text[:position]), "stop"
        if ended_by_eos:
            return text, "stop"
        return text, "length" if len(new_ids) >= max_new else "stop"

    def describe(self) -> dict[str, Any]:
        return {"device": self.device, "dtype": str(self.dtype)}

    def hardware(self) -> dict[str, Any]:
        if self.device.startswith("cuda"):
            import torch

            index = torch.device(self.device).index or 0
            return {"backend": self.name, "accelerator": torch.cuda.get_device_name(index), "count": 1,
                    "tensor_parallel": 1, "data_parallel": 1}
        return {"backend": self.name, "accelerator": self.device, "count": 0, "tensor_parallel": 1,
                "data_parallel": 1}

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        if self._worker.is_alive():
            self._worker.join(timeout=600)
        model, self.model = getattr(self, "model", None), None
        del model
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass


def _deliver(future: asyncio.Future, result) -> None:
    if future.cancelled():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class _AllowedTokens:
    """Logits processor: every token outside ``allowed`` gets -inf."""

    def __init__(self, allowed):
        self.allowed = list(allowed)

    def __call__(self, input_ids, scores):
        import torch

        mask = torch.full_like(scores, float("-inf"))
        mask[:, self.allowed] = 0
        return scores + mask


class _StopStrings:
    """Stopping criterion, per row: the decoded continuation contains one of the stop strings. ``done_at[row]`` is the
    index of the generated token that completed it."""

    def __init__(self, tokenizer, stops, prompt_length: int, skip_special_tokens: bool):
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.prompt_length = prompt_length
        self.skip_special_tokens = skip_special_tokens
        self.done_at: dict[int, int] = {}
        # Enough trailing tokens to contain the longest stop string even at one byte per token.
        self.tail = 4 * max((len(s) for s in self.stops), default=1) + 8

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        length = int(input_ids.shape[1])
        start = max(self.prompt_length, length - self.tail)
        flags = []
        for row in range(input_ids.shape[0]):
            if row in self.done_at:
                flags.append(True)
                continue
            text = self.tokenizer.decode(input_ids[row, start:].tolist(), skip_special_tokens=self.skip_special_tokens)
            done = any(s in text for s in self.stops)
            if done:
                self.done_at[row] = length - self.prompt_length - 1
            flags.append(done)
        return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)


def _top_logprobs(scores, chosen: list[int], n: int) -> list[dict[int, float]]:
    import torch

    out: list[dict[int, float]] = []
    for step, token_id in zip(scores, chosen):
        logprobs = torch.log_softmax(step[0].float(), dim=-1)
        k = min(max(n, 1), logprobs.shape[-1])
        values, ids = torch.topk(logprobs, k)
        top = {int(i): float(v) for v, i in zip(values.tolist(), ids.tolist()) if math.isfinite(v)}
        chosen_lp = float(logprobs[token_id])
        if math.isfinite(chosen_lp):
            top.setdefault(int(token_id), chosen_lp)
        out.append(top)
    return out


class HFScoreBackend(Backend):
    """``hf`` with a sequence-classification head (cross-encoders): ``kind="score"`` requests only.

    A pair is tokenized as ``tokenizer(query, document, truncation="longest_first", max_length=…)`` — what
    sentence-transformers' ``CrossEncoder`` and FlagEmbedding's ``FlagReranker`` do — and scored by the head: the
    logit for a one-label head, the log-probability of the last label for a multi-label head. Waiting pairs are
    scored together (up to ``batch_size``, right padding) by one worker thread.
    """

    name = "hf"

    def __init__(self, model_id: str, revision: str | None = None, device: str | None = None,
                 dtype: str | None = None, trust_remote_code: bool = False, batch_size: int = 8,
                 max_length: int | None = None):
        torch = require("torch", "hf", "The hf backend")
        transformers = require("transformers", "hf", "The hf backend")
        from harness.models import model_not_available, resolve_model_path

        self.model_id = model_id
        self.revision = revision
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = dtype or ("auto" if self.device.startswith("cuda") else "float32")
        path = resolve_model_path(model_id)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, revision=revision,
                                                                        trust_remote_code=trust_remote_code)
            self.model = transformers.AutoModelForSequenceClassification.from_pretrained(
                path, revision=revision, dtype=self.dtype if self.dtype == "auto" else getattr(torch, self.dtype),
                trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            raise model_not_available(model_id, "cross-encoder (hf backend)", exc) from exc
        self.model.to(self.device)
        self.model.eval()
        positions = getattr(self.model.config, "max_position_embeddings", None)
        limit = self.tokenizer.model_max_length if self.tokenizer.model_max_length < 10**6 else None
        self.max_length = max_length or min(x for x in (limit, positions, 8192) if x)
        self.batch_size = batch_size
        self._pending: list[tuple[GenerationRequest, asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._wake = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._serve, name="hf-score", daemon=True)
        self._worker.start()

    def capabilities(self) -> frozenset[str]:
        return frozenset({"score"})

    async def agenerate(self, request: GenerationRequest) -> Generation:
        if request.kind != "score":
            raise HarnessError(f"{self.model_id!r} was loaded as a cross-encoder (sequence-classification head); it "
                               "scores pairs and cannot generate text. Use a generative reranker's model.")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._wake:
            if self._closed:
                raise HarnessError("The hf backend was closed.")
            self._pending.append((request, loop, future))
            self._wake.notify()
        return await future

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed and not self._pending:
                    return
                batch, self._pending = self._pending[:self.batch_size], self._pending[self.batch_size:]
            try:
                results = self.score_batch([item[0] for item in batch])
            except BaseException as exc:
                results = [exc] * len(batch)
            for (_, loop, future), result in zip(batch, results):
                loop.call_soon_threadsafe(_deliver, future, result)

    def score_batch(self, requests: list[GenerationRequest]) -> list[Generation]:
        import torch

        from harness.llm import score_pair

        pairs = [score_pair(r) for r in requests]
        encoded = self.tokenizer([q for q, _ in pairs], [d for _, d in pairs], padding=True,
                                 truncation="longest_first", max_length=self.max_length, return_tensors="pt")
        lengths = encoded["attention_mask"].sum(dim=1).tolist()
        encoded = {k: v.to(self.device) for k, v in encoded.items()}
        started = time.perf_counter()
        with torch.inference_mode():
            logits = self.model(**encoded).logits.float()
        seconds = time.perf_counter() - started
        if logits.shape[-1] == 1:
            scores = logits[:, 0].tolist()
        else:
            scores = torch.log_softmax(logits, dim=-1)[:, -1].tolist()
        return [Generation(text=repr(float(score)), input_tokens=int(n), output_tokens=0, seconds=seconds,
                           extra={"score": float(score), "batch": len(requests)},
                           engine_seconds=seconds / len(requests))
                for score, n in zip(scores, lengths)]

    def describe(self) -> dict[str, Any]:
        return {"device": self.device, "dtype": str(self.dtype), "head": "sequence-classification",
                "max_length": self.max_length}

    def hardware(self) -> dict[str, Any]:
        return {"backend": self.name, "accelerator": self.device, "count": 0 if self.device == "cpu" else 1,
                "tensor_parallel": 1, "data_parallel": 1}

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        if self._worker.is_alive():
            self._worker.join(timeout=600)
        self.model = None
