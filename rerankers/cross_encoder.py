"""Cross-encoders: any sequence-classification reranker (cross-encoder/ms-marco-MiniLM-L-6-v2, BAAI/bge-reranker-v2-m3,
mixedbread-ai/mxbai-rerank-*-v1, …) scoring each (query, passage) pair with its classification head.

The pair is tokenized as ``tokenizer(query, passage, truncation="longest_first", max_length=…)`` — what
sentence-transformers' ``CrossEncoder.predict`` and FlagEmbedding's ``FlagReranker.compute_score`` do — and the
score is the head's logit (one label; no sigmoid, which would not change the order) or the log-probability of the
last label (several labels). ``max_length`` defaults to the tokenizer's ``model_max_length`` capped by the model's
positions (sentence-transformers' choice); FlagReranker's own default is 512 (``--reranker-arg max_length=512``).

Needs the ``score`` capability: ``--backend hf`` loads the weights with ``AutoModelForSequenceClassification``;
``--backend openai`` posts to the score API of ``vllm serve`` running the cross-encoder. Models whose scoring is a
language-model head (mxbai-rerank-v2, bge-reranker-v2-gemma, Qwen3-Reranker) are not cross-encoders here.
"""

from __future__ import annotations

from typing import Any, Mapping

from harness.llm import score_request
from harness.options import Option
from harness.types import CallStats, RerankRequest
from rerankers._llm import MODEL_OPTIONS
from rerankers._pointwise import PointwiseLLMReranker

DEFAULT_MODEL = "cross-encoder/ms-marco-MiniLM-L-6-v2"

OPTIONS = MODEL_OPTIONS.extended("reranker cross-encoder", [
    Option("max_length", int, None, "pair length in tokens, longest_first truncation (default: the tokenizer's "
           "model_max_length capped by the model's positions)", minimum=8,
           source="sentence-transformers CrossEncoder; FlagReranker uses 512"),
])


class CrossEncoderReranker(PointwiseLLMReranker):
    name = "cross-encoder"
    family = "cross-encoder"
    default_model = DEFAULT_MODEL
    options = OPTIONS
    model_head = "sequence-classification"
    required_capabilities = frozenset({"score"})

    def engine_defaults(self) -> dict[str, dict[str, Any]]:
        if self.values.get("max_length") is None:
            return {}
        return {"hf": {"max_length": int(self.values["max_length"])}}

    def resolve(self, protocol: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "max_length": self.values.get("max_length") or "model_max_length (capped by the model's positions)",
            "pair": "tokenizer(query, passage, truncation='longest_first')",
            "scores": "classification logit (one label) / log-prob of the last label",
            **({"tokenizer": self.values["tokenizer"]} if self.values.get("tokenizer") else {}),
        }

    def pair_prompt(self, query: str, passage: str, protocol: Mapping[str, Any]) -> str:
        """What the encoder reads: the tokenized pair, decoded (special tokens shown)."""
        length = self.values.get("max_length")
        encoded = self.tokenizer(query, passage, truncation="longest_first",
                                 max_length=int(length) if length else None)
        return self.tokenizer.decode(encoded["input_ids"])

    async def score_pair(self, request: RerankRequest, index: int, protocol: Mapping[str, Any]
                         ) -> tuple[float, CallStats]:
        candidate = request.candidates[index]
        generation = await self.generate(score_request(request.query, candidate.text,
                                                       label=f"query {request.qid}, doc {candidate.docid}"))
        return float(generation.text), CallStats.of([generation], f"doc {candidate.docid}", "pair")
