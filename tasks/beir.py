"""Any directory in BEIR layout: corpus.jsonl, queries.jsonl, qrels/test.tsv.

Extra string keys in queries.jsonl (besides ``_id``/``text``) become query fields, e.g. a reasoning-expanded
query ``{"_id": "1", "text": "...", "gpt4_reason": "..."}``. Negative scores in qrels mark excluded documents.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Iterator

from harness.errors import HarnessError
from harness.jsonl import read_jsonl
from harness.types import Qrels
from tasks.base import ORIGINAL, Task

REQUIRED = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")


def looks_like_beir_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and all((p / f).is_file() for f in REQUIRED)


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    for lineno, obj in read_jsonl(path):
        if "_id" not in obj:
            raise HarnessError(f"{path}:{lineno}: expected a JSON object with an '_id' key.")
        yield lineno, obj


class BeirDirTask(Task):
    benchmark = "beir"

    def __init__(self, path: str | Path, benchmark: str = "beir", subset: str | None = None,
                 default_first_stage: str = "bm25"):
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
        self._default_first_stage = default_first_stage

    @property
    def default_first_stage(self) -> str:
        return self._default_first_stage

    @cached_property
    def revision(self) -> str:
        h = hashlib.sha256()
        for f in REQUIRED:
            h.update((self.path / f).read_bytes())
        return "sha256:" + h.hexdigest()[:16]

    def _load_queries(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for lineno, obj in _read_jsonl(self.path / "queries.jsonl"):
            qid = str(obj["_id"])
            fields = {ORIGINAL: str(obj.get("text", ""))}
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
                try:
                    grade = int(float(score))
                except ValueError as exc:
                    raise HarnessError(f"{path}:{lineno}: score {score!r} is not an integer.") from exc
                qrels.setdefault(qid, {})[docid] = grade
        return qrels

    def iter_docs(self) -> Iterator[tuple[str, str]]:
        for _, obj in _read_jsonl(self.path / "corpus.jsonl"):
            title = str(obj.get("title") or "").strip()
            text = str(obj.get("text") or "")
            yield str(obj["_id"]), (f"{title} {text}" if title else text)

    @cached_property
    def _doc_texts(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for docid, text in self.iter_docs():
            out.setdefault(docid, text)
        return out

    def docs(self, ids):
        store = self._doc_texts
        return {d: store[d] for d in ids if d in store}
