"""Any directory in BEIR layout: corpus.jsonl, queries.jsonl, qrels/test.tsv.

Extra string keys in queries.jsonl (besides ``_id``/``text``) become query fields, e.g. a reasoning-expanded
query ``{"_id": "1", "text": "...", "gpt4_reason": "..."}``. Negative scores in qrels mark excluded documents.

A plain directory runs under the generic protocol (no dataset hints: ReasonRank's 512-token passages, Rank1's raw
query). ``--as NAME/SUBSET`` runs it under a declared subset's protocol instead — a BEIR-format copy of
``bright/biology`` gets exactly the prompts of ``bright/biology`` — and the record says so (``task.protocol_of``).

``BEIR`` declares the named BEIR sets ReasonRank evaluates (100-token passages in its ``DOC_MAXLEN`` table,
8421BCD/ReasonRank ``index_and_topics.py``); their data is not downloadable here, so they are used through
``--task DIR --as beir/<name>``.

Oddities of the files are tolerated and counted in ``task.quirks`` (never silently): a repeated query id keeps its
first text, a repeated judgment its first grade (``conflicting_judgments`` when the grades differ), a non-integer
grade is truncated (``non_integer_grades``), a repeated document id keeps its first text.
"""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Iterator

from harness.benchmark import BenchmarkInfo, SubsetInfo
from harness.errors import HarnessError
from harness.files import sha256_file
from harness.jsonl import read_jsonl
from harness.types import Qrels
from tasks.base import ORIGINAL, InMemoryDocs, Task, TaskFamily

REQUIRED = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")
MAX_GRADE = 2**31 - 1  # trec_eval stores grades as C ints

_BEIR_SETS = ("scifact", "fiqa", "nfcorpus", "fever", "climate-fever", "hotpotqa", "quora", "dbpedia", "nq", "covid",
              "arguana", "touche", "scidocs", "news", "robust04", "signal")
INFO = BenchmarkInfo(
    name="beir",
    title="BEIR-layout directories",
    description="any directory in BEIR layout; the named BEIR sets declare ReasonRank's 100-token passages",
    subsets=tuple(SubsetInfo(s, protocol={"passage_tokens": 100}) for s in _BEIR_SETS),
    default_first_stage="bm25",
    average=None,
    board_order=50,
    source="BEIR (Thakur et al., 2021); passage lengths from 8421BCD/ReasonRank index_and_topics.py",
    loadable=False,
)


def _not_loadable(subset: str | None):
    name = f"beir/{subset}" if subset else "beir"
    raise HarnessError(f"Task {name!r} is a declaration only: BEIR data is not downloaded by the harness. Run a local "
                       f"BEIR-layout copy under its protocol: --task DIR --as {name if subset else 'beir/scifact'}.")


FAMILY = TaskFamily(INFO, _not_loadable)


def looks_like_beir_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and all((p / f).is_file() for f in REQUIRED)


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    for lineno, obj in read_jsonl(path):
        if "_id" not in obj:
            raise HarnessError(f"{path}:{lineno}: expected a JSON object with an '_id' key.")
        if not isinstance(obj["_id"], (str, int)) or isinstance(obj["_id"], bool):
            raise HarnessError(f"{path}:{lineno}: '_id' must be a string or an integer; got {obj['_id']!r}.")
        yield lineno, obj


def parse_grade(text: str, where: str, quirks) -> int:
    """A judgment grade: an integer, or a number truncated towards zero (counted); anything else is an error."""
    try:
        value = float(text)
    except ValueError:
        raise HarnessError(f"{where}: grade {text!r} is not a number. Use integer grades (negative = excluded)."
                           ) from None
    if not math.isfinite(value) or abs(value) > MAX_GRADE:
        raise HarnessError(f"{where}: grade {text!r} is not a finite number within ±{MAX_GRADE:,}. Use integer "
                           "grades (negative = excluded).")
    if not value.is_integer():
        quirks["non_integer_grades"] += 1
    return int(value)


def add_judgment(qrels: Qrels, qid: str, docid: str, grade: int, quirks) -> None:
    docs = qrels.setdefault(qid, {})
    if docid in docs:
        quirks["conflicting_judgments" if docs[docid] != grade else "duplicate_judgments"] += 1
        return
    docs[docid] = grade


class BeirDirTask(InMemoryDocs, Task):
    benchmark = "beir"

    def __init__(self, path: str | Path, benchmark: str = "beir", subset: str | None = None,
                 default_first_stage: str | None = None, benchmark_info: BenchmarkInfo | None = None,
                 subset_info: SubsetInfo | None = None, protocol_of: str | None = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise HarnessError(f"Task directory {self.path} does not exist.")
        missing = [f for f in REQUIRED if not (self.path / f).is_file()]
        if missing:
            raise HarnessError(
                f"{self.path} is not a BEIR-layout task directory: missing {', '.join(missing)}. "
                "Expected corpus.jsonl, queries.jsonl and qrels/test.tsv."
            )
        self.benchmark = benchmark
        self.subset = subset or self.path.resolve().name
        self.benchmark_info = benchmark_info or INFO
        if subset_info is not None:
            self.subset_info = subset_info
        self._default_first_stage = default_first_stage
        self.source = "directory" if benchmark_info is None or protocol_of else "registry"
        self.protocol_of = protocol_of

    @property
    def default_first_stage(self) -> str:
        return self._default_first_stage or super().default_first_stage

    @cached_property
    def revision(self) -> str:
        return "sha256:" + "".join(sha256_file(self.path / f)[:16] for f in REQUIRED)

    def _load_queries(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        path = self.path / "queries.jsonl"
        for lineno, obj in _read_jsonl(path):
            qid = str(obj["_id"])
            if qid in out:
                self.quirks["duplicate_query_ids"] += 1
                continue
            text = obj.get("text", "")
            if not isinstance(text, str):
                raise HarnessError(f"{path}:{lineno}: 'text' must be a string; got {text!r}.")
            fields = {ORIGINAL: text}
            for k, v in obj.items():
                if k not in ("_id", "text", "metadata") and isinstance(v, str):
                    fields[k] = v
            out[qid] = fields
        return out

    def _load_qrels(self) -> Qrels:
        path = self.path / "qrels" / "test.tsv"
        qrels: Qrels = {}
        with path.open(encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip("\n\r")
                if not line.strip():
                    continue
                parts = line.split("\t")
                if lineno == 1 and parts[0] in ("query-id", "qid", "query_id"):
                    continue
                if len(parts) != 3:
                    raise HarnessError(
                        f"{path}:{lineno}: expected 3 tab-separated columns (query-id, corpus-id, score), "
                        f"got {len(parts)}."
                    )
                qid, docid, score = parts
                add_judgment(qrels, qid, docid, parse_grade(score, f"{path}:{lineno}", self.quirks), self.quirks)
        return qrels

    def iter_docs(self) -> Iterator[tuple[str, str]]:
        path = self.path / "corpus.jsonl"
        for lineno, obj in _read_jsonl(path):
            title = obj.get("title") or ""
            text = obj.get("text") or ""
            if not isinstance(title, str) or not isinstance(text, str):
                raise HarnessError(f"{path}:{lineno}: 'title' and 'text' must be strings.")
            title = title.strip()
            yield str(obj["_id"]), (f"{title} {text}" if title else text)

    def corpus_fingerprint(self) -> str:
        """sha256 of ``corpus.jsonl`` itself: the documents are a function of its bytes, and hashing the file is ~5×
        faster than parsing it (a cold BM25 run then parses the corpus once)."""
        from harness.files import sha256_file

        return "beir-file:" + sha256_file(self.path / "corpus.jsonl")

    @cached_property
    def _doc_texts(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for docid, text in self.iter_docs():
            if docid in out:
                self.quirks["duplicate_docids"] += 1
                continue
            out[docid] = text
        return out

    def details(self) -> dict:
        return {"directory": self.path.resolve().name}
