"""Rank1 (jhu-clsp/rank1-*): pointwise reasoning reranker, as orionw/rank1 runs it (shared/spec/rank1.md).

Per (query, passage) pair: a raw prompt (no chat template) ending in ``<think>``, greedy generation stopped at
``</think> true`` / ``</think> false``, score = P(true) / (P(true) + P(false)) from the top-20 log-probs at the last
generated position. A pair whose log-probs lack either id (reasoning ran out of tokens, ``True``, ``</think>\\n``…)
gets the fix pass: the reasoning cut at its last sentence end, ``\\n</think>`` appended, exactly one token generated
with only `` true``/`` false`` allowed. Any failure there scores 0.5. All pairs are submitted at once.
BRIGHT subsets use the authors' task prompts (looked up from the task name, e.g. ``bright/aops``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from typing import Any, Sequence

from harness.errors import HarnessError
from harness.llm import Generation, GenerationRequest, SamplingParams
from harness.types import CallStats, RerankRequest, RerankResult
from rerankers._listwise import backend_description
from rerankers._llm import LLMReranker
from rerankers.base import RerankContext, RerankerOptions

DEFAULT_MODEL = "jhu-clsp/rank1-7b"
DEFAULT_MAX_TOKENS = 8192
TOP_LOGPROBS = 20
STOP = ("</think> true", "</think> false")

PROMPT_TEMPLATE = (
    "Determine if the following passage is relevant to the query. Answer only with 'true' or 'false'.\n"
    "Query: {query}\nPassage: {passage}\n<think>"
)
_GENERIC_BRIGHT = (
    "Can you find background information about the concepts used to answer the question:\n\nFILL_QUERY_HERE\n\n"
    "A passage is relevant if it contains background information about a **sub-concept** that someone might "
    "cite/link to when answering the above question."
)
_THEOREMQA = "Find a passage which uses the same mathematical process as this one: FILL_QUERY_HERE"
BRIGHT_PROMPTS = {
    "aops": "Find different but similar math problems to FILL_QUERY_HERE\n\nA document is relevant if it uses the "
            "same class of functions and shares **any** overlapping techniques.",
    "theoremqa_questions": _THEOREMQA,
    "theoremqa_theorems": _THEOREMQA,
    "leetcode": "I am looking to find different problems that share similar data structures (of any kind) or "
                "algorithms (e.g. DFS, DP, sorting, traversals, etc.). I am looking for problems that share one or "
                "both of these similarities to this:\n    \nFILL_QUERY_HERE\n\nDoes this passage share any "
                "similarities? e.g. if there was a textbook on leetcode problems, this would be in the same book "
                "even though it could be in a different chapter. \n\n\n",
    "pony": "I will use the programming language pony. Problem: FILL_QUERY_HERE\n\nBut to solve the problem above, I "
            "need to know things about pony. A passage is relevant if it contains docs that match **any** part "
            "(even basic parts) of the code I will have to write for the above program.",
}
for _subset in ("biology", "earth_science", "economics", "psychology", "robotics", "stackoverflow",
                "sustainable_living"):
    BRIGHT_PROMPTS[_subset] = _GENERIC_BRIGHT

PROMPT_TEMPLATE_HASH = "sha256:" + hashlib.sha256(
    json.dumps([PROMPT_TEMPLATE, sorted(BRIGHT_PROMPTS.items())]).encode("utf-8")).hexdigest()


def task_prompt(task_name: str) -> str | None:
    """The authors' dataset prompt for a BRIGHT subset (``bright/aops``), None for any other task."""
    benchmark, _, subset = task_name.partition("/")
    if benchmark != "bright":
        return None
    return BRIGHT_PROMPTS.get(subset, _GENERIC_BRIGHT)


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
    if not top or true_id not in top or false_id not in top:
        return None
    t, f = math.exp(top[true_id]), math.exp(top[false_id])
    if t + f == 0.0:
        return None
    return t / (t + f)


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


class Rank1Reranker(LLMReranker):
    name = "rank1"
    default_model = DEFAULT_MODEL

    def __init__(self, options: RerankerOptions | None = None, *, backend=None, tokenizer=None):
        super().__init__(options, backend=backend, tokenizer=tokenizer)
        budget = self.options.reasoning_budget
        if budget is not None and int(budget) < 1:
            raise HarnessError(f"--reasoning-budget must be at least 1 (got {budget}).")
        self.max_tokens = int(budget) if budget is not None else DEFAULT_MAX_TOKENS
        self.use_task_prompts = not self.options.get("skip_prompt", False)

    def engine_defaults(self) -> dict[str, Any]:
        # orionw/rank1 run.py: LLM(..., max_model_len=16000, dtype="float16", trust_remote_code=True)
        return {"max_model_len": 16000, "dtype": "float16", "trust_remote_code": True}

    def sampling_params(self) -> SamplingParams:
        return SamplingParams(temperature=0.0, max_tokens=self.max_tokens, logprobs=TOP_LOGPROBS, stop=STOP,
                              skip_special_tokens=False)

    def fix_params(self, true_id: int, false_id: int) -> SamplingParams:
        return SamplingParams(temperature=0.0, max_tokens=1, logprobs=TOP_LOGPROBS,
                              allowed_token_ids=(true_id, false_id), skip_special_tokens=False)

    def pair_prompt(self, query: str, passage: str, task_name: str) -> str:
        return build_prompt(query, passage, task_prompt(task_name) if self.use_task_prompts else None)

    def preview_prompt(self, request: RerankRequest, index: int, task_name: str) -> tuple[str, str]:
        if not 0 <= index < len(request.candidates):
            raise HarnessError(f"Query {request.qid!r} has {len(request.candidates)} candidates; "
                               f"--window (the pair index for rank1) must be 0..{len(request.candidates) - 1}.")
        candidate = request.candidates[index]
        return f"doc {candidate.docid}", self.pair_prompt(request.query, candidate.text, task_name)

    async def _score_pair(self, request: RerankRequest, index: int, task_name: str,
                          ids: tuple[int, int]) -> tuple[float, CallStats]:
        candidate = request.candidates[index]
        prompt = self.pair_prompt(request.query, candidate.text, task_name)
        label = f"query {request.qid}, doc {candidate.docid}"
        first = await self.generate(GenerationRequest(prompt, self.sampling_params(), label=label))
        stats = _stats(first, f"doc {candidate.docid}")
        score = score_from_logprobs(first.logprobs[-1] if first.logprobs else None, *ids)
        if score is not None:
            return score, stats
        # Incomplete pair: force the verdict after the reasoning so far.
        fixed = await self.generate(GenerationRequest(
            fix_prompt(prompt, first.text), self.fix_params(*ids), label=label + " (fix pass)"))
        stats.input_tokens += fixed.input_tokens
        stats.output_tokens += fixed.output_tokens
        stats.seconds += fixed.seconds
        stats.cached = stats.cached and fixed.cached
        stats.parsed = False
        score = score_from_logprobs(fixed.logprobs[0] if fixed.logprobs else None, *ids)
        if score is None:
            stats.fallback = "score_0.5"
            return 0.5, stats
        stats.fallback = "fix_pass"
        return score, stats

    async def _arerank(self, requests: Sequence[RerankRequest], context: RerankContext) -> list[RerankResult]:
        ids = verdict_ids(self.tokenizer)

        async def one_query(request: RerankRequest) -> RerankResult:
            scored = await asyncio.gather(*(self._score_pair(request, i, context.task_name, ids)
                                            for i in range(len(request.candidates))))
            # Higher score first; equal scores keep the first-stage order.
            order = sorted(range(len(scored)), key=lambda i: (-scored[i][0], i))
            context.progress(1)
            return RerankResult(request.qid, [(request.candidates[i].docid, scored[i][0]) for i in order],
                                [stats for _, stats in scored])

        return list(await asyncio.gather(*(one_query(r) for r in requests)))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            **backend_description(self.backend, self.revision),
            "max_tokens": self.max_tokens,
            "task_prompts": self.use_task_prompts,
            "sampling": self.sampling_params().as_dict(),
            "scores": "P(true)/(P(true)+P(false)) at the position after </think>; fix pass; 0.5 on failure",
            "prompt_template_hash": PROMPT_TEMPLATE_HASH,
        }



def _stats(generation: Generation, label: str) -> CallStats:
    return CallStats(input_tokens=generation.input_tokens, output_tokens=generation.output_tokens,
                     seconds=generation.seconds, parsed=True, fallback=None, cached=generation.cached, label=label)
