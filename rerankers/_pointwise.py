"""Pointwise reranking shared by every model that scores one (query, passage) pair at a time.

The base owns the loop: every pair of every query is submitted at once (the engine batches them; the hf backend
decodes waiting greedy requests together), each pair's call is recorded with its parse result and fallback, and each
query's candidates are sorted by score, highest first, ties broken by first-stage rank (the stable order of the
candidate list). A model of this family is one small file: its prompt (``pair_prompt``) and how one pair becomes a
score (``score_pair``): log-probabilities of a few label tokens (Rank1, Qwen3-Reranker), a number parsed from a
generated answer (ERank, Retro*), or a classification head (cross-encoders).

``label_logprobs`` asks the model for one forced next token among ``label_ids`` and returns their log-probabilities
(renormalised over the labels on engines that mask, unnormalised on llama.cpp, which reports the unmasked
distribution; ratios between labels are the same either way).
"""

from __future__ import annotations

import asyncio
import math
from abc import abstractmethod
from typing import Any, ClassVar, Mapping, Sequence

from harness.errors import HarnessError
from harness.llm import Generation, GenerationRequest, SamplingParams
from harness.types import CallStats, RerankRequest, RerankResult
from rerankers._llm import LLMReranker
from rerankers.base import RerankContext


def label_probability(top: Mapping[int, float] | None, positive: int, negative: int) -> float | None:
    """P(positive) / (P(positive) + P(negative)) from one position's log-probs; None when either is absent."""
    if not top or positive not in top or negative not in top:
        return None
    p, n = math.exp(top[positive]), math.exp(top[negative])
    if p + n == 0.0:
        return None
    return p / (p + n)


def single_token_id(tokenizer, text: str, what: str) -> int:
    """The id of ``text`` when the tokenizer encodes it as exactly one token (label tokens must be)."""
    ids = tokenizer(text, add_special_tokens=False).input_ids
    if len(ids) != 1:
        raise HarnessError(f"The tokenizer splits the {what} label {text!r} into {len(ids)} tokens ({ids}); this "
                           "reranker scores a single label token. Use the model's own tokenizer (--tokenizer).")
    return int(ids[0])


def truncate_to_tokens(tokenizer, text: str, max_tokens: int) -> tuple[str, bool]:
    """The first ``max_tokens`` tokens of ``text`` (no special tokens), decoded; and whether anything was cut."""
    ids = tokenizer(text, add_special_tokens=False).input_ids
    if len(ids) <= max_tokens:
        return text, False
    return tokenizer.decode(ids[:max(max_tokens, 0)]), True


class PointwiseLLMReranker(LLMReranker):
    """Shared plumbing of the pointwise rerankers: the pair loop, sorting, call records, prompt preview."""

    family = "pointwise"
    outputs_scores: ClassVar[bool] = True

    @abstractmethod
    def pair_prompt(self, query: str, passage: str, protocol: Mapping[str, Any]) -> str:
        """The exact prompt string for one pair under the subset's protocol hints."""

    @abstractmethod
    async def score_pair(self, request: RerankRequest, index: int, protocol: Mapping[str, Any]
                         ) -> tuple[float, CallStats]:
        """Score candidate ``index`` of ``request``; model calls go through ``self.generate``."""

    def prepare(self, protocol: Mapping[str, Any]) -> None:
        """Called once per subset before any pair is scored (e.g. to look up label token ids)."""

    def preview_prompt(self, request: RerankRequest, index: int, protocol: Mapping[str, Any]) -> tuple[str, str]:
        if not 0 <= index < len(request.candidates):
            raise HarnessError(f"Query {request.qid!r} has {len(request.candidates)} candidates; --window (the pair "
                               f"index for pointwise rerankers) must be 0..{len(request.candidates) - 1}.")
        candidate = request.candidates[index]
        return f"doc {candidate.docid}", self.pair_prompt(request.query, candidate.text, protocol)

    async def label_logprobs(self, prompt: str, label_ids: Sequence[int], label: str
                             ) -> tuple[dict[int, float], Generation]:
        params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=len(label_ids),
                                allowed_token_ids=tuple(label_ids), skip_special_tokens=False)
        generation = await self.generate(GenerationRequest(prompt, params, label=label))
        if generation.logprobs is None:
            raise HarnessError(f"The backend returned no log-probs for {label}; {self.name} scores each pair from "
                               "the log-probabilities of its label tokens. Use --backend hf or vllm, or a server "
                               "that returns log-probs by token id (`vllm serve`, SGLang, llama.cpp).")
        top = generation.logprobs[0] if generation.logprobs else {}
        return {i: top[i] for i in label_ids if i in top}, generation

    async def _arerank(self, requests: Sequence[RerankRequest], context: RerankContext) -> list[RerankResult]:
        self.prepare(context.protocol)

        async def one_query(request: RerankRequest) -> RerankResult:
            scored = await asyncio.gather(*(self.score_pair(request, i, context.protocol)
                                            for i in range(len(request.candidates))))
            order = sorted(range(len(scored)), key=lambda i: (-scored[i][0], i))
            context.progress(1)
            return RerankResult(request.qid, [(request.candidates[i].docid, scored[i][0]) for i in order],
                                [stats for _, stats in scored])

        return list(await asyncio.gather(*(one_query(r) for r in requests)))
