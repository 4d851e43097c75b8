"""Setwise reranking: "which of these documents is most relevant?" inside a top-k sort (ielab/llm-rankers).

The drivers follow ``llmrankers/setwise.py``'s ``heapSort``/``heapify`` and ``bubblesort`` step for step, so a model
sees the same comparisons in the same order as in the original:

* heapsort: a max-heap in which each node has ``num_child`` children; a comparison shows the node followed by its
  children and the chosen one moves up (an unreadable answer keeps the node). After building the heap, the root is
  swapped to the end ``k`` times (re-heapifying between swaps) and the list is reversed, so the first ``k`` are the
  top ``k`` in order.
* bubblesort: ``k`` passes of windows of ``num_child + 1`` moving from the bottom to position ``i``; the chosen one
  is swapped to the window's top (with the original's early-stop bookkeeping, which can skip the bottom of the list
  in later passes, so with ties its top k is not always the true top k). Windows of one or zero documents, which the
  original still sends to the model, are skipped: their answer cannot move anything.

The result is the sorted top ``k`` followed by every other candidate in its first-stage order; scores are ranks
(``-1, -2, …`` like the original). Each comparison depends on the previous one, so a query's comparisons are
sequential; queries run concurrently.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from typing import Any, Awaitable, Callable, ClassVar, Mapping, Sequence, TypeVar

from harness.errors import HarnessError
from harness.types import CallStats, RerankRequest, RerankResult
from rerankers._llm import LLMReranker
from rerankers.base import RerankContext

T = TypeVar("T")
# the items of one comparison, in the order shown -> the 0-based index of the chosen one, or None (unreadable)
Choose = Callable[[list[T]], Awaitable["int | None"]]


def _chosen(choice: int | None, size: int) -> int:
    return choice if choice is not None and 0 <= choice < size else 0


async def heapsort_top_k(items: Sequence[T], k: int, num_child: int, choose: Choose) -> list[T]:
    """The top ``k`` of ``items`` in order (then the rest in their given order), by llm-rankers' heapsort."""
    if num_child < 1 or k < 1:
        raise HarnessError(f"Setwise needs num_child >= 1 and k >= 1 (got num_child {num_child}, k {k}).")
    arr = list(items)
    n = len(arr)

    async def heapify(size: int, i: int) -> None:
        while num_child * i + 1 < size:  # the node has children
            inds = [i] + list(range(num_child * i + 1, min(num_child * (i + 1) + 1, size)))
            largest = inds[_chosen(await choose([arr[j] for j in inds]), len(inds))]
            if largest == i:
                return
            arr[i], arr[largest] = arr[largest], arr[i]
            i = largest

    for i in range(n // num_child, -1, -1):
        await heapify(n, i)
    ranked = 0
    for i in range(n - 1, 0, -1):
        arr[i], arr[0] = arr[0], arr[i]
        ranked += 1
        if ranked == k:
            break
        await heapify(i, 0)
    return _top_then_rest(list(reversed(arr)), items, k)


async def bubblesort_top_k(items: Sequence[T], k: int, num_child: int, choose: Choose) -> list[T]:
    """The top ``k`` of ``items`` in order (then the rest in their given order), by llm-rankers' bubblesort."""
    if num_child < 1 or k < 1:
        raise HarnessError(f"Setwise needs num_child >= 1 and k >= 1 (got num_child {num_child}, k {k}).")
    ranking = list(items)
    n = len(ranking)
    bottom = n - (num_child + 1)
    last_start = bottom
    for i in range(min(k, n)):
        start, end = last_start, last_start + num_child + 1
        changed = False
        while True:
            start = max(start, i)
            window = ranking[start:end]
            # the original also "compares" windows of one or zero documents (a prompt with nothing to choose from);
            # the answer cannot move anything, so no model call is made
            best = _chosen(await choose(window), len(window)) if len(window) > 1 else 0
            if best != 0:
                ranking[start], ranking[start + best] = ranking[start + best], ranking[start]
                if not changed:
                    changed = True
                    if last_start != bottom and best == len(window) - 1:
                        last_start += len(window) - 1
            if start == i:
                break
            if not changed:
                last_start -= num_child
            start -= num_child
            end -= num_child
    return _top_then_rest(ranking, items, k)


def _top_then_rest(ranking: list[T], original: Sequence[T], k: int) -> list[T]:
    top = ranking[:k]
    chosen = {id(x) for x in top}
    return top + [x for x in original if id(x) not in chosen]


SORTS = {"heapsort": heapsort_top_k, "bubblesort": bubblesort_top_k}


class SetwiseLLMReranker(LLMReranker):
    """Shared plumbing of the setwise rerankers: the sort driver, call records, prompt preview."""

    family = "setwise"
    outputs_scores: ClassVar[bool] = False

    @property
    def num_child(self) -> int:
        return int(self.values["num_child"])

    @property
    def top_k(self) -> int:
        return int(self.values["k"])

    @property
    def method(self) -> str:
        return str(self.values["method"])

    @abstractmethod
    def compare_prompt(self, query: str, passages: Sequence[str], protocol: Mapping[str, Any]) -> str:
        """The exact prompt of one comparison over these passages, in the order shown."""

    @abstractmethod
    async def compare(self, request: RerankRequest, indices: list[int], protocol: Mapping[str, Any],
                      number: int) -> tuple[int | None, CallStats]:
        """Which of the candidates ``indices`` (shown in this order) the model picks: a position in ``indices``."""

    def shown_order(self, qid: str, number: int, size: int) -> list[int]:
        """The order in which comparison ``number`` of query ``qid`` shows its ``size`` documents."""
        return list(range(size))

    def preview_prompt(self, request: RerankRequest, index: int, protocol: Mapping[str, Any]) -> tuple[str, str]:
        """Heap-building comparison ``index`` (``--window``; 0 = the last parent with its children, the first
        comparison a query makes), its documents in the order comparison number ``index`` shows them."""
        n = len(request.candidates)
        parents = [i for i in range(n // self.num_child, -1, -1) if self.num_child * i + 1 < n]
        if not 0 <= index < len(parents):
            raise HarnessError(f"Query {request.qid!r} has {len(parents)} heap-building comparison(s) for {n} "
                               f"candidates (num_child {self.num_child}); --window must be 0..{len(parents) - 1}.")
        i = parents[index]
        inds = [i] + list(range(self.num_child * i + 1, min(self.num_child * (i + 1) + 1, n)))
        shown = [inds[j] for j in self.shown_order(request.qid, index, len(inds))]
        return (f"comparison of candidates {shown}",
                self.compare_prompt(request.query, [request.candidates[j].text for j in shown], protocol))

    async def _arerank(self, requests: Sequence[RerankRequest], context: RerankContext) -> list[RerankResult]:
        sort = SORTS[self.method]
        limit = context.limit or asyncio.Semaphore(max(1, self.execution.concurrency))

        async def one_query(request: RerankRequest) -> RerankResult:
            calls: list[CallStats] = []

            async def choose(indices: list[int]) -> int | None:
                choice, stats = await self.compare(request, indices, context.protocol, len(calls))
                calls.append(stats)
                return choice

            async with limit:
                order = await sort(list(range(len(request.candidates))), self.top_k, self.num_child, choose)
            context.progress(1)
            return RerankResult(request.qid, [(request.candidates[i].docid, float(-(rank + 1)))
                                              for rank, i in enumerate(order)], calls)

        return list(await asyncio.gather(*(one_query(r) for r in requests)))
