"""``none``: keep the first-stage order and scores."""

from __future__ import annotations

from harness.types import RerankResult
from harness.options import OptionSet
from rerankers.base import Reranker, RerankContext


class NoReranker(Reranker):
    name = "none"
    options = OptionSet("reranker none", [])

    def rerank(self, requests, context: RerankContext):
        results = [RerankResult(r.qid, [(c.docid, c.score) for c in r.candidates]) for r in requests]
        context.progress(len(results))
        return results
