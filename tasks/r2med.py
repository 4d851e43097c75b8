"""R2MED, 8 reasoning-driven medical retrieval subsets, from the Hugging Face dataset repos ``R2MED/<Task>``.

Each repo holds JSON-lines files at its root: ``corpus.jsonl`` (id, text), ``query.jsonl`` (id, text, doc_id,
answer, body_system) and ``qrels.jsonl`` (q_id, p_id, score; relevance = int(score)). They are fetched with
``huggingface_hub.snapshot_download`` at a pinned commit (the revisions MTEB's R2MED task metadata pins), only those
three files, into the normal Hugging Face cache (``$HF_HUB_CACHE``, default ``$HF_HOME/hub``). R2MED has no
excluded documents. The benchmark-wide number is the unweighted mean of the 8 subsets' nDCG@10.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

from harness.benchmark import BenchmarkInfo, SubsetInfo
from harness.errors import DataNotAvailableError, HarnessError
from harness.jsonl import read_jsonl
from harness.types import Qrels
from tasks.base import ORIGINAL, InMemoryDocs, Task, TaskFamily, unknown_subset
from tasks.beir import add_judgment, parse_grade

SUBSETS = (
    "Biology", "Bioinformatics", "Medical-Sciences", "MedXpertQA-Exam", "MedQA-Diag", "PMC-Treatment",
    "PMC-Clinical", "IIYi-Clinical",
)
# Commit of each HF dataset repo, as pinned by MTEB's R2MED retrieval tasks (mteb/tasks/.../R2MEDRetrieval.py).
REVISIONS = {
    "Biology": "8b9fec2db9eda4b5742d03732213fbaee8169556",
    "Bioinformatics": "6021fce366892cbfd7837fa85a4128ea93315e18",
    "Medical-Sciences": "1b48911514c80bf9182222d99752ad75e23b4b47",
    "MedXpertQA-Exam": "b457ea43db9ae5db74c3a3e5be0a213d0f85ac3a",
    "MedQA-Diag": "78b585990279cc01a493f876c1b0cf09557fba57",
    "PMC-Treatment": "53c489a44a3664ba352c07550b72b4525a5968d5",
    "PMC-Clinical": "812829522f7eaa407ef82b96717be85788a50f7e",
    "IIYi-Clinical": "974abbc9bc281c3169180a6aa5d7586cfd2f5877",
}
# Exact names at the repo root (the card's corpus/query/qrels configs). A pattern like "*query*" would also pull the
# generated-document configs (hyde/<llm>/query_with_hydoc.jsonl, query2doc/..., lamer/..., search-r1/...).
FILES = ("corpus.jsonl", "query.jsonl", "qrels.jsonl")
_QUERIES = {"Biology": 103, "Bioinformatics": 77, "Medical-Sciences": 88, "MedXpertQA-Exam": 97, "MedQA-Diag": 118,
            "PMC-Treatment": 150, "PMC-Clinical": 114, "IIYi-Clinical": 129}
_SHORT = {"Biology": "Bio.", "Bioinformatics": "Bioinf.", "Medical-Sciences": "MedSci", "MedXpertQA-Exam": "MedXp.",
          "MedQA-Diag": "MedQA", "PMC-Treatment": "PMC-T", "PMC-Clinical": "PMC-C", "IIYi-Clinical": "IIYi"}

INFO = BenchmarkInfo(
    name="r2med",
    title="R2MED",
    description="R2MED, 8 medical reasoning subsets (Hugging Face)",
    # ReasonRank DOC_MAXLEN: 512 for every r2med_* task (8421BCD/ReasonRank index_and_topics.py)
    subsets=tuple(SubsetInfo(s, title=s, short=_SHORT[s], queries=_QUERIES[s],
                             protocol={"passage_tokens": 512, "domain": "medical"}, published_run_key=f"r2med_{s}")
                  for s in SUBSETS),
    default_first_stage="e5-mistral-published",
    average="mean",
    board_order=1,
    source="Li et al., R2MED (arXiv 2505.14558); huggingface.co/R2MED",
)


def resolve(subset: str | None) -> list["R2medTask"]:
    if subset is None or subset == "":
        return [R2medTask(s) for s in SUBSETS]
    return [R2medTask(canonical_subset(subset))]



def canonical_subset(name: str) -> str:
    """Case-insensitive match (``r2med/biology`` → ``Biology``); unknown → HarnessError with did-you-mean."""
    by_lower = {s.lower(): s for s in SUBSETS}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    raise unknown_subset(INFO, name)


def hub_cache_dir() -> str | None:
    """The Hugging Face hub cache to use, read at call time (None → huggingface_hub's default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def _read_jsonl(path: Path) -> Iterator[dict]:
    fix = "The cached file is damaged: delete it and download again."
    return (obj for _, obj in read_jsonl(path, fix=fix))


class R2medTask(InMemoryDocs, Task):
    benchmark = "r2med"
    benchmark_info = INFO

    def __init__(self, subset: str, revision: str | None = None):
        self.subset = canonical_subset(subset)
        self.subset_info = INFO.subset(self.subset)
        self.repo_id = f"R2MED/{self.subset}"
        self.commit = revision or REVISIONS[self.subset]

    @property
    def revision(self) -> str:
        return f"hf:{self.repo_id}@{self.commit}"

    def _not_available(self, cause: BaseException) -> DataNotAvailableError:
        where = hub_cache_dir() or "the default Hugging Face cache (~/.cache/huggingface/hub)"
        return DataNotAvailableError(
            f"R2MED dataset {self.name} (Hugging Face dataset {self.repo_id} at revision {self.commit}) is not "
            f"cached and cannot be downloaded ({type(cause).__name__}: {str(cause)[:200]}). Either run once with "
            f"network access and HF_HUB_OFFLINE unset (files {', '.join(FILES)} go to {where}; set HF_HOME or "
            "HF_HUB_CACHE to choose), or convert the subset to a BEIR-layout directory (corpus.jsonl, "
            "queries.jsonl, qrels/test.tsv) and pass it with `harness run --task PATH`."
        )

    @cached_property
    def snapshot_dir(self) -> Path:
        import httpx
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (LocalEntryNotFoundError, OfflineModeIsEnabled, RepositoryNotFoundError,
                                            RevisionNotFoundError)

        try:
            folder = snapshot_download(self.repo_id, repo_type="dataset", revision=self.commit,
                                       allow_patterns=list(FILES), cache_dir=hub_cache_dir())
        except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
            raise HarnessError(f"{self.repo_id} at revision {self.commit} was not found on the Hugging Face Hub "
                               f"({exc}).") from exc
        except (LocalEntryNotFoundError, OfflineModeIsEnabled, httpx.HTTPError, OSError) as exc:
            raise self._not_available(exc) from exc
        folder = Path(folder)
        missing = [f for f in FILES if not (folder / f).is_file()]
        if missing:
            raise DataNotAvailableError(
                f"The cached snapshot of {self.repo_id}@{self.commit} in {folder} lacks {', '.join(missing)}. "
                "Delete that folder and run again with network access, or use a BEIR-layout directory."
            )
        return folder

    def _load_queries(self) -> dict[str, dict[str, str]]:
        return {str(row["id"]): {ORIGINAL: str(row.get("text") or "")}
                for row in _read_jsonl(self.snapshot_dir / "query.jsonl")}

    def _load_qrels(self) -> Qrels:
        qrels: Qrels = {}
        path = self.snapshot_dir / "qrels.jsonl"
        for row in _read_jsonl(path):
            try:
                qid, docid = str(row["q_id"]), str(row["p_id"])
                grade = parse_grade(str(row["score"]), f"{path}: qrels row {row!r}", self.quirks)
            except (KeyError, TypeError) as exc:
                raise HarnessError(f"{path}: qrels row {row!r} lacks q_id/p_id/an integer score.") from exc
            add_judgment(qrels, qid, docid, grade, self.quirks)
        return qrels

    def iter_docs(self) -> Iterator[tuple[str, str]]:
        for row in _read_jsonl(self.snapshot_dir / "corpus.jsonl"):
            yield str(row["id"]), str(row.get("text") or "")

    def details(self) -> dict[str, Any]:
        return {"hf_dataset": self.repo_id}


FAMILY = TaskFamily(INFO, resolve, canonical=canonical_subset)
