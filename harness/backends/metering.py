"""Engine time of model calls, measured so it survives the cache.

``ShareClock`` splits the wall time during which the engine is busy (at least one call in flight) among the calls in
flight: during an interval with k calls running, each gets 1/k of it. The shares of a run's calls add up exactly to
its engine-busy time — what the ReasonRank authors time (Σ wall time of their batched ``generate`` calls) — while
each call keeps its own share. ``MeteredBackend`` (directly around the engine, inside the cache) stores the share in
``Generation.engine_seconds`` with the hardware the call ran on, so a cache hit or a replay reports the original
cost instead of looking free.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from harness.llm import Backend, BackendWrapper, Generation, GenerationRequest


class ShareClock:
    def __init__(self):
        self._lock = threading.Lock()
        self._active = 0
        self._last = time.perf_counter()
        self._integral = 0.0  # ∫ dt / k over the busy time: a call's share = integral(exit) - integral(entry)
        self._busy = 0.0

    def _advance(self, now: float) -> None:
        if self._active:
            self._integral += (now - self._last) / self._active
            self._busy += now - self._last
        self._last = now

    def enter(self) -> float:
        with self._lock:
            self._advance(time.perf_counter())
            self._active += 1
            return self._integral

    def exit(self, entered: float) -> float:
        with self._lock:
            self._advance(time.perf_counter())
            self._active -= 1
            return self._integral - entered

    @property
    def busy_seconds(self) -> float:
        with self._lock:
            self._advance(time.perf_counter())
            return self._busy


class MeteredBackend(BackendWrapper):
    """Stamps every fresh generation with its engine-time share and the hardware it ran on."""

    def __init__(self, inner: Backend):
        super().__init__(inner)
        self.clock = ShareClock()
        self.fresh_calls = 0

    async def agenerate(self, request: GenerationRequest) -> Generation:
        entered = self.clock.enter()
        try:
            generation = await self.inner.agenerate(request)
        finally:
            share = self.clock.exit(entered)
        if not generation.cached:
            self.fresh_calls += 1
            generation.engine_seconds = share
            generation.hardware = self.inner.hardware()
        return generation

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()
