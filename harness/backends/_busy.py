"""Engine-busy wall time of a backend."""

from __future__ import annotations

import threading
import time


class BusyClock:
    """Wall time during which at least one call was in flight.

    This is the analogue of the ReasonRank reference's ``time_cost`` (Σ wall time of its ``generate`` calls). The
    sum of per-call latencies (``Generation.seconds``) counts overlapping calls once each, so with many queries in
    flight it exceeds the engine's busy time; records can report both.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._active = 0
        self._since = 0.0
        self._total = 0.0

    def __enter__(self) -> "BusyClock":
        with self._lock:
            if self._active == 0:
                self._since = time.perf_counter()
            self._active += 1
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0:
                self._total += time.perf_counter() - self._since

    @property
    def seconds(self) -> float:
        with self._lock:
            return self._total + (time.perf_counter() - self._since if self._active else 0.0)
