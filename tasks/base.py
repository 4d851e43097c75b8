"""Task interface: queries, judgments, a corpus, and the declaration of the benchmark the task belongs to.

A task family is one file in ``tasks/`` with a ``FAMILY = TaskFamily(info, resolve)`` and one registry line in
``tasks/__init__.py``. ``info`` is the family's ``harness.benchmark.BenchmarkInfo`` (subsets, display names, default
first stage, average, protocol hints); ``resolve(subset)`` returns the tasks (``subset`` is the part after ``/`` in
``bright/biology``; None means every official subset). Unknown subsets are errors, never a silent default.
"""

from __future__ import annotations

import difflib
import hashlib
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Iterable, Iterator, Mapping

from harness.benchmark import GENERIC, BenchmarkInfo, SubsetInfo
from harness.errors import HarnessError
from harness.types import Qrels

ORIGINAL = "original"


@dataclass(frozen=True)
class TaskFamily:
    info: BenchmarkInfo
    resolve: Callable[[str | None], list["Task"]]
    canonical: Callable[[str], str] | None = None  # accepted spellings → subset key (raises for unknown names)

    def subset(self, name: str) -> SubsetInfo:
        """The declared subset ``name`` (any accepted spelling); HarnessError with did-you-mean otherwise."""
        found = self.info.subset(self.canonical(name) if self.canonical else name)
        if found is None:
            raise unknown_subset(self.info, name)
        return found


def unknown_subset(info: BenchmarkInfo, name: str) -> HarnessError:
    choices = [s.name for s in info.subsets + info.variants]
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(f'{info.name}/{c}') for c in close)}?" if close else ""
    listing = ", ".join(s.name for s in info.subsets)
    variants = f"; variants: {', '.join(s.name for s in info.variants)}" if info.variants else ""
    return HarnessError(f"Unknown {info.title} subset {name!r}.{hint} Subsets: {listing}{variants}.")


class Task(ABC):
    benchmark: str = ""  # declared benchmark name: "bright", "r2med", "beir", "tiny"
    subset: str = ""  # "biology", "Biology", or the directory name for BEIR dirs
    benchmark_info: BenchmarkInfo | None = None
    subset_info: SubsetInfo = GENERIC
    source: str = "registry"  # or "directory"
    protocol_of: str | None = None  # `--as NAME/SUBSET`

    @property
    def name(self) -> str:
        return f"{self.benchmark}/{self.subset}"

    @property
    def protocol(self) -> Mapping[str, Any]:
        """The declared protocol hints of this subset (empty for a plain local directory)."""
        return self.subset_info.protocol

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
        """Dataset version identifier recorded with every result (of the data actually read)."""
        return "unversioned"

    @property
    def pinned_revision(self) -> str:
        """The version the experiment identity names: the pinned one for hub data, else ``revision``."""
        return self.revision

    @property
    def default_first_stage(self) -> str:
        info = self.benchmark_info
        return (info.default_first_stage if info and info.default_first_stage else None) or "bm25"

    def published_run_key(self) -> str:
        """Key of this task in the published first-stage runs (e.g. ``biology``, ``r2med_Biology``)."""
        return self.subset_info.published_run_key or self.subset

    # -- derived, cached ----------------------------------------------------------------------
    @cached_property
    def quirks(self) -> Counter:
        """Tolerated oddities of the task files (duplicate ids, conflicting judgments, truncated grades), counted."""
        return Counter()

    @cached_property
    def _queries(self) -> dict[str, dict[str, str]]:
        queries = self._load_queries()
        if not queries:
            raise HarnessError(f"Task {self.name} has no queries; nothing can be evaluated. Check its query file.")
        return queries

    @cached_property
    def qrels_all(self) -> Qrels:
        """All judgments of the task's queries, negative grades included. Judgments for query ids the task does not
        have cannot be run: they are dropped here (counted in ``qrels_unknown_queries``), never scored as 0."""
        loaded = self._load_qrels()
        known = self._queries
        kept = {q: docs for q, docs in loaded.items() if q in known}
        self._qrels_unknown_queries = len(loaded) - len(kept)
        self._qrels_loaded_any = bool(loaded)
        return kept

    def require_judgments(self) -> None:
        """Evaluation needs at least one judgment of grade ≥ 0; without one every metric would silently be 0."""
        kept = self.qrels_all
        if not any(grade >= 0 for docs in kept.values() for grade in docs.values()):
            detail = "has no judgments" if not self._qrels_loaded_any else (
                "judges none of its queries" if not kept else "has only negative (excluded) judgments")
            raise HarnessError(f"Task {self.name} {detail}; its metrics would all be 0. Check its qrels "
                               "(query ids must match the queries file; relevant documents need a grade ≥ 0).")

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

    def details(self) -> dict[str, Any]:
        """Family-specific facts for the record (ir_datasets id, HF dataset, …)."""
        return {}


class InMemoryDocs:
    """A docid → text store built from ``iter_docs`` on first lookup (first occurrence of a docid wins)."""

    @cached_property
    def _doc_texts(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for docid, text in self.iter_docs():  # type: ignore[attr-defined]
            out.setdefault(docid, text)
        return out

    def docs(self, ids: Iterable[str]) -> dict[str, str]:
        store = self._doc_texts
        return {d: store[d] for d in ids if d in store}
