"""Sliding-window listwise reranking shared by ReasonRank and RankZephyr.

Schedule (reasonrank.md §9, bottom-up): with ``rank_start = 0``, ``rank_end = n`` (the runner already cut the list
to top-k) and ``window = min(window_size, n)``, start at ``(n - window, n)``; while ``end > 0`` and
``start + step != 0``: clamp ``start`` to 0, rerank ``[start, end)``, move both ends up by ``step``.

Scores are positional (§8): after reordering a window, position j keeps the score that was at position j, so the
first-stage score sequence survives and only docids move.

``ListwiseLLMReranker`` holds what ReasonRank and RankZephyr share (options, lazy tokenizer and backend, the
window loop, per-window call records); subclasses supply the prompt, the sampling parameters and the parser.

Scheduling: each query is one coroutine that runs its windows in order (each window depends on the previous one);
queries run concurrently, at most ``concurrency`` at a time, so a query moves to its next window as soon as its
previous window returns instead of waiting for every query's window k (the authors' lock-step loop). Because a
query's windows stay sequential and queries are independent, the result equals the lock-step order.
"""

from __future__ import annotations

import asyncio
import dataclasses
from abc import abstractmethod
from typing import Any, Awaitable, Callable, Sequence

from harness.errors import HarnessError
from harness.llm import Generation, GenerationRequest, SamplingParams
from harness.types import CallStats, Candidate, RerankRequest, RerankResult
from rerankers._llm import LLMReranker
from rerankers.base import RerankContext, RerankerOptions

Window = tuple[int, int]
# (request, the window's current candidates, (start, end)) -> (0-based order over the window, stats of the call)
WindowFn = Callable[[RerankRequest, Sequence[Candidate], Window], Awaitable[tuple[list[int], CallStats]]]


def window_schedule(n_candidates: int, window_size: int = 20, step: int = 10) -> list[Window]:
    """The (start, end) windows in processing order (bottom window first)."""
    if window_size < 1 or step < 1:
        raise HarnessError(f"Window size and step must be at least 1 (got window {window_size}, step {step}).")
    rank_start, rank_end = 0, n_candidates
    window = min(window_size, n_candidates)
    start, end = rank_end - window, rank_end
    windows: list[Window] = []
    while end > rank_start and start + step != rank_start:
        start = max(start, rank_start)
        windows.append((start, end))
        start -= step
        end -= step
    return windows


def check_order(order: Sequence[int], window_len: int) -> None:
    if sorted(order) != list(range(window_len)):
        raise AssertionError(f"window order {list(order)} is not a permutation of range({window_len})")


def apply_permutation(candidates: list[Candidate], window: Window, order: Sequence[int]) -> None:
    """Reorder ``candidates[start:end]`` in place by ``order``; scores stay with positions."""
    start, end = window
    before = candidates[start:end]
    check_order(order, len(before))
    for j, x in enumerate(order):
        candidates[start + j] = dataclasses.replace(before[x], score=before[j].score)


async def rerank_listwise(requests: Sequence[RerankRequest], rerank_window: WindowFn, *, window_size: int,
                          step: int, concurrency: int,
                          on_query_done: Callable[[int], None] = lambda n: None) -> list[RerankResult]:
    """Run every query's windows sequentially, many queries at once; one result per request, same order."""
    limit = asyncio.Semaphore(max(1, concurrency))

    async def one_query(request: RerankRequest) -> RerankResult:
        async with limit:
            candidates = list(request.candidates)
            calls: list[CallStats] = []
            for window in window_schedule(len(candidates), window_size, step):
                start, end = window
                order, stats = await rerank_window(request, tuple(candidates[start:end]), window)
                apply_permutation(candidates, window, order)
                calls.append(stats)
        on_query_done(1)
        return RerankResult(request.qid, [(c.docid, c.score) for c in candidates], calls)

    return list(await asyncio.gather(*(one_query(r) for r in requests)))


def backend_description(backend, revision: str | None) -> dict[str, Any]:
    """backend name, weights revision and engine settings (device, dtype…) for a reranker's ``describe``;
    machine-specific entries (cache and traces paths) are left out of the record."""
    described = dict(backend.describe())
    engine = {k: v for k, v in described.items() if k not in ("backend", "model", "revision", "cache", "traces")}
    return {"backend": described.get("backend"), "revision": described.get("revision", revision),
            **({"engine": engine} if engine else {})}


def positive_option(value: int | None, default: int, what: str) -> int:
    if value is None:
        return default
    if int(value) < 1:
        raise HarnessError(f"{what} must be at least 1 (got {value}).")
    return int(value)


class ListwiseLLMReranker(LLMReranker):
    """Shared plumbing of the listwise LLM rerankers: window options, window loop, records."""

    default_window = 20
    default_step = 10

    def __init__(self, options: RerankerOptions | None = None, *, backend=None, tokenizer=None):
        super().__init__(options, backend=backend, tokenizer=tokenizer)
        self.window_size = positive_option(self.options.window_size, self.default_window, "--window-size")
        self.step = positive_option(self.options.step, self.default_step, "--step")

    @abstractmethod
    def window_prompt(self, query: str, passages: Sequence[str], task_name: str) -> str:
        """The exact prompt string for one window of (raw) passage texts."""

    @abstractmethod
    def sampling_params(self, window_len: int) -> SamplingParams:
        """Decoding parameters for a window of ``window_len`` passages."""

    @abstractmethod
    def read_answer(self, generation: Generation, window_len: int) -> tuple[list[int], bool, str | None]:
        """(0-based order over the window, parsed cleanly, fallback name or None); never raises."""

    def preview_prompt(self, request: RerankRequest, index: int, task_name: str) -> tuple[str, str]:
        """(label, prompt) of window ``index`` in processing order (0 = bottom window) over the given order."""
        windows = window_schedule(len(request.candidates), self.window_size, self.step)
        if not 0 <= index < len(windows):
            raise HarnessError(f"Query {request.qid!r} has {len(windows)} window(s) for {len(request.candidates)} "
                               f"candidates (window {self.window_size}, step {self.step}); --window must be "
                               f"0..{len(windows) - 1}.")
        start, end = windows[index]
        texts = [c.text for c in request.candidates[start:end]]
        return f"window {start}-{end}", self.window_prompt(request.query, texts, task_name)

    async def _arerank(self, requests: Sequence[RerankRequest], context: RerankContext):
        async def one_window(request: RerankRequest, candidates: Sequence[Candidate], window: Window):
            start, end = window
            prompt = self.window_prompt(request.query, [c.text for c in candidates], context.task_name)
            params = self.sampling_params(len(candidates))
            generation = await self.generate(
                GenerationRequest(prompt, params, label=f"query {request.qid}, window {start}-{end}"))
            order, parsed, fallback = self.read_answer(generation, len(candidates))
            stats = CallStats(
                input_tokens=generation.input_tokens or len(self.tokenizer.encode(prompt)),
                output_tokens=generation.output_tokens, seconds=generation.seconds, parsed=parsed,
                fallback=fallback, cached=generation.cached, label=f"window {start}-{end}",
            )
            return order, stats

        return await rerank_listwise(requests, one_window, window_size=self.window_size, step=self.step,
                                     concurrency=self.options.concurrency, on_query_done=context.progress)

    def _backend_description(self) -> dict[str, Any]:
        return backend_description(self.backend, self.revision)

