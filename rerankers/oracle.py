"""``oracle``: sort candidates by their qrels grade (an upper bound for the candidates, and a metrics sanity check).

Ties keep the first-stage order. Scores are strictly decreasing so the written run's order is the oracle order.
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.types import RerankResult
from harness.options import OptionSet
from rerankers.base import Reranker, RerankContext


class OracleReranker(Reranker):
    name = "oracle"
    options = OptionSet("reranker oracle", [])

    def rerank(self, requests, context: RerankContext):
        if context.qrels is None:
            raise HarnessError("The oracle reranker needs the task's qrels.")
        results = []
        for request in requests:
            grades = context.qrels.get(request.qid, {})
            order = sorted(range(len(request.candidates)),
                           key=lambda i: (-grades.get(request.candidates[i].docid, 0), i))
            n = len(order)
            results.append(RerankResult(request.qid, [(request.candidates[i].docid, float(n - rank))
                                                      for rank, i in enumerate(order)]))
        context.progress(len(results))
        return results
