"""BM25 speed and memory on a synthetic BRIGHT-size corpus.

    python benchmarks/bm25.py [--docs 120000] [--words 120] [--queries 120] [--query-words 60] [--top-k 100]

Each engine runs in its own subprocess (fresh interpreter, peak RSS from getrusage) over the same synthetic corpus
(Zipf-distributed vocabulary) written in BEIR layout:

* ours-bm25 / ours-bm25-lucene: ``harness.first_stage.bm25`` — index = analyse + build sparse matrices (cold, no
  cache), search = score all queries + exclusions + top-k.
* bright-reference: BRIGHT's approach (analyzer → gensim ``Dictionary`` → ``LuceneBM25Model`` → ``SparseMatrixSimilarity``
  → BM25-weighted query bags → full score dict per query, sorted) with the same Python analyzer standing in for
  pyserini's Java one; needs ``gensim``.
* rank_bm25 (``BM25Okapi``) and bm25s (``method="lucene"``) on the same analysed tokens; rank_bm25's search is timed
  on the first ``--slow-queries`` queries and extrapolated (marked ``*``).
* pyserini when it is installed and Java ≥ 21 is available.
Figures are printed as a table (and as JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_corpus(directory: Path, n_docs: int, words: int, n_queries: int, query_words: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "xe", "zu", "pra", "ster", "ion", "ment", "ing"]
    vocab = sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(60000)})
    weights = [1.0 / (rank + 1) ** 1.05 for rank in range(len(vocab))]
    (directory / "qrels").mkdir(parents=True, exist_ok=True)
    with (directory / "corpus.jsonl").open("w") as fh:
        for i in range(n_docs):
            text = " ".join(rng.choices(vocab, weights=weights, k=max(1, int(rng.gauss(words, words / 4)))))
            fh.write(json.dumps({"_id": f"doc{i}", "title": "", "text": text}) + "\n")
    with (directory / "queries.jsonl").open("w") as fh:
        for q in range(n_queries):
            fh.write(json.dumps({"_id": f"q{q}", "text": " ".join(rng.choices(vocab, weights=weights,
                                                                            k=query_words))}) + "\n")
    with (directory / "qrels" / "test.tsv").open("w") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for q in range(n_queries):
            fh.write(f"q{q}\tdoc{rng.randrange(n_docs)}\t1\n")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load(directory: Path):
    from tasks.beir import BeirDirTask

    task = BeirDirTask(directory)
    docs = list(task.iter_docs())
    return task, docs, task.queries()


def engine_ours(directory: Path, variant: str, top_k: int, slow_queries: int) -> dict:
    import numpy as np

    from harness.first_stage import FirstStageOptions
    from harness.first_stage.analyzer import Analyzer
    from harness.first_stage.base import top_k_indices
    from harness.first_stage.bm25 import (
        B, K1, BM25FirstStage, _doc_weights, _query_matrix, _score_block, load_or_build_corpus,
    )

    from tasks.beir import BeirDirTask

    task = BeirDirTask(directory)  # no extra in-memory copy of the corpus: measure what `harness run` holds
    queries = task.queries()
    cache = tempfile.mkdtemp()
    t0 = time.perf_counter()
    corpus, _ = load_or_build_corpus(task, Path(cache) / "bm25", progress_factory=lambda d, t: (lambda n: None))
    weights_t, term_idf = _doc_weights(corpus, variant, K1, B)
    t1 = time.perf_counter()
    analyzer = Analyzer()
    bags = [analyzer(text) for text in queries.values()]
    for start in range(0, len(bags), 64):
        scores = _score_block(_query_matrix(corpus, bags[start:start + 64], variant, term_idf, K1, B), weights_t)
        for row in scores:
            top_k_indices(np.asarray(row), top_k, positive_only=variant == "lucene")
    t2 = time.perf_counter()
    del corpus, weights_t, scores  # the re-run below loads its own copy
    options = FirstStageOptions(top_k=top_k, cache_dir=cache)
    BM25FirstStage(variant).retrieve(task, options)  # a second run: fingerprint corpus, load cached index, search
    t3 = time.perf_counter()
    return {"index_s": t1 - t0, "search_s": t2 - t1, "cached_run_s": t3 - t2}


def engine_bright_reference(directory: Path, top_k: int, slow_queries: int) -> dict:
    from gensim.corpora import Dictionary
    from gensim.models import LuceneBM25Model
    from gensim.similarities import SparseMatrixSimilarity

    from harness.first_stage.analyzer import Analyzer

    _, docs, queries = _load(directory)
    analyzer = Analyzer()
    t0 = time.perf_counter()
    corpus = [analyzer(text) for _, text in docs]
    dictionary = Dictionary(corpus)
    model = LuceneBM25Model(dictionary=dictionary, k1=0.9, b=0.4)
    bm25_corpus = model[list(map(dictionary.doc2bow, corpus))]
    index = SparseMatrixSimilarity(bm25_corpus, num_docs=len(corpus), num_terms=len(dictionary),
                                   normalize_queries=False, normalize_documents=False)
    t1 = time.perf_counter()
    doc_ids = [d for d, _ in docs]
    for text in queries.values():
        scores = index[model[dictionary.doc2bow(analyzer(text))]]
        ranked = sorted(zip(doc_ids, scores.tolist()), key=lambda x: x[1], reverse=True)[:top_k]
        del ranked
    t2 = time.perf_counter()
    return {"index_s": t1 - t0, "search_s": t2 - t1}


def engine_rank_bm25(directory: Path, top_k: int, slow_queries: int) -> dict:
    import numpy as np
    from rank_bm25 import BM25Okapi

    from harness.first_stage.analyzer import Analyzer

    _, docs, queries = _load(directory)
    analyzer = Analyzer()
    t0 = time.perf_counter()
    bm25 = BM25Okapi([analyzer(text) for _, text in docs], k1=0.9, b=0.4)
    t1 = time.perf_counter()
    texts = list(queries.values())
    timed = texts[:slow_queries]
    for text in timed:
        np.argsort(-bm25.get_scores(analyzer(text)))[:top_k]
    t2 = time.perf_counter()
    return {"index_s": t1 - t0, "search_s": (t2 - t1) * len(texts) / max(1, len(timed)),
            "extrapolated": len(timed) < len(texts)}


def engine_bm25s(directory: Path, top_k: int, slow_queries: int) -> dict:
    import bm25s

    from harness.first_stage.analyzer import Analyzer

    _, docs, queries = _load(directory)
    analyzer = Analyzer()
    t0 = time.perf_counter()
    retriever = bm25s.BM25(method="lucene", k1=0.9, b=0.4)
    corpus_tokens = bm25s.tokenize([" ".join(analyzer(text)) for _, text in docs], stopwords=None,
                                   show_progress=False)
    retriever.index(corpus_tokens, show_progress=False)
    t1 = time.perf_counter()
    query_tokens = bm25s.tokenize([" ".join(analyzer(t)) for t in queries.values()], stopwords=None,
                                  show_progress=False)
    retriever.retrieve(query_tokens, k=top_k, show_progress=False, n_threads=os.cpu_count() or 1)
    t2 = time.perf_counter()
    return {"index_s": t1 - t0, "search_s": t2 - t1}


ENGINES = {
    "ours-bm25": lambda d, k, s: engine_ours(d, "bright", k, s),
    "ours-bm25-lucene": lambda d, k, s: engine_ours(d, "lucene", k, s),
    "bright-reference (gensim)": engine_bright_reference,
    "rank_bm25 BM25Okapi": engine_rank_bm25,
    "bm25s lucene": engine_bm25s,
}


def _child(name: str, directory: str, top_k: int, slow_queries: int) -> None:
    base = _peak_mb()
    result = ENGINES[name](Path(directory), top_k, slow_queries)
    result["peak_rss_mb"] = _peak_mb()
    result["baseline_rss_mb"] = base
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=120_000)
    parser.add_argument("--words", type=int, default=120)
    parser.add_argument("--queries", type=int, default=120)
    parser.add_argument("--query-words", type=int, default=60)
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--slow-queries", type=int, default=10, help="queries timed for rank_bm25 (extrapolated)")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.dir, args.top_k, args.slow_queries)
        return
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "corpus"
        t0 = time.perf_counter()
        make_corpus(directory, args.docs, args.words, args.queries, args.query_words)
        print(f"synthetic corpus: {args.docs:,} docs × ~{args.words} words, {args.queries} queries × "
              f"{args.query_words} words, top-{args.top_k} (generated in {time.perf_counter() - t0:.1f} s)",
              file=sys.stderr)
        results = {}
        for name in args.engines.split(","):
            done = subprocess.run([sys.executable, __file__, "--child", name, "--dir", str(directory),
                                   "--top-k", str(args.top_k), "--slow-queries", str(args.slow_queries)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                results[name] = {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
            else:
                results[name] = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"  {name}: {results[name]}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'engine':28} {'index s':>9} {'search s':>10} {'total s':>9} {'peak RSS MB':>12}  notes")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:28} error: {r['error']}")
            continue
        star = "*" if r.get("extrapolated") else ""
        total = r["index_s"] + r["search_s"]
        note = f"re-run with cached index: {r['cached_run_s']:.2f} s" if "cached_run_s" in r else ""
        print(f"{name:28} {r['index_s']:9.2f} {r['search_s']:9.2f}{star:1} {total:9.2f} {r['peak_rss_mb']:12.0f}  {note}")
    ref = results.get("bright-reference (gensim)", {})
    ours = results.get("ours-bm25", {})
    if "index_s" in ref and "index_s" in ours:
        speedup = (ref["index_s"] + ref["search_s"]) / (ours["index_s"] + ours["search_s"])
        print(f"ours-bm25 vs BRIGHT reference, end to end: {speedup:.1f}× faster")


if __name__ == "__main__":
    main()
