"""First-stage interface: produce top-k candidates per query for a task.

A first stage is one file under ``harness/first_stage/`` plus one line in ``harness/first_stage/__init__.py``.
The registry entry is a factory ``f(argument: str | None, options: FirstStageOptions) -> FirstStage``,
where ``argument`` is the text after ``:`` in specs like ``run:PATH`` (None when absent).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from harness.types import Run



@dataclass(frozen=True)
class FirstStageOptions:
    top_k: int = 100
    query_field: str = "original"  # or e.g. "gpt4_reason" (reasoning-expanded queries)
    cache_dir: str | None = None  # None -> harness.paths.cache_dir()
    extra: tuple[tuple[str, Any], ...] = ()  # plugin-specific options, e.g. (("bm25_backend", "pyserini"),)

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.extra).get(key, default)


@dataclass
class FirstStageResult:
    run: Run  # qid -> [(docid, score)] best first, at most top_k, excluded docs already removed
    source: str  # human-readable origin: a path, URL, or "bm25 k1=0.9 b=0.4 ..."
    sha256: str | None = None  # of the run file, when the candidates came from a file
    params: dict[str, Any] = field(default_factory=dict)
    report: dict[str, int] = field(default_factory=dict)  # quirk counters, e.g. {"duplicate_docids": 3}


class FirstStage(ABC):
    name: str = ""

    @abstractmethod
    def retrieve(self, task, options: FirstStageOptions) -> FirstStageResult:
        """Return candidates for every query of ``task`` (a ``tasks.base.Task``)."""

    def bind(self, tasks) -> "FirstStage":
        """Resolve what depends on the tasks of the experiment (per-subset files); returns the first stage to use."""
        return self

    def pinned_sha256(self, task) -> str | None:
        """The sha256 the candidates' file must have for ``task`` when the first stage pins one (published runs)."""
        return None

    def identity(self) -> dict[str, Any]:
        """What determines the candidates, for the experiment identity (a file by its sha256, never its path).
        ``label`` (optional) is the short name used in group ids."""
        return {"spec": self.name}


def top_k_indices(scores, k: int, positive_only: bool = False):
    """Indices of the k best scores (numpy array), score descending, ties in index (corpus) order — the order of
    a stable sort, as BRIGHT's retrievers produce. ``-inf`` marks removed documents; ``positive_only`` keeps only
    documents with a score above 0 (documents that match the query)."""
    import numpy as np

    valid = scores > 0 if positive_only else np.isfinite(scores)
    n_valid = int(valid.sum())
    if n_valid == 0 or k < 1:
        return np.empty(0, dtype=np.int64)
    k = min(k, n_valid)
    masked = np.where(valid, scores, -np.inf)
    kth = np.partition(masked, masked.size - k)[masked.size - k]
    above = np.flatnonzero(masked > kth)
    at = np.flatnonzero(masked == kth)[: k - above.size]
    chosen = np.concatenate([above, at])
    return chosen[np.lexsort((chosen, -masked[chosen]))]



def unique_corpus(task) -> tuple[list[str], list[str], int]:
    """(docids, texts, duplicates dropped) in corpus order; a repeated docid keeps its first text."""
    from harness.errors import HarnessError

    docids, texts, seen, duplicates = [], [], set(), 0
    for docid, text in task.iter_docs():
        if docid in seen:
            duplicates += 1
            continue
        seen.add(docid)
        docids.append(docid)
        texts.append(text or "")
    if not docids:
        raise HarnessError(f"Task {task.name} has an empty corpus; retrieval needs at least one document.")
    return docids, texts, duplicates
