"""Sliding-window listwise reranking shared by ReasonRank and RankZephyr.

Schedule (reasonrank.md §9, bottom-up): with ``rank_start = 0``, ``rank_end = n`` (the runner already cut the list
to top-k) and ``window = min(window_size, n)``, start at ``(n - window, n)``; while ``end > 0`` and
``start + step != 0``: clamp ``start`` to 0, rerank ``[start, end)``, move both ends up by ``step``.

Scores are positional (§8): after reordering a window, position j keeps the score that was at position j, so the
first-stage score sequence survives and only docids move.

``ListwiseLLMReranker`` holds what ReasonRank and RankZephyr share (window options, the window loop, per-window call
records); subclasses supply the prompt, the sampling parameters and the parser.

Scheduling: each query is one coroutine that runs its windows in order (each window depends on the previous one);
queries run concurrently, at most ``concurrency`` at a time, so a query moves to its next window as soon as its
previous window returns instead of waiting for every query's window k (the authors' lock-step loop). Because a
query's windows stay sequential and queries are independent, the result equals the lock-step order.
"""

from __future__ import annotations

import asyncio
import dataclasses
from abc import abstractmethod
from typing import Any, Awaitable, Callable, ClassVar, Mapping, Sequence

from harness.errors import HarnessError
from harness.llm import Generation, GenerationRequest, SamplingParams
from harness.options import Option, OptionSet
from harness.types import CallStats, Candidate, RerankRequest, RerankResult
from rerankers._llm import MODEL_OPTIONS, LLMReranker
from rerankers.base import RerankContext

Window = tuple[int, int]
# fallbacks after which the window keeps its order: the model's answer decided nothing
UNUSABLE_FALLBACKS = frozenset({"no_ids_window_unchanged", "int_error_window_unchanged",
                                "exception_window_unchanged"})
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


def rankgpt_schedule(n_candidates: int, window_size: int = 20, step: int = 10) -> list[Window]:
    """RankGPT's ``sliding_windows`` (sunnweiwei/RankGPT, also REARANK's): from ``(n - window, n)`` up by ``step``
    while the start stays >= 0. Unlike ReasonRank's schedule it never clamps a last window to position 0, so with 25
    candidates the top 5 are never shown. One deviation: fewer candidates than the window get one window over all of
    them (the original would make no window and leave the list unchanged)."""
    if window_size < 1 or step < 1:
        raise HarnessError(f"Window size and step must be at least 1 (got window {window_size}, step {step}).")
    if n_candidates == 0:
        return []
    if n_candidates <= window_size:
        return [(0, n_candidates)]
    windows: list[Window] = []
    start, end = n_candidates - window_size, n_candidates
    while start >= 0:
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


def uncovered_positions(n_candidates: int, window_size: int, step: int, schedule=window_schedule) -> int:
    """Candidates no window ever shows the model (step > window size; RankGPT's schedule above a multiple)."""
    covered: set[int] = set()
    for start, end in schedule(n_candidates, window_size, step):
        covered.update(range(start, end))
    return n_candidates - len(covered)


async def rerank_listwise(requests: Sequence[RerankRequest], rerank_window: WindowFn, *, window_size: int,
                          step: int, concurrency: int,
                          on_query_done: Callable[[int], None] = lambda n: None,
                          schedule=window_schedule, limit: asyncio.Semaphore | None = None) -> list[RerankResult]:
    """Run every query's windows sequentially, many queries at once; one result per request, same order.
    ``limit``: a semaphore shared with other subsets of the run (default: one of ``concurrency`` for this call)."""
    limit = limit or asyncio.Semaphore(max(1, concurrency))

    async def one_query(request: RerankRequest) -> RerankResult:
        async with limit:
            candidates = list(request.candidates)
            calls: list[CallStats] = []
            for window in schedule(len(candidates), window_size, step):
                start, end = window
                order, stats = await rerank_window(request, tuple(candidates[start:end]), window)
                apply_permutation(candidates, window, order)
                calls.append(stats)
        on_query_done(1)
        return RerankResult(request.qid, [(c.docid, c.score) for c in candidates], calls)

    return list(await asyncio.gather(*(one_query(r) for r in requests)))


def listwise_options(owner: str, extra: Sequence[Option] = (), window: int = 20, step: int = 10) -> OptionSet:
    return MODEL_OPTIONS.extended(owner, [
        Option("window_size", int, window, "passages per window", minimum=1),
        Option("step", int, step, "window stride (bottom-up)", minimum=1),
        *extra,
    ])


class ListwiseLLMReranker(LLMReranker):
    """Shared plumbing of the listwise LLM rerankers: window options, window loop, records."""

    family = "listwise"
    outputs_scores: ClassVar[bool] = False  # positional: the first-stage scores stay, docids move
    options: ClassVar[OptionSet] = listwise_options("reranker listwise")
    schedule = staticmethod(window_schedule)

    @property
    def window_size(self) -> int:
        return int(self.values["window_size"])

    @property
    def step(self) -> int:
        return int(self.values["step"])

    @abstractmethod
    def window_prompt(self, query: str, passages: Sequence[str], settings: Mapping[str, Any]) -> str:
        """The exact prompt string for one window of (raw) passage texts under resolved ``settings``."""

    @abstractmethod
    def sampling_params(self, window_len: int, settings: Mapping[str, Any]) -> SamplingParams:
        """Decoding parameters for a window of ``window_len`` passages."""

    @abstractmethod
    def read_answer(self, generation: Generation, window_len: int) -> tuple[list[int], bool, str | None]:
        """(0-based order over the window, parsed cleanly, fallback name or None); never raises."""

    def preview_prompt(self, request: RerankRequest, index: int, protocol: Mapping[str, Any]) -> tuple[str, str]:
        """(label, prompt) of window ``index`` in processing order (0 = bottom window) over the given order."""
        windows = self.schedule(len(request.candidates), self.window_size, self.step)
        if not 0 <= index < len(windows):
            raise HarnessError(f"Query {request.qid!r} has {len(windows)} window(s) for {len(request.candidates)} "
                               f"candidates (window {self.window_size}, step {self.step}); --window must be "
                               f"0..{len(windows) - 1}.")
        start, end = windows[index]
        texts = [c.text for c in request.candidates[start:end]]
        return f"window {start}-{end}", self.window_prompt(request.query, texts, self.resolve(protocol))

    async def _arerank(self, requests: Sequence[RerankRequest], context: RerankContext):
        settings = self.resolve(context.protocol)
        unreachable = sum(uncovered_positions(len(r.candidates), self.window_size, self.step, self.schedule)
                          for r in requests)
        if unreachable:
            quirks = context.info.setdefault("quirks", {})
            quirks["unreachable_candidates"] = quirks.get("unreachable_candidates", 0) + unreachable
            context.info.setdefault("notes", []).append(
                f"{unreachable} candidate(s) are never shown to the model by the window schedule (window "
                f"{self.window_size}, step {self.step}).")

        async def one_window(request: RerankRequest, candidates: Sequence[Candidate], window: Window):
            start, end = window
            prompt = self.window_prompt(request.query, [c.text for c in candidates], settings)
            params = self.sampling_params(len(candidates), settings)
            generation = await self.generate(
                GenerationRequest(prompt, params, label=f"query {request.qid}, window {start}-{end}"))
            order, parsed, fallback = self.read_answer(generation, len(candidates))
            stats = CallStats.of([generation], f"window {start}-{end}", "window", parsed, fallback,
                                 input_tokens=generation.input_tokens or len(self.tokenizer.encode(prompt)))
            stats.unusable = fallback in UNUSABLE_FALLBACKS
            return order, stats

        return await rerank_listwise(requests, one_window, window_size=self.window_size, step=self.step,
                                     concurrency=self.execution.concurrency, on_query_done=context.progress,
                                     schedule=self.schedule, limit=context.limit)


def digits_permutation(response: str, window_len: int) -> tuple[list[int], str | None]:
    """RankGPT's ``receive_permutation`` on an answer: every non-digit becomes a space, the numbers are 1-based ids,
    duplicates and out-of-range ids are dropped and the missing ones appended in window order. Returns (0-based
    order, fallback): None for a clean permutation, ``permutation_repaired`` when something was dropped or appended,
    ``no_ids_window_unchanged`` when no valid id was found."""
    cleaned = "".join(c if c.isdigit() else " " for c in response)
    seen: list[int] = []
    extra = False
    for token in cleaned.split():
        index = int(token) - 1
        if index in seen or not 0 <= index < window_len:
            extra = True
            continue
        seen.append(index)
    if not seen:
        return list(range(window_len)), "no_ids_window_unchanged"
    order = seen + [i for i in range(window_len) if i not in seen]
    return order, ("permutation_repaired" if extra or len(seen) < window_len else None)
