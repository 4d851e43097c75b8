"""``none``: keep the first-stage order and scores."""

from __future__ import annotations

from rerankers.base import Reranker, RerankContext, RerankerOptions


class NoReranker(Reranker):
    name = "none"

    def __init__(self, options: RerankerOptions | None = None):
        self.options = options

    def rerank(self, requests, context: RerankContext):
        from harness.types import RerankResult

        results = [RerankResult(r.qid, [(c.docid, c.score) for c in r.candidates]) for r in requests]
        context.progress(len(results))
        return results
