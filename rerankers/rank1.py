"""Rank1 (jhu-clsp/rank1-*): pointwise reasoning reranker, as orionw/rank1 runs it (shared/spec/rank1.md).

Per (query, passage) pair: a raw prompt (no chat template) ending in ``<think>``, greedy generation stopped at
``</think> true`` / ``</think> false``, score = P(true) / (P(true) + P(false)) from the top-20 log-probs at the last
generated position. A pair whose log-probs lack either id (reasoning ran out of tokens, ``True``, ``</think>\\n``…)
gets the fix pass: the reasoning cut at its last sentence end, ``\\n</think>`` appended, exactly one token generated
with only `` true``/`` false`` allowed. Any failure there scores 0.5. All pairs are submitted at once.
Datasets give their prompt through the declared protocol hint ``rank1_prompt`` (BRIGHT declares the authors'
``prompts.py`` strings per subset); a plain directory gets the raw query.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from harness.errors import HarnessError
from harness.llm import GenerationRequest, SamplingParams
from harness.options import Option
from harness.types import CallStats, RerankRequest
from rerankers._llm import MODEL_OPTIONS
from rerankers._pointwise import PointwiseLLMReranker, label_probability

DEFAULT_MODEL = "jhu-clsp/rank1-7b"
DEFAULT_MAX_TOKENS = 8192
TOP_LOGPROBS = 20
STOP = ("</think> true", "</think> false")

PROMPT_TEMPLATE = (
    "Determine if the following passage is relevant to the query. Answer only with 'true' or 'false'.\n"
    "Query: {query}\nPassage: {passage}\n<think>"
)
PROMPT_TEMPLATE_HASH = "sha256:" + hashlib.sha256(json.dumps([PROMPT_TEMPLATE]).encode("utf-8")).hexdigest()


def build_prompt(query: str, passage: str, dataset_prompt: str | None = None) -> str:
    if dataset_prompt is not None:
        query = dataset_prompt.replace("FILL_QUERY_HERE", query)
    return PROMPT_TEMPLATE.format(query=query, passage=passage)


def verdict_ids(tokenizer) -> tuple[int, int]:
    """Token ids of " true" and " false" (first token, leading space), as the authors compute them."""
    return (tokenizer(" true", add_special_tokens=False).input_ids[0],
            tokenizer(" false", add_special_tokens=False).input_ids[0])


def score_from_logprobs(top: dict[int, float] | None, true_id: int, false_id: int) -> float | None:
    """P(true) / (P(true) + P(false)) from one position's top log-probs; None when either id is absent."""
    return label_probability(top, true_id, false_id)


def clean_reasoning(text: str) -> str:
    """Cut unfinished reasoning after its last sentence end (``.``, ``!``, ``?``), then strip."""
    text = text.rstrip()
    if not text.endswith((".", "!", "?")):
        last = max(text.rfind("."), text.rfind("!"), text.rfind("?"))
        if last >= 0:
            text = text[: last + 1]
    return text.strip()


def fix_prompt(prompt: str, reasoning: str) -> str:
    return prompt + "\n" + clean_reasoning(reasoning) + "\n</think>"


OPTIONS = MODEL_OPTIONS.extended("reranker rank1", [
    Option("max_tokens", int, DEFAULT_MAX_TOKENS, "reasoning tokens per pair (first pass)", minimum=1,
           source="orionw/rank1 rank1.py max_tokens 8192"),
    Option("task_prompts", bool, True, "use the dataset's declared Rank1 prompt (the authors' 'skip prompt' off)"),
])


class Rank1Reranker(PointwiseLLMReranker):
    name = "rank1"
    default_model = DEFAULT_MODEL
    options = OPTIONS
    required_capabilities = frozenset({"generate", "stop", "logprobs", "allowed_token_ids"})

    @property
    def max_tokens(self) -> int:
        return int(self.values["max_tokens"])

    def engine_defaults(self) -> dict[str, dict[str, Any]]:
        # orionw/rank1 run.py: LLM(..., max_model_len=16000, dtype="float16", trust_remote_code=True)
        return {"vllm": {"max_model_len": 16000, "dtype": "float16", "trust_remote_code": True}}

    def task_prompt(self, protocol: Mapping[str, Any]) -> str | None:
        return protocol.get("rank1_prompt") if self.values["task_prompts"] else None

    def resolve(self, protocol: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "temperature": 0.0,
            "task_prompts": bool(self.values["task_prompts"]),
            "task_prompt": self.task_prompt(protocol),
            "sampling": self.sampling_params().as_dict(),
            "scores": "P(true)/(P(true)+P(false)) at the position after </think>; fix pass; 0.5 on failure",
            **({"tokenizer": self.values["tokenizer"]} if self.values.get("tokenizer") else {}),
        }

    def prompt_template_hash(self) -> str:
        return PROMPT_TEMPLATE_HASH

    def sampling_params(self) -> SamplingParams:
        return SamplingParams(temperature=0.0, max_tokens=self.max_tokens, logprobs=TOP_LOGPROBS, stop=STOP,
                              skip_special_tokens=False)

    def fix_params(self, true_id: int, false_id: int) -> SamplingParams:
        return SamplingParams(temperature=0.0, max_tokens=1, logprobs=TOP_LOGPROBS,
                              allowed_token_ids=(true_id, false_id), skip_special_tokens=False)

    def pair_prompt(self, query: str, passage: str, protocol: Mapping[str, Any]) -> str:
        return build_prompt(query, passage, self.task_prompt(protocol))

    def prepare(self, protocol: Mapping[str, Any]) -> None:
        self._ids = verdict_ids(self.tokenizer)

    async def score_pair(self, request: RerankRequest, index: int, protocol: Mapping[str, Any]
                         ) -> tuple[float, CallStats]:
        ids = self._ids
        candidate = request.candidates[index]
        prompt = self.pair_prompt(request.query, candidate.text, protocol)
        label = f"query {request.qid}, doc {candidate.docid}"
        first = await self.generate(GenerationRequest(prompt, self.sampling_params(), label=label))
        if first.logprobs is None:
            raise HarnessError(
                f"The backend returned no log-probs for {label}, although Rank1 asked for the top {TOP_LOGPROBS}: "
                "Rank1 scores each pair from P(true) and P(false), so without them every pair would score 0.5. Use a "
                "backend or server that returns log-probs by token id (hf, vllm, or `vllm serve` / SGLang behind "
                "--backend openai).")
        score = score_from_logprobs(first.logprobs[-1] if first.logprobs else None, *ids)
        if score is not None:
            return score, CallStats.of([first], f"doc {candidate.docid}", "pair")
        # Incomplete pair: force the verdict after the reasoning so far.
        fixed = await self.generate(GenerationRequest(
            fix_prompt(prompt, first.text), self.fix_params(*ids), label=label + " (fix pass)"))
        score = score_from_logprobs(fixed.logprobs[0] if fixed.logprobs else None, *ids)
        fallback = "score_0.5" if score is None else "fix_pass"
        stats = CallStats.of([first, fixed], f"doc {candidate.docid}", "pair", parsed=False, fallback=fallback)
        stats.unusable = score is None  # the fix pass is the authors' own forced verdict: still the model's score
        return (0.5 if score is None else score), stats
