"""Retro* (ljw13/retro-star-qwen3-8b/14b/32b-0928, retro-star-qwen2.5-7b/32b-instruct-0923): pointwise reasoning with
a 0–100 relevance rubric; the score is the mean of ``samples`` sampled answers.

As VectorSpaceLab/agentic-search ``Retro-star/evaluation/bright/reranker_sglang.py`` runs it: the prompt template
below (relevance definition, query and document types per BRIGHT subset from its ``reranker_prompts.py``, declared
here as the ``relevance`` protocol hint; a plain task gets the code's generic definition); query and document each
cut to ``context_length - max_tokens - 128`` tokens (no separate limit by default), then the whole prompt to the same
length; one user turn through the chat template with ``enable_thinking=False``; sampling at temperature 0.6, top-k
40, repetition penalty 1.0, 4,096 new tokens (the BRIGHT scripts; the code's default is 8,192), special tokens kept;
the score is the first ``<score>N</score>`` (``\\s*`` around the digits), 0 when there is none, averaged over the
samples (the BRIGHT scripts: 1 sample over the top 100, 16 over the top 30).

Sampling: the original seeds its SGLang engine once (42) and draws ``n`` samples per prompt; here sample ``i`` is its
own request with seed ``seed + i``, so runs are reproducible but not token-identical to the original's draws.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import Any, Mapping

from harness.llm import GenerationRequest, SamplingParams
from harness.options import Option
from harness.types import CallStats, RerankRequest
from rerankers._llm import MODEL_OPTIONS
from rerankers._pointwise import PointwiseLLMReranker

DEFAULT_MODEL = "ljw13/retro-star-qwen3-8b-0928"
SCORE_PATTERN = re.compile(r"<score>\s*(\d+)\s*</score>")
PROMPT_TEMPLATE = """\
Here is the **relevance definition** in a retrieval task: {relevance_definition}

Now given a **query** ({query_type}) and a **document** ({doc_type}) in this retrieval task, your mission is to perform the following steps.

1. Query Analysis: Think to reason and describe what information would be most helpful in answering the query.
2. Document Analysis: Discuss how the information provided by the document fulfills or fails to fulfill the requirements implied by the query.
3. Relevance Annotation: Based on the relevance definition and the insights from the previous two steps, clearly justify your final relevance annotation result and annotate an integer score from a scale of 0 to 100. Please use the following guide:
    - **80-100 (Highly Relevant):** The document directly and comprehensively addresses the query's intent. It is a core and authoritative answer.
    - **60-80 (Relevant):** The document substantially addresses the query's intent, providing most of the key information, but might miss some minor details.
    - **40-60 (Moderately Relevant):** The document is on-topic and addresses a part of the query's intent, but it is not a comprehensive answer.
    - **20-40 (Slightly Relevant):** The document mentions keywords from the query, but its main topic is different. It offers very limited value.
    - **0-20 (Irrelevant):** The document does not address the query's intent at all and is off-topic.

After providing your detailed analysis and justification for all the steps above, conclude your entire response with the final relevance score. The score must be placed strictly between the <score> tags. There should be no other text or explanation inside the tags:
<score>
[From a scale of 0 to 100, annotate the degree of relevance between the query and the document.]
</score>

Query ({query_type}):
[Begin of Query]
{query}
[End of Query]

Document ({doc_type}):
[Begin of Document]
{doc}
[End of Document]
"""
PROMPT_TEMPLATE_HASH = "sha256:" + hashlib.sha256(json.dumps([PROMPT_TEMPLATE]).encode("utf-8")).hexdigest()


def generic_relevance(query_type: str = "query", doc_type: str = "document") -> dict[str, str]:
    return {"query_type": query_type, "doc_type": doc_type,
            "definition": f"Given a query ({query_type}) and a document ({doc_type}), the document is relevant to the "
                          "query if the document can help answer the query."}


def parse_score(text: str) -> int | None:
    match = SCORE_PATTERN.search(text)
    return int(match.group(1)) if match else None


OPTIONS = MODEL_OPTIONS.extended("reranker retro-star", [
    Option("samples", int, 1, "sampled answers per pair, averaged (mean-score@k)", minimum=1,
           source="Retro* BRIGHT scripts: 1 over the top 100, 16 over the top 30"),
    Option("max_tokens", int, 4096, "new tokens per answer", minimum=1,
           source="Retro* BRIGHT scripts --reranker_max_new_tokens 4096"),
    Option("context_length", int, 32768, "engine context; query, document and prompt are cut to context_length - "
           "max_tokens - 128 tokens", minimum=256, source="Retro* reranker_sglang_context_length 32768"),
    Option("temperature", float, 0.6, "sampling temperature", minimum=0.0, maximum=2.0,
           source="Retro* reranker_sglang.py"),
    Option("top_k", int, 40, "top-k sampling", minimum=0, source="Retro* reranker_sglang.py"),
    Option("seed", int, 42, "seed of the first sample (sample i uses seed + i)", minimum=0,
           source="Retro* reranker_sglang_seed 42"),
    Option("enable_thinking", bool, False, "chat template's thinking switch (Qwen3)",
           source="Retro* BRIGHT scripts --reranker_enable_thinking False"),
])


class RetroStarReranker(PointwiseLLMReranker):
    name = "retro-star"
    default_model = DEFAULT_MODEL
    options = OPTIONS

    def required_capabilities_now(self) -> frozenset[str]:
        sampled = float(self.values["temperature"]) > 0
        return frozenset({"generate", "sampling"} if sampled else {"generate"})

    def relevance(self, protocol: Mapping[str, Any]) -> dict[str, str]:
        return dict(protocol.get("relevance") or generic_relevance())

    @property
    def max_prompt_tokens(self) -> int:
        return int(self.values["context_length"]) - int(self.values["max_tokens"]) - 128

    def resolve(self, protocol: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "samples": int(self.values["samples"]),
            "relevance": self.relevance(protocol),
            "max_prompt_tokens": self.max_prompt_tokens,
            "enable_thinking": bool(self.values["enable_thinking"]),
            "sampling": self.sampling_params(0).as_dict(),
            "scores": "mean over samples of the first <score>N</score> (0 when absent)",
            **({"tokenizer": self.values["tokenizer"]} if self.values.get("tokenizer") else {}),
        }

    def prompt_template_hash(self) -> str:
        return PROMPT_TEMPLATE_HASH

    def sampling_params(self, sample: int) -> SamplingParams:
        return SamplingParams(temperature=float(self.values["temperature"]), top_k=int(self.values["top_k"]),
                              max_tokens=int(self.values["max_tokens"]), repetition_penalty=1.0,
                              seed=int(self.values["seed"]) + sample, skip_special_tokens=False)

    def _cut(self, text: str) -> str:
        ids = self.tokenizer(text).input_ids
        if len(ids) <= self.max_prompt_tokens:
            return text
        return self.tokenizer.decode(ids[:self.max_prompt_tokens])

    def pair_prompt(self, query: str, passage: str, protocol: Mapping[str, Any]) -> str:
        relevance = self.relevance(protocol)
        prompt = PROMPT_TEMPLATE.format(relevance_definition=relevance["definition"], query=self._cut(query),
                                        doc=self._cut(passage), query_type=relevance["query_type"],
                                        doc_type=relevance["doc_type"])
        prompt = self._cut(prompt)
        return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                  add_generation_prompt=True,
                                                  enable_thinking=bool(self.values["enable_thinking"]))

    async def score_pair(self, request: RerankRequest, index: int, protocol: Mapping[str, Any]
                         ) -> tuple[float, CallStats]:
        candidate = request.candidates[index]
        prompt = self.pair_prompt(request.query, candidate.text, protocol)
        label = f"query {request.qid}, doc {candidate.docid}"
        samples = int(self.values["samples"])
        generations = await asyncio.gather(*(
            self.generate(GenerationRequest(prompt, self.sampling_params(i),
                                            label=label if samples == 1 else f"{label}, sample {i + 1}"))
            for i in range(samples)))
        scores = [parse_score(g.text) for g in generations]
        missing = sum(s is None for s in scores)
        score = sum(s or 0 for s in scores) / samples
        stats = CallStats.of(generations, f"doc {candidate.docid}", "pair", parsed=missing == 0,
                             fallback="score_0" if missing else None)
        stats.unusable = missing == samples
        return score, stats
