"""BRIGHT (xlangai/BRIGHT), 12 reasoning-intensive retrieval subsets, loaded through ir_datasets.

Names: ``bright`` (all 12), ``bright/<subset>`` with underscore subset names as in the BRIGHT and ReasonRank code
(``bright/earth_science``); hyphen spellings are accepted too. The long-document setting is an option:
``bright/biology-long`` (7 StackExchange subsets + pony) uses ir_datasets' ``bright/<subset>-long`` ids, whose
judgments index the long documents (``gold_ids_long``). ``bright`` alone means the 12 short-document subsets, and
the benchmark-wide number is the unweighted mean of their nDCG@10, as BRIGHT reports it. (ir_datasets 0.6.3's
``dataset.qrels_iter()`` serves the short-document ``gold_ids`` for the ``-long`` ids too; this task reads the
qrels handler, which uses ``gold_ids_long``.)

Data: ir_datasets downloads the HF parquet files (md5-pinned in its ``downloads.json``) into
``$IR_DATASETS_HOME/bright/`` on first use. Excluded documents are the qrels with relevance −100.

Query fields: ``original`` (the query text; rerankers always receive it) and five LLM reasoning-expanded variants
(``gpt4_reason``, ``claude_3_opus_reason``, ``gemini_1_0_reason``, ``llama3_70b_reason``, ``grit_reason``) for
first-stage retrieval. ir_datasets 0.6.3 fills those fields from the ``reasoning`` column of the ``*_reason``
parquets, but BRIGHT's ``run.py --reasoning`` and ReasonIR embed their ``query`` column; to be faithful the task
reads the ``query`` column of the cached ``*_reason`` parquet files directly (``query_field_columns`` records the
column used per field).
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from harness.benchmark import BenchmarkInfo, SubsetInfo
from harness.errors import DataNotAvailableError, HarnessError
from harness.types import Qrels
from tasks.base import ORIGINAL, Task, TaskFamily, unknown_subset

SUBSETS = (
    "biology", "earth_science", "economics", "psychology", "robotics", "stackoverflow", "sustainable_living",
    "leetcode", "pony", "aops", "theoremqa_questions", "theoremqa_theorems",
)
LONG_SUBSETS = tuple(f"{s}-long" for s in SUBSETS[:7] + ("pony",))

# Rank1's dataset prompts (orionw/rank1 prompts.py, `BrightRetrieval_<subtask>`, falling back to `BrightRetrieval`).
_RANK1_GENERIC = (
    "Can you find background information about the concepts used to answer the question:\n\nFILL_QUERY_HERE\n\n"
    "A passage is relevant if it contains background information about a **sub-concept** that someone might "
    "cite/link to when answering the above question."
)
_RANK1_THEOREMQA = "Find a passage which uses the same mathematical process as this one: FILL_QUERY_HERE"
RANK1_PROMPTS = {
    **{s: _RANK1_GENERIC for s in SUBSETS[:7]},
    "leetcode": "I am looking to find different problems that share similar data structures (of any kind) or "
                "algorithms (e.g. DFS, DP, sorting, traversals, etc.). I am looking for problems that share one or "
                "both of these similarities to this:\n    \nFILL_QUERY_HERE\n\nDoes this passage share any "
                "similarities? e.g. if there was a textbook on leetcode problems, this would be in the same book "
                "even though it could be in a different chapter. \n\n\n",
    "pony": "I will use the programming language pony. Problem: FILL_QUERY_HERE\n\nBut to solve the problem above, I "
            "need to know things about pony. A passage is relevant if it contains docs that match **any** part "
            "(even basic parts) of the code I will have to write for the above program.",
    "aops": "Find different but similar math problems to FILL_QUERY_HERE\n\nA document is relevant if it uses the "
            "same class of functions and shares **any** overlapping techniques.",
    "theoremqa_questions": _RANK1_THEOREMQA,
    "theoremqa_theorems": _RANK1_THEOREMQA,
}
_TITLES = {
    "biology": ("Biology", "Bio."), "earth_science": ("Earth Science", "Earth"), "economics": ("Economics", "Econ."),
    "psychology": ("Psychology", "Psy."), "robotics": ("Robotics", "Rob."), "stackoverflow": ("StackOverflow",
    "Stack."), "sustainable_living": ("Sustainable Living", "Sus."), "leetcode": ("LeetCode", "Leet."),
    "pony": ("Pony", "Pony"), "aops": ("AoPS", "AoPS"), "theoremqa_questions": ("TheoremQA-Q", "TheoQ."),
    "theoremqa_theorems": ("TheoremQA-T", "TheoT."),
}
_QUERIES = {"biology": 103, "earth_science": 116, "economics": 103, "psychology": 101, "robotics": 101,
            "stackoverflow": 117, "sustainable_living": 108, "leetcode": 142, "pony": 112, "aops": 111,
            "theoremqa_questions": 194, "theoremqa_theorems": 76}
# Retrieval instructions for instruction-following rerankers (Qwen3-Reranker's <Instruct>): BRIGHT's own templates for
# instruction-tuned retrievers (xlang-ai/BRIGHT generate_configs.py, the e5/sf/qwen configs; theoremqa_theorems from
# configs/qwen2), with the subset's display name from its TASK_MAP where the template has "{task}" (BRIGHT's code
# passes the raw key, e.g. "earth_science"; the display name is the evident intent).
_POST = "Given a {} post, retrieve relevant passages that help answer the post"
_INSTRUCTIONS = {
    "biology": _POST.format("Biology"), "earth_science": _POST.format("Earth Science"),
    "economics": _POST.format("Economics"), "psychology": _POST.format("Psychology"),
    "robotics": _POST.format("Robotics"), "stackoverflow": _POST.format("Stack Overflow"),
    "sustainable_living": _POST.format("Sustainable Living"),
    "pony": "Given a Pony question, retrieve relevant passages that help answer the question",
    "leetcode": "Given a coding problem, retrieve relevant examples that help answer the problem",
    "aops": "Given a Math problem, retrieve relevant examples that help answer the problem",
    "theoremqa_questions": "Given a Math problem, retrieve relevant examples that help answer the problem",
    "theoremqa_theorems": "Given a Math problem, retrieve relevant theorems that help answer the problem",
}
# Retro*'s (query type, document type, relevance definition) per subset: VectorSpaceLab/agentic-search
# Retro-star/evaluation/bright/reranker_prompts.py (ReasoningBrightShortInstructions).
_SE_DEFINITION = ("Given a query ({0}) and a document (passage), the document is relevant to the query if the critical "
                  "concepts or theories discussed in the document can provide references for domain experts to draft "
                  "an answer to the query.")
_MATH_SOLUTION = ("Given a query (math problem) and a document (math problem solution), the document is relevant to the "
                  "query if the theorems used in the document can provide helpful insights for solving the problem in "
                  "the query.")
_RELEVANCE = {
    **{s: {"query_type": f"{name} post", "doc_type": "passage", "definition": _SE_DEFINITION.format(f"{name} post")}
       for s, name in (("biology", "biology"), ("earth_science", "earth science"), ("economics", "economics"),
                       ("psychology", "psychology"), ("robotics", "robotics"), ("stackoverflow", "Stack Overflow"),
                       ("sustainable_living", "sustainable living"))},
    "leetcode": {"query_type": "LeetCode problem", "doc_type": "coding problem solution",
                 "definition": "Given a query (LeetCode problem) and a document (coding problem solution), the document "
                               "is relevant to the query if the underlying algorithms or data structures used in the "
                               "document can provide helpful insights for solving the problem in the query."},
    "pony": {"query_type": "Pony coding instruction", "doc_type": "Pony documentation passage",
             "definition": "Given a query (Pony coding instruction) and a document (Pony documentation passage), the "
                           "document is relevant to the query if the Pony syntax described in the document is "
                           "necessary for beginners with no prior knowledge of Pony to complete the coding "
                           "instruction in the query."},
    "aops": {"query_type": "math problem", "doc_type": "math problem solution", "definition": _MATH_SOLUTION},
    "theoremqa_questions": {"query_type": "math problem", "doc_type": "math problem solution",
                            "definition": _MATH_SOLUTION},
    "theoremqa_theorems": {"query_type": "math problem", "doc_type": "math-related passage",
                           "definition": "Given a query (math problem) and a document (math-related passage), the "
                                         "document is relevant to the query if the theorem described in the document "
                                         "can help solve the problem in the query."},
}
_DOMAINS = {**{s: "StackExchange" for s in SUBSETS[:7]}, "leetcode": "coding", "pony": "coding",
            "aops": "theorem-based", "theoremqa_questions": "theorem-based", "theoremqa_theorems": "theorem-based"}


def _subset_info(name: str) -> SubsetInfo:
    base = name.removesuffix("-long")
    title, short = _TITLES[base]
    long = name != base
    return SubsetInfo(
        name=name, title=title + (" (long)" if long else ""), short=short + ("L" if long else ""),
        queries=_QUERIES[base],
        # ReasonRank DOC_MAXLEN: 512 for every BRIGHT task (8421BCD/ReasonRank index_and_topics.py)
        protocol={"passage_tokens": 512, "rank1_prompt": RANK1_PROMPTS[base], "domain": _DOMAINS[base],
                  "instruction": _INSTRUCTIONS[base], "relevance": _RELEVANCE[base]},
        published_run_key=name,  # the published runs are for the short-document subsets only
    )


INFO = BenchmarkInfo(
    name="bright",
    title="BRIGHT",
    description="BRIGHT, 12 reasoning-intensive subsets (ir_datasets)",
    subsets=tuple(_subset_info(s) for s in SUBSETS),
    variants=tuple(_subset_info(s) for s in LONG_SUBSETS),
    default_first_stage="reasonir-published",
    average="mean",
    board_order=0,
    source="Su et al., BRIGHT (arXiv 2407.12883); xlangai/BRIGHT",
)

# HF config of the reasoning-expanded queries -> query field name (ir_datasets' BrightQuery attribute names)
REASONING_CONFIGS = {
    "gpt4_reason": "gpt4_reason",
    "claude-3-opus_reason": "claude_3_opus_reason",
    "Gemini-1.0_reason": "gemini_1_0_reason",
    "llama3-70b_reason": "llama3_70b_reason",
    "grit_reason": "grit_reason",
}
REASONING_QUERY_COLUMN = "query"  # what BRIGHT/ReasonIR embed; ir_datasets reads "reasoning" instead

_T = TypeVar("_T")


def resolve(subset: str | None) -> list["BrightTask"]:
    if subset is None or subset == "":
        return [BrightTask(s) for s in SUBSETS]
    return [BrightTask(canonical_subset(subset))]


def canonical_subset(name: str) -> str:
    """``earth-science`` / ``earth_science`` → ``earth_science``; ``biology-long`` stays; unknown → HarnessError."""
    if name.endswith("-long") or name.endswith("_long"):
        candidate = name[:-5].replace("-", "_") + "-long"
    else:
        candidate = name.replace("-", "_")
    if candidate in SUBSETS or candidate in LONG_SUBSETS:
        return candidate
    raise unknown_subset(INFO, candidate)


def _irds_name(subset: str) -> str:
    """ir_datasets' spelling: hyphens (``earth-science``, ``earth-science-long``)."""
    return subset.replace("_", "-")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _is_connection_error(exc: BaseException) -> bool:
    try:
        import requests

        if isinstance(exc, requests.exceptions.RequestException):
            return True
    except ImportError:  # pragma: no cover - requests comes with ir_datasets
        pass
    return isinstance(exc, (ConnectionError, TimeoutError))


def _md5_file(path: Path) -> str:
    h = hashlib.md5()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class BrightTask(Task):
    benchmark = "bright"

    def __init__(self, subset: str):
        self.subset = canonical_subset(subset)
        self.benchmark_info = INFO
        self.subset_info = INFO.subset(self.subset)
        self.long = self.subset.endswith("-long")
        self.base_subset = self.subset[:-5] if self.long else self.subset
        self.irds_id = f"bright/{_irds_name(self.subset)}"
        self.query_field_columns: dict[str, str] = {}

    # -- ir_datasets plumbing -------------------------------------------------------------------
    @cached_property
    def _dataset(self):
        import ir_datasets

        try:
            return ir_datasets.load(self.irds_id)
        except KeyError as exc:
            raise HarnessError(f"ir_datasets {ir_datasets.__version__} does not know {self.irds_id}; "
                               "install ir_datasets>=0.6.3.") from exc

    @cached_property
    def cache_dir(self) -> Path:
        """The directory ir_datasets reads this subset's parquet files from (``$IR_DATASETS_HOME/bright``)."""
        return Path(self._dataset.docs_handler().docs_path(force=False)).parent

    @cached_property
    def _downloads(self) -> dict[str, dict[str, Any]]:
        """The files behind each part of the dataset: role -> {cache_path, url, expected_md5} (ir_datasets' pins)."""
        import ir_datasets

        table = json.loads((Path(ir_datasets.__file__).parent / "etc" / "downloads.json").read_text())["bright"]
        base = _irds_name(self.base_subset)
        keys = {"docs": f"{_irds_name(self.subset)}/docs", "queries": f"{base}/queries"}
        keys.update({config: f"{base}/{config}/queries" for config in REASONING_CONFIGS})
        return {role: table[key] for role, key in keys.items() if key in table}

    def _file(self, role: str) -> Path:
        return self.cache_dir / self._downloads[role]["cache_path"]

    def _roles_for(self, what: str) -> list[str]:
        if what == "docs":
            return ["docs"]
        if what == "qrels":
            return ["queries"]
        return ["queries", *REASONING_CONFIGS]

    def _not_available(self, roles: list[str], cause: BaseException | None) -> DataNotAvailableError:
        missing = [r for r in roles if not self._file(r).is_file()]
        listing = "; ".join(f"{self._downloads[r]['cache_path']} <- {self._downloads[r]['url']}" for r in missing)
        why = f" ({type(cause).__name__}: {str(cause)[:200]})" if cause else " (HF_HUB_OFFLINE is set)"
        return DataNotAvailableError(
            f"BRIGHT dataset {self.name} (ir_datasets id {self.irds_id}) is not cached and cannot be downloaded"
            f"{why}. Either run once with network access (ir_datasets caches it under $IR_DATASETS_HOME/bright, "
            f"here {self.cache_dir}), or copy these files there by hand: {listing}; or convert the subset to a "
            "BEIR-layout directory (corpus.jsonl, queries.jsonl, qrels/test.tsv) and pass it with "
            "`harness run --task PATH`."
        )

    def _guarded(self, what: str, action: Callable[[], _T]) -> _T:
        """Run an ir_datasets action; turn 'not cached and no network' into DataNotAvailableError."""
        roles = self._roles_for(what)
        if _offline() and any(not self._file(r).is_file() for r in roles):
            raise self._not_available(roles, None)
        try:
            return action()
        except Exception as exc:
            if _is_connection_error(exc):
                raise self._not_available(roles, exc) from exc
            raise

    # -- Task interface -------------------------------------------------------------------------
    def _load_queries(self) -> dict[str, dict[str, str]]:
        originals = self._guarded("queries", lambda: [(q.query_id, q) for q in self._dataset.queries_iter()])
        out: dict[str, dict[str, str]] = {str(qid): {ORIGINAL: q.text} for qid, q in originals}
        by_id = dict(originals)
        for config, field in REASONING_CONFIGS.items():
            texts, column = self._reasoning_texts(config)
            if texts is None:  # no `query` column: fall back to what ir_datasets serves
                texts = {qid: getattr(q, field) for qid, q in by_id.items()}
            self.query_field_columns[field] = column
            for qid, fields in out.items():
                text = texts.get(qid)
                if text:
                    fields[field] = text
        return out

    def _reasoning_texts(self, config: str) -> tuple[dict[str, str] | None, str]:
        import pyarrow.parquet as pq

        path = self._file(config)
        if not path.is_file():
            return None, "reasoning"
        if not {"id", REASONING_QUERY_COLUMN} <= set(pq.read_schema(path).names):
            return None, "reasoning"
        table = pq.read_table(path, columns=["id", REASONING_QUERY_COLUMN])
        ids = table.column("id").to_pylist()
        texts = table.column(REASONING_QUERY_COLUMN).to_pylist()
        return {str(i): t for i, t in zip(ids, texts) if t}, REASONING_QUERY_COLUMN

    def _load_qrels(self) -> Qrels:
        def collect() -> Qrels:
            qrels: Qrels = {}
            # qrels_handler(), not dataset.qrels_iter(): in ir_datasets 0.6.3 the latter resolves to the queries
            # handler's qrels_iter, which always reads gold_ids, so the -long variants would get short-doc qrels
            for qrel in self._dataset.qrels_handler().qrels_iter():
                docs = qrels.setdefault(str(qrel.query_id), {})
                # an id that is both gold and excluded stays gold (BRIGHT asserts this never happens)
                if qrel.relevance < 0 and docs.get(qrel.doc_id, -1) >= 0:
                    continue
                docs[str(qrel.doc_id)] = int(qrel.relevance)
            return qrels

        return self._guarded("qrels", collect)

    def iter_docs(self) -> Iterator[tuple[str, str]]:
        iterator = self._guarded("docs", lambda: iter(self._dataset.docs_iter()))
        first = self._guarded("docs", lambda: next(iterator, None))  # the download happens on first item
        if first is None:
            return
        yield first.doc_id, first.text
        for doc in iterator:
            yield doc.doc_id, doc.text

    def docs(self, ids: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        store = self._guarded("docs", lambda: self._dataset.docs_store())
        found = self._guarded("docs", lambda: store.get_many(wanted))
        return {docid: found[docid].text for docid in wanted if docid in found}

    @property
    def pinned_revision(self) -> str:
        """The ir_datasets version and the md5 pins of its download table (no file hashing)."""
        import ir_datasets

        pins = ";".join(f"{role}-md5={self._downloads[role].get('expected_md5', '')}" for role in ("docs", "queries"))
        return f"ir_datasets-{ir_datasets.__version__};{pins}"

    @cached_property
    def revision(self) -> str:
        """``ir_datasets-<version>;docs-md5=…;queries-md5=…`` (md5 of the cached files when present)."""
        import ir_datasets

        parts = [f"ir_datasets-{ir_datasets.__version__}"]
        for role in ("docs", "queries"):
            expected = self._downloads[role].get("expected_md5", "")
            path = self._file(role)
            actual = _md5_file(path) if path.is_file() else expected
            parts.append(f"{role}-md5={actual}" + ("" if actual == expected else "(differs-from-ir_datasets-pin)"))
        return ";".join(parts)

    def details(self) -> dict[str, Any]:
        return {"ir_datasets_id": self.irds_id, "query_field_columns": dict(self.query_field_columns)}


FAMILY = TaskFamily(INFO, resolve, canonical=canonical_subset)
