"""Task interface: queries, judgments and a corpus.

A task family is one file in ``tasks/`` plus one registry line in ``tasks/__init__.py``. Its registry entry is
a resolver ``f(subset: str | None) -> list[Task]`` (``subset`` is the part after ``/`` in ``bright/biology``;
None means every subset).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from functools import cached_property
from typing import Any, Iterable, Iterator

from harness.errors import HarnessError
from harness.types import Qrels

ORIGINAL = "original"


class Task(ABC):
    benchmark: str = ""  # "bright", "r2med", "beir", "tiny"
    subset: str = ""  # "biology", "Biology", or the directory name for BEIR dirs

    @property
    def name(self) -> str:
        return f"{self.benchmark}/{self.subset}"

    # -- what subclasses provide -------------------------------------------------------------
    @abstractmethod
    def _load_queries(self) -> dict[str, dict[str, str]]:
        """qid -> {field: text}; field ``original`` is required, others are reasoning-expanded variants."""

    @abstractmethod
    def _load_qrels(self) -> Qrels:
        """All judgments, negative grades included (they mark excluded documents)."""

    @abstractmethod
    def iter_docs(self) -> Iterator[tuple[str, str]]:
        """Yield (docid, text) for the whole corpus, in corpus order."""

    @property
    def revision(self) -> str:
        """Dataset version identifier recorded with every result."""
        return "unversioned"

    @property
    def default_first_stage(self) -> str:
        return "bm25"

    def published_run_key(self) -> str:
        """Key of this task in the published first-stage runs (e.g. ``biology``, ``r2med_Biology``)."""
        return self.subset

    # -- derived, cached ----------------------------------------------------------------------
    @cached_property
    def _queries(self) -> dict[str, dict[str, str]]:
        return self._load_queries()

    @cached_property
    def qrels_all(self) -> Qrels:
        """All judgments of the task's queries, negative grades included. Judgments for query ids the task does not
        have cannot be run: they are dropped here (counted in ``qrels_unknown_queries``), never scored as 0."""
        loaded = self._load_qrels()
        known = self._queries
        kept = {q: docs for q, docs in loaded.items() if q in known}
        self._qrels_unknown_queries = len(loaded) - len(kept)
        return kept

    @property
    def qrels_unknown_queries(self) -> int:
        self.qrels_all  # loading sets the count
        return self._qrels_unknown_queries

    @cached_property
    def qrels(self) -> Qrels:
        """Judgments used for scoring: negative grades removed."""
        return {q: {d: r for d, r in docs.items() if r >= 0} for q, docs in self.qrels_all.items()
                if any(r >= 0 for r in docs.values())}

    @cached_property
    def excluded(self) -> dict[str, set[str]]:
        """qid -> docids that must be removed from every ranking before evaluation."""
        out: dict[str, set[str]] = {}
        for q, docs in self.qrels_all.items():
            bad = {d for d, r in docs.items() if r < 0}
            if bad:
                out[q] = bad
        return out

    def queries(self, field: str = ORIGINAL) -> dict[str, str]:
        fields = self.query_fields()
        if field not in fields:
            raise HarnessError(
                f"Task {self.name} has no query field {field!r}. Available: {', '.join(fields)}."
            )
        return {q: f[field] for q, f in self._queries.items() if field in f}

    def query_fields(self) -> list[str]:
        seen: dict[str, None] = {}
        for f in self._queries.values():
            for k in f:
                seen.setdefault(k, None)
        return list(seen) or [ORIGINAL]

    def docs(self, ids: Iterable[str]) -> dict[str, str]:
        """Texts of the given docids (missing ones are absent from the result). Subclasses may use a doc store."""
        wanted = set(ids)
        out: dict[str, str] = {}
        for docid, text in self.iter_docs():
            if docid in wanted and docid not in out:
                out[docid] = text
                if len(out) == len(wanted):
                    break
        return out

    def corpus_fingerprint(self) -> str:
        """sha256 over the corpus contents (docid and text); used to key on-disk indexes."""
        h = hashlib.sha256()
        for docid, text in self.iter_docs():
            h.update(docid.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
            h.update(text.encode("utf-8", "surrogatepass"))
            h.update(b"\x01")
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "benchmark": self.benchmark,
            "subset": self.subset,
            "revision": self.revision,
            "queries": len(self._queries),
            "judged_queries": len(self.qrels),
        }
