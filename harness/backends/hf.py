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

Requests are served one at a time by a single worker thread (generate is not re-entrant and a CPU gains nothing
from interleaving), so concurrent ``agenerate`` calls simply queue; the event loop stays free meanwhile.
"""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness.errors import HarnessError, require
from harness.llm import Backend, Generation, GenerationRequest
from harness.options import Option, OptionSet

OPTIONS = OptionSet("backend hf", [
    Option("device", str, None, "torch device, e.g. cpu, cuda, cuda:1 (default: cuda when available, else cpu)"),
    Option("dtype", str, None, "weights dtype (default: auto on GPU, float32 on CPU)",
           choices=("auto", "float32", "float16", "bfloat16")),
    Option("trust_remote_code", bool, False, "allow the checkpoint's own modelling code"),
])


def create(model: str, revision: str | None, execution, engine: dict) -> "HFBackend":
    return HFBackend(model, revision=revision, device=engine.get("device"), dtype=engine.get("dtype"),
                     trust_remote_code=bool(engine.get("trust_remote_code", False)))


class HFBackend(Backend):
    name = "hf"

    def __init__(self, model_id: str, revision: str | None = None, device: str | None = None,
                 dtype: str | None = None, trust_remote_code: bool = False):
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
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-generate")

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
        return await loop.run_in_executor(self._worker, self.generate, request)

    def generate(self, request: GenerationRequest) -> Generation:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        params = request.params
        encoded = self.tokenizer(request.prompt, return_tensors="pt")
        input_ids = encoded.input_ids.to(self.device)
        n_input = int(input_ids.shape[1])
        max_new = params.max_tokens
        if self._max_positions:
            if n_input >= self._max_positions:
                raise HarnessError(
                    f"Prompt of {request.label or 'a request'} has {n_input} tokens, more than the model's "
                    f"{self._max_positions} positions. Use a shorter --passage-length or a smaller --window-size.")
            max_new = min(max_new, self._max_positions - n_input)
        sampling = params.temperature > 0
        processors = LogitsProcessorList()
        if params.allowed_token_ids:
            processors.append(_AllowedTokens(params.allowed_token_ids))
        stopping = StoppingCriteriaList()
        if params.stop:
            stopping.append(_StopStrings(self.tokenizer, params.stop, n_input, params.skip_special_tokens))
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
            output = self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                         generation_config=config, logits_processor=processors,
                                         stopping_criteria=stopping)
        seconds = time.perf_counter() - started
        new_ids = output.sequences[0, n_input:].tolist()
        text, finish_reason = self._text_and_reason(new_ids, params, max_new)
        logprobs = _top_logprobs(output.scores, new_ids, params.logprobs) if params.logprobs is not None else None
        return Generation(text=text, input_tokens=n_input, output_tokens=len(new_ids), seconds=seconds,
                          finish_reason=finish_reason, logprobs=logprobs, extra={"token_ids": new_ids})

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
        self._worker.shutdown(wait=True)
        model, self.model = getattr(self, "model", None), None
        del model
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass


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
    """Stopping criterion: the decoded continuation contains one of the stop strings."""

    def __init__(self, tokenizer, stops, prompt_length: int, skip_special_tokens: bool):
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.prompt_length = prompt_length
        self.skip_special_tokens = skip_special_tokens
        # Enough trailing tokens to contain the longest stop string even at one byte per token.
        self.tail = 4 * max((len(s) for s in self.stops), default=1) + 8

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        start = max(self.prompt_length, int(input_ids.shape[1]) - self.tail)
        text = self.tokenizer.decode(input_ids[0, start:].tolist(), skip_special_tokens=self.skip_special_tokens)
        done = any(s in text for s in self.stops)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


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
