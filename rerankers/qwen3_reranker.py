"""Qwen3-Reranker (Qwen/Qwen3-Reranker-0.6B, -4B, -8B): pointwise, P("yes") vs P("no") after an empty think block.

As the model card's transformers example runs it (and vLLM's ``examples/offline_inference/qwen3_reranker.py``, the
same strings): the system turn "Judge whether the Document meets the requirements based on the Query and the
Instruct provided. Note that the answer can only be "yes" or "no"."; a user turn ``<Instruct>: …\\n<Query>: …\\n
<Document>: …``; the assistant turn opened with ``<think>\\n\\n</think>\\n\\n``; the score is the softmax over the
next-token logits of "no" and "yes", taken at "yes". ``max_length`` 8192 tokens in all: the body (instruction,
query and document) keeps its first ``8192 - len(prefix) - len(suffix)`` tokens (the card's ``truncation=
"longest_first"`` on one sequence cuts its end).

The instruction is the subset's declared ``instruction`` protocol hint (BRIGHT declares one per subset), else the
card's default "Given a web search query, retrieve relevant passages that answer the query"; ``--reranker-arg
instruction=…`` overrides both.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from harness.options import Option
from harness.types import CallStats, RerankRequest
from rerankers._llm import MODEL_OPTIONS
from rerankers._pointwise import PointwiseLLMReranker, label_probability, single_token_id

DEFAULT_MODEL = "Qwen/Qwen3-Reranker-0.6B"
PREFIX = ("<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
          "provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n")
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
BODY = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
MAX_LENGTH = 8192
PROMPT_TEMPLATE_HASH = "sha256:" + hashlib.sha256(json.dumps([PREFIX, BODY, SUFFIX]).encode("utf-8")).hexdigest()

OPTIONS = MODEL_OPTIONS.extended("reranker qwen3-reranker", [
    Option("max_length", int, MAX_LENGTH, "prompt length in tokens (prefix + instruction, query, document + suffix)",
           minimum=64, source="Qwen3-Reranker model card max_length 8192"),
    Option("instruction", str, None, "the <Instruct> line (default: the subset's declared instruction, else the "
           "card's web-search instruction)"),
])


class Qwen3Reranker(PointwiseLLMReranker):
    name = "qwen3-reranker"
    default_model = DEFAULT_MODEL
    options = OPTIONS
    required_capabilities = frozenset({"generate", "label_logprobs"})

    def instruction(self, protocol: Mapping[str, Any]) -> str:
        return self.values.get("instruction") or protocol.get("instruction") or DEFAULT_INSTRUCTION

    def resolve(self, protocol: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "max_length": int(self.values["max_length"]),
            "instruction": self.instruction(protocol),
            "scores": 'softmax(logit("no"), logit("yes"))["yes"] after the empty think block',
            "truncation": "body keeps its first max_length - len(prefix) - len(suffix) tokens",
            **({"tokenizer": self.values["tokenizer"]} if self.values.get("tokenizer") else {}),
        }

    def prompt_template_hash(self) -> str:
        return PROMPT_TEMPLATE_HASH

    def pair_prompt(self, query: str, passage: str, protocol: Mapping[str, Any]) -> str:
        body = BODY.format(instruction=self.instruction(protocol), query=query, doc=passage)
        budget = int(self.values["max_length"]) - self._frame_tokens()
        ids = self.tokenizer(body, add_special_tokens=False).input_ids
        if len(ids) > budget:
            body = self.tokenizer.decode(ids[:max(budget, 0)])
        return PREFIX + body + SUFFIX

    def _frame_tokens(self) -> int:
        if not hasattr(self, "_frame"):
            self._frame = (len(self.tokenizer(PREFIX, add_special_tokens=False).input_ids)
                           + len(self.tokenizer(SUFFIX, add_special_tokens=False).input_ids))
        return self._frame

    def prepare(self, protocol: Mapping[str, Any]) -> None:
        self._yes = single_token_id(self.tokenizer, "yes", "positive")
        self._no = single_token_id(self.tokenizer, "no", "negative")

    async def score_pair(self, request: RerankRequest, index: int, protocol: Mapping[str, Any]
                         ) -> tuple[float, CallStats]:
        candidate = request.candidates[index]
        prompt = self.pair_prompt(request.query, candidate.text, protocol)
        top, generation = await self.label_logprobs(prompt, (self._no, self._yes),
                                                    f"query {request.qid}, doc {candidate.docid}")
        score = label_probability(top, self._yes, self._no)
        if score is None:  # a backend that dropped a label: nothing decided
            stats = CallStats.of([generation], f"doc {candidate.docid}", "pair", parsed=False, fallback="score_0.5")
            stats.unusable = True
            return 0.5, stats
        return score, CallStats.of([generation], f"doc {candidate.docid}", "pair")
