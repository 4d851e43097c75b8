"""BM25 first stages, pure Python + scipy (no Java), vectorised over sparse matrices.

* ``bm25`` (alias ``bm25-bright``): BRIGHT's official baseline — gensim ``LuceneBM25Model(k1=0.9, b=0.4)`` over the
  Lucene English analyzer, with the **query side BM25-weighted too**:
  ``w(t, x) = idf(t) · tf / (tf + k1·(1 − b + b·|x|/avgdl))`` for a document *or a query* bag ``x``,
  ``idf(t) = ln(N + 1) − ln(df + 0.5)``, ``score(q, d) = Σ_t w(t, q)·w(t, d)``. Query terms absent from the corpus
  vocabulary are dropped (before the query length is taken, as ``doc2bow`` does). Like BRIGHT, zero-score documents
  fill the list when fewer than k documents match (ties keep corpus order).
* ``bm25-lucene``: standard Lucene/Anserini BM25 (pyserini ``set_bm25(0.9, 0.4)``): same analyzer and idf, document
  lengths through Lucene's one-byte encoding (``SmallFloat.intToByte4``), float32, and every query token counted
  once (``score = Σ_t qtf(t)·w(t, d)``); only matching documents are returned.

Both remove the query's excluded documents *before* the top-k cut, so k candidates remain. An empty query (nothing
left after stop words) gets an empty ranking and is counted in the report. Duplicate docids in a corpus keep their
first occurrence (counted).

The analysed corpus is cached on disk (``$HARNESS_CACHE_DIR/bm25/<key>/``), keyed by the corpus content hash and the
analyzer version; a manifest with sha256 checksums guards it, and a stale or corrupted cache is rebuilt with a
warning, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from harness.errors import HarnessError
from harness.files import TempDir, recover_directory, sha256_file
from harness.first_stage.analyzer import ANALYZER_VERSION, Analyzer, default_analyzer
from harness.first_stage.base import (
    FirstStage, FirstStageOptions, FirstStageResult, top_k_indices, unique_corpus,
)
from harness.paths import cache_dir

log = logging.getLogger(__name__)

K1 = 0.9
B = 0.4
VARIANTS = ("bright", "lucene")
_PARALLEL_MIN_DOCS = 20_000  # below this, process start-up costs more than analysing in one process


# --- Lucene's one-byte length encoding ------------------------------------------------------------------------

_NUM_FREE_VALUES = 24


def _int_to_byte4(length: int) -> int:
    if length < _NUM_FREE_VALUES:
        return length
    v = length - _NUM_FREE_VALUES
    n = v.bit_length()
    if n < 4:
        code = v
    else:
        shift = n - 4
        code = ((shift + 1) << 3) | ((v >> shift) & 7)
    return _NUM_FREE_VALUES + code


def _byte4_to_int(byte: int) -> int:
    if byte < _NUM_FREE_VALUES:
        return byte
    code = byte - _NUM_FREE_VALUES
    if code < 8:
        v = code
    else:
        shift = (code >> 3) - 1
        v = ((code & 7) | 8) << shift
    return _NUM_FREE_VALUES + v


LUCENE_LENGTH_TABLE = np.array([_byte4_to_int(i) for i in range(256)], dtype=np.float64)


def lucene_length(length: int) -> int:
    """The document length Lucene's BM25 sees after storing ``length`` in one byte."""
    return int(LUCENE_LENGTH_TABLE[_int_to_byte4(int(length))])


# --- scoring core (pure functions over bags of terms; tested against hand-computed vectors) --------------------

def idf(n_docs: int, df: np.ndarray) -> np.ndarray:
    return np.log(n_docs + 1.0) - np.log(df + 0.5)


def _saturate(tf, length, avgdl: float, k1: float, b: float):
    return tf / (tf + k1 * (1.0 - b + b * length / avgdl))


@dataclass
class _Corpus:
    """The analysed corpus: term counts per document, in corpus order."""

    docids: list[str]
    vocab: dict[str, int]
    counts: "object"  # scipy.sparse.csr_matrix, docs × terms, int32 counts
    lengths: np.ndarray  # analysed tokens per document
    report: dict[str, int]

    @property
    def avgdl(self) -> float:
        return float(self.lengths.sum()) / max(1, len(self.docids))

    def df(self) -> np.ndarray:
        return np.bincount(self.counts.indices, minlength=len(self.vocab)).astype(np.float64)


def _doc_weights(corpus: _Corpus, variant: str, k1: float, b: float):
    """Document-side BM25 weights as a terms × docs CSR matrix: a query block multiplies only its terms' rows."""
    counts = corpus.counts.tocsr()
    n_docs = len(corpus.docids)
    term_idf = idf(n_docs, corpus.df())
    lengths = corpus.lengths.astype(np.float64)
    if variant == "lucene":
        lengths = LUCENE_LENGTH_TABLE[[_int_to_byte4(int(x)) for x in corpus.lengths]] if n_docs else lengths
    row_of_nnz = np.repeat(np.arange(n_docs), np.diff(counts.indptr))
    tf = counts.data.astype(np.float64)
    data = term_idf[counts.indices] * _saturate(tf, lengths[row_of_nnz], corpus.avgdl, k1, b)
    dtype = np.float32 if variant == "lucene" else np.float64
    from scipy import sparse

    weights = sparse.csr_matrix((data.astype(dtype), counts.indices, counts.indptr), shape=counts.shape)
    return weights.T.tocsr(), term_idf


def _query_matrix(corpus: _Corpus, queries: list[list[str]], variant: str, term_idf: np.ndarray, k1: float,
                  b: float):
    from scipy import sparse

    rows, cols, vals = [], [], []
    avgdl = corpus.avgdl
    for i, terms in enumerate(queries):
        bag: dict[int, int] = {}
        for t in terms:
            j = corpus.vocab.get(t)
            if j is not None:
                bag[j] = bag.get(j, 0) + 1
        if not bag:
            continue
        ids = np.fromiter(bag.keys(), dtype=np.int64)
        qtf = np.fromiter(bag.values(), dtype=np.float64)
        if variant == "bright":
            weights = term_idf[ids] * _saturate(qtf, qtf.sum(), avgdl, k1, b)
        else:
            weights = qtf
        rows.extend([i] * len(ids))
        cols.extend(ids.tolist())
        vals.extend(weights.tolist())
    dtype = np.float32 if variant == "lucene" else np.float64
    return sparse.csr_matrix((np.array(vals, dtype=dtype), (rows, cols)), shape=(len(queries), len(corpus.vocab)))


def score_bags(doc_bags: list[list[str]], query_bags: list[list[str]], variant: str = "bright", k1: float = K1,
               b: float = B) -> np.ndarray:
    """Dense queries × docs scores for pre-analysed bags (the scoring core, exposed for tests and tools)."""
    corpus = _corpus_from_bags([str(i) for i in range(len(doc_bags))], doc_bags)
    weights_t, term_idf = _doc_weights(corpus, variant, k1, b)
    return _score_block(_query_matrix(corpus, query_bags, variant, term_idf, k1, b), weights_t)


def _score_block(queries, weights_t) -> np.ndarray:
    """Dense queries × docs scores: sparse queries (CSR, terms sorted) × the terms × docs weights (CSR). Each score
    sums its query's terms in ascending term order — the order of the earlier per-term product, so scores are
    bit-identical — and touches only the postings of the query's own terms (≈7× faster than multiplying the
    transposed slice by dense query vectors, whose scattered writes miss the cache)."""
    if queries.nnz == 0:
        return np.zeros((queries.shape[0], weights_t.shape[1]))
    queries = queries.tocsr()
    queries.sort_indices()
    return np.asarray((queries @ weights_t).toarray(), dtype=np.float64)


def _count_terms(bags: Iterable[list[str]]):
    """Term counts of a run of documents with a local vocabulary: (terms, indptr, indices, data, lengths)."""
    vocab: dict[str, int] = {}
    indptr, indices, data, lengths = [0], [], [], []
    for bag in bags:
        counted: dict[int, int] = {}
        for term in bag:
            j = vocab.setdefault(term, len(vocab))
            counted[j] = counted.get(j, 0) + 1
        indices.extend(counted)
        data.extend(counted.values())
        indptr.append(len(indices))
        lengths.append(len(bag))
    return (list(vocab), np.array(indptr, dtype=np.int64), np.array(indices, dtype=np.int32),
            np.array(data, dtype=np.int32), np.array(lengths, dtype=np.int64))


def _merge_counts(docids: list[str], chunks, report: dict[str, int] | None = None) -> _Corpus:
    """One corpus from consecutive chunks; global term ids in order of first appearance, as one pass would give."""
    from scipy import sparse

    vocab: dict[str, int] = {}
    indptrs, indices, data, lengths, offset = [np.zeros(1, dtype=np.int64)], [], [], [], 0
    for terms, indptr, local_indices, counts, chunk_lengths in chunks:
        mapping = np.fromiter((vocab.setdefault(t, len(vocab)) for t in terms), dtype=np.int32, count=len(terms))
        indices.append(mapping[local_indices] if len(terms) else local_indices)
        data.append(counts)
        indptrs.append(indptr[1:] + offset)
        offset += int(indptr[-1])
        lengths.append(chunk_lengths)
    counts_matrix = sparse.csr_matrix((np.concatenate(data) if data else np.zeros(0, np.int32),
                                       np.concatenate(indices) if indices else np.zeros(0, np.int32),
                                       np.concatenate(indptrs)), shape=(len(docids), len(vocab)))
    counts_matrix.sort_indices()
    all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    return _Corpus(docids, vocab, counts_matrix, all_lengths, dict(report or {}))


def _corpus_from_bags(docids: list[str], bags: Iterable[list[str]], report: dict[str, int] | None = None) -> _Corpus:
    return _merge_counts(docids, [_count_terms(bags)], report)


# --- building and caching the analysed corpus -----------------------------------------------------------------

def _analyze_and_count(texts: list[str]):
    """Term counts of a chunk, the same as ``_count_terms(analyzer(t) for t in texts)`` but with the per-token work
    in C: raw tokens are mapped to local term ids through one dict (a distinct raw token is analysed once), and
    counting is one ``np.unique`` over (document, term) keys."""
    analyzer = default_analyzer()  # one per process: its token → term memo carries over between chunks
    flat: list[str] = []
    raw_lengths = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        tokens = analyzer.raw_tokens(text)
        raw_lengths[i] = len(tokens)
        flat += tokens
    vocab: dict[str, int] = {}
    local: dict[str, int] = {}
    for token in dict.fromkeys(flat):  # first appearance order, as one pass over the chunk gives
        term = analyzer.term(token)
        local[token] = vocab.setdefault(term, len(vocab)) if term else -1
    ids = np.fromiter(map(local.__getitem__, flat), dtype=np.int64, count=len(flat))
    docs = np.repeat(np.arange(len(texts), dtype=np.int64), raw_lengths)
    kept = ids >= 0
    ids, docs = ids[kept], docs[kept]
    lengths = np.bincount(docs, minlength=len(texts)).astype(np.int64)
    n_terms = max(1, len(vocab))
    keys, counts = np.unique(docs * n_terms + ids, return_counts=True)
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // n_terms, minlength=len(texts)), out=indptr[1:])
    return (list(vocab), indptr, (keys % n_terms).astype(np.int32), counts.astype(np.int32), lengths)


def _analyze_corpus(docids: list[str], texts: list[str], report: dict[str, int], progress) -> _Corpus:
    """Analyse in worker processes when the corpus is large; workers send back compact numpy term counts."""
    workers = min(os.cpu_count() or 1, 8)
    chunk = 4000
    parts = [texts[i:i + chunk] for i in range(0, len(texts), chunk)]
    chunks = []
    if len(texts) < _PARALLEL_MIN_DOCS or workers < 2:
        for part in parts:
            chunks.append(_analyze_and_count(part))
            progress(len(part))
    else:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for part, counted in zip(parts, pool.imap(_analyze_and_count, parts)):
                chunks.append(counted)
                progress(len(part))
    corpus = _merge_counts(docids, chunks, report)
    corpus.report["empty_documents"] = int((corpus.lengths == 0).sum())
    return corpus


def _build_corpus(task, progress_factory) -> _Corpus:
    docids, texts, duplicates = unique_corpus(task)
    report = {"duplicate_docids": duplicates, "empty_documents": 0}
    tick = progress_factory(f"{task.name}: BM25 analysing {len(docids):,} documents", len(docids))
    return _analyze_corpus(docids, texts, report, tick)


_FILES = ("counts.npz", "docids.json", "vocab.json")


def _save(corpus: _Corpus, directory: Path, key_info: dict) -> None:
    from scipy import sparse

    with TempDir(directory) as tmp:
        sparse.save_npz(tmp / "counts.npz", corpus.counts, compressed=False)
        (tmp / "docids.json").write_text(json.dumps(corpus.docids, ensure_ascii=False), encoding="utf-8")
        (tmp / "vocab.json").write_text(json.dumps(list(corpus.vocab), ensure_ascii=False), encoding="utf-8")
        manifest = {**key_info, "lengths": corpus.lengths.tolist(), "report": corpus.report,
                    "sha256": {name: sha256_file(tmp / name) for name in _FILES}}
        (tmp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _load(directory: Path, key_info: dict) -> _Corpus | None:
    """The cached corpus, or None (with a warning) when it is missing, stale or damaged."""
    from scipy import sparse

    recover_directory(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        stale = [k for k, v in key_info.items() if manifest.get(k) != v]
        if stale:
            raise ValueError(f"stale ({', '.join(stale)} changed)")
        for name in _FILES:
            if sha256_file(directory / name) != manifest["sha256"][name]:
                raise ValueError(f"{name} fails its checksum")
        counts = sparse.load_npz(directory / "counts.npz").tocsr()
        docids = json.loads((directory / "docids.json").read_text(encoding="utf-8"))
        vocab_list = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
        lengths = np.array(manifest["lengths"], dtype=np.int64)
        if counts.shape != (len(docids), len(vocab_list)) or len(lengths) != len(docids):
            raise ValueError("inconsistent shapes")
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        log.warning("BM25 index cache %s is unusable (%s); rebuilding it.", directory, exc)
        return None
    return _Corpus(docids, {t: i for i, t in enumerate(vocab_list)}, counts, lengths, manifest.get("report", {}))


def load_or_build_corpus(task, cache_root: Path | None = None, progress_factory=None) -> tuple[_Corpus, bool]:
    """(analysed corpus, whether it came from the cache)."""
    progress_factory = progress_factory or _progress_factory()
    fingerprint = task.corpus_fingerprint()
    key_info = {"corpus_sha256": fingerprint, "analyzer": ANALYZER_VERSION}
    key = hashlib.sha256(json.dumps(key_info, sort_keys=True).encode()).hexdigest()[:24]
    try:
        directory = (cache_root or cache_dir("bm25")) / key
    except HarnessError as exc:  # no cache directory can be made: index in memory only
        log.warning("%s", exc)
        return _build_corpus(task, progress_factory), False
    corpus = _load(directory, key_info)
    if corpus is not None:
        return corpus, True
    corpus = _build_corpus(task, progress_factory)
    try:
        _save(corpus, directory, key_info)
    except OSError as exc:  # a read-only or full cache: the run goes on, the index is rebuilt next time
        log.warning("BM25 index not cached: %s is not writable (%s). Set HARNESS_CACHE_DIR to a writable directory "
                    "to keep it.", directory.parent, exc.strerror or exc)
    return corpus, False


def _progress_factory():
    def factory(description: str, total: int):
        from rich.console import Console
        from rich.progress import Progress

        progress = Progress(console=Console(stderr=True), transient=True)
        progress.start()
        from rich.markup import escape

        task_id = progress.add_task(escape(description), total=total)
        done = [0]

        def tick(n: int) -> None:
            progress.advance(task_id, n)
            done[0] += n
            if done[0] >= total:
                progress.stop()

        return tick

    return factory


# --- the first stage ------------------------------------------------------------------------------------------

class BM25FirstStage(FirstStage):
    def __init__(self, variant: str, k1: float = K1, b: float = B, backend: str = "python"):
        if variant not in VARIANTS:
            raise HarnessError(f"Unknown BM25 variant {variant!r}; use one of {', '.join(VARIANTS)}.")
        if backend not in ("python", "pyserini"):
            raise HarnessError(f"Unknown --bm25-backend {backend!r}; use python (default) or pyserini.")
        self.variant = variant
        self.name = "bm25" if variant == "bright" else "bm25-lucene"
        self.k1 = k1
        self.b = b
        self.backend = backend

    def params(self) -> dict:
        return {"variant": self.variant, "k1": self.k1, "b": self.b, "analyzer": ANALYZER_VERSION,
                "backend": self.backend,
                "query_side": "bm25-weighted (gensim LuceneBM25Model)" if self.variant == "bright" else "qtf",
                "length_encoding": "lucene 1-byte" if self.variant == "lucene" else "exact"}

    def identity(self) -> dict:
        return {"spec": self.name, "variant": self.variant, "k1": self.k1, "b": self.b, "analyzer": ANALYZER_VERSION,
                "backend": self.backend}

    def retrieve(self, task, options: FirstStageOptions) -> FirstStageResult:
        if self.backend == "pyserini":
            from harness.first_stage._pyserini import retrieve_with_pyserini

            return retrieve_with_pyserini(self, task, options)
        corpus, cached = load_or_build_corpus(task, Path(options.cache_dir) / "bm25" if options.cache_dir else None)
        queries = task.queries(options.query_field)
        qids = list(queries)
        analyzer = Analyzer()
        bags = [analyzer(queries[q]) for q in qids]
        weights_t, term_idf = _doc_weights(corpus, self.variant, self.k1, self.b)
        doc_index = {d: i for i, d in enumerate(corpus.docids)}
        report = dict(corpus.report)
        report["empty_queries"] = 0
        report["excluded_removed"] = 0
        run = {}
        block = 64
        for start in range(0, len(qids), block):
            block_qids = qids[start:start + block]
            matrix = _query_matrix(corpus, bags[start:start + block], self.variant, term_idf, self.k1, self.b)
            scores = _score_block(matrix, weights_t)
            for row, qid in enumerate(block_qids):
                if matrix.indptr[row] == matrix.indptr[row + 1]:
                    report["empty_queries"] += 1
                    run[qid] = []
                    continue
                s = scores[row]
                for docid in task.excluded.get(qid, ()):
                    i = doc_index.get(docid)
                    if i is not None:
                        s[i] = -np.inf
                        report["excluded_removed"] += 1
                top = top_k_indices(s, options.top_k, positive_only=self.variant == "lucene")
                run[qid] = [(corpus.docids[i], float(s[i])) for i in top]
        return FirstStageResult(
            run=run,
            source=f"{self.name} (k1={self.k1}, b={self.b}, {ANALYZER_VERSION}, query field {options.query_field})",
            sha256=None,
            params={**self.params(), "index_cached": cached, "documents": len(corpus.docids),
                    "vocabulary": len(corpus.vocab), "avgdl": round(corpus.avgdl, 4)},
            report={k: v for k, v in report.items() if v},
        )


def _backend(options: FirstStageOptions) -> str:
    return str(options.get("bm25_backend") or "python")


def _no_argument(name: str, argument: str | None) -> None:
    if argument:
        raise HarnessError(f"First stage {name!r} takes no argument (got {name}:{argument}).")


def bright_bm25(argument: str | None, options: FirstStageOptions) -> BM25FirstStage:
    _no_argument("bm25", argument)
    return BM25FirstStage("bright", backend=_backend(options))


def lucene_bm25(argument: str | None, options: FirstStageOptions) -> BM25FirstStage:
    _no_argument("bm25-lucene", argument)
    return BM25FirstStage("lucene", backend=_backend(options))


__all__ = ["BM25FirstStage", "bright_bm25", "lucene_bm25", "lucene_length", "score_bags", "idf", "math"]
