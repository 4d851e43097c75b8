"""Writers of small dataset caches in the real on-disk layouts, so tests exercise the real loading code.

* ``write_bright_cache``: parquet files with the xlangai/BRIGHT schemas under ``<IR_DATASETS_HOME>/bright/`` with
  ir_datasets' file names (``earth'science.docs.parquet`` etc.), served by ``ir_datasets.load("bright/...")``.
* ``write_r2med_hub_cache``: a Hugging Face hub cache (``datasets--R2MED--<Task>/refs``, ``snapshots/<commit>/``)
  served by ``huggingface_hub.snapshot_download`` with ``HF_HUB_OFFLINE=1``.

Both can take their query and document ids from the shared published first-stage runs, so that
``--first-stage reasonir-published`` / ``e5-mistral-published`` line up with the fixture data.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Iterable, Sequence

SHARED_FIRST_STAGE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "first-stage"

BRIGHT_SUBSETS = (
    "biology", "earth_science", "economics", "psychology", "robotics", "stackoverflow", "sustainable_living",
    "leetcode", "pony", "aops", "theoremqa_questions", "theoremqa_theorems",
)
BRIGHT_WITH_EXCLUSIONS = ("leetcode", "aops", "theoremqa_questions")
BRIGHT_LONG = BRIGHT_SUBSETS[:7] + ("pony",)
REASON_CONFIGS = ("gpt4_reason", "claude-3-opus_reason", "Gemini-1.0_reason", "llama3-70b_reason", "grit_reason")


def _h(*parts: str) -> int:
    return int(hashlib.md5("\x00".join(parts).encode()).hexdigest()[:8], 16)


def bright_file_names(subset: str) -> dict[str, str]:
    """ir_datasets 0.6.3 cache file names for one subset (underscore name), quirks included."""
    hyphen = subset.replace("_", "-")
    names = {
        # quirk: the earth-science docs file has an apostrophe
        "docs": "earth'science.docs.parquet" if subset == "earth_science" else f"{hyphen}.docs.parquet",
        "queries": f"{hyphen}.queries.parquet",
        # quirk: long docs keep underscores
        "long_docs": f"{subset}.long-docs.parquet",
    }
    names.update({config: f"{hyphen}.{config}.queries.parquet" for config in REASON_CONFIGS})
    return names


def active_bright_dir() -> Path:
    """The directory the imported ir_datasets reads BRIGHT from (fixed when ir_datasets is first imported)."""
    import ir_datasets

    return Path(ir_datasets.load("bright/biology").docs_handler().docs_path(force=False)).parent


def _run_ids(subset_key: str, file: str, first_stage_dir: Path) -> tuple[list[str], dict[str, list[str]]]:
    from harness.trec import read_run

    run, _ = read_run(first_stage_dir / subset_key / f"{file}.trec")
    return list(run), {q: [d for d, _ in hits] for q, hits in run.items()}


def _pick(qid: str, candidates: list[str], salt: str, modulo: int, at_least: int) -> list[str]:
    chosen = [d for d in candidates if _h(salt, qid, d) % modulo == 0]
    for d in candidates:  # make sure every query gets some
        if len(chosen) >= at_least:
            break
        if d not in chosen:
            chosen.append(d)
    return chosen


def write_bright_cache(root: str | Path | None = None, subsets: Iterable[str] = BRIGHT_SUBSETS,
                       n_queries: int | None = None, qids: Sequence[str] | dict[str, Sequence[str]] | None = None,
                       first_stage_dir: str | Path | None = SHARED_FIRST_STAGE, long: bool = False,
                       extra_docs: int = 3) -> dict[str, dict]:
    """Write fixture BRIGHT parquet files; returns {subset: {"qids", "docids", "gold", "excluded"}}.

    ``root`` is IR_DATASETS_HOME (files go to ``root/bright/``); None → where the imported ir_datasets reads from.
    Query/doc ids come from ``first_stage_dir/<subset>/reasonir_gpt4cot_top100.trec`` when that file exists
    (gold = a deterministic subset of each query's candidates; leetcode/aops/theoremqa_questions also get
    excluded ids), otherwise they are synthetic (qids ``0``…, docids ``<subset>/doc_<i>.txt``). ``qids`` limits the
    queries (a list for every subset or a dict per subset); ``n_queries`` keeps the first n.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if root is None:
        target = active_bright_dir()
    else:
        target = Path(root) / "bright"
        try:
            import sys

            if "ir_datasets" in sys.modules and active_bright_dir().resolve() != target.resolve():
                raise ValueError(f"ir_datasets already reads BRIGHT from {active_bright_dir()}, not {target}; "
                                 "pass root=None or set IR_DATASETS_HOME before ir_datasets is imported.")
        except FileNotFoundError:
            pass
    target.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict] = {}
    strings = pa.list_(pa.string())
    for subset in subsets:
        run_path = Path(first_stage_dir) / subset / "reasonir_gpt4cot_top100.trec" if first_stage_dir else None
        if run_path is not None and run_path.is_file():
            subset_qids, candidates = _run_ids(subset, "reasonir_gpt4cot_top100", Path(first_stage_dir))
        else:
            count = n_queries or 4
            subset_qids = [str(i) for i in range(count)]
            pool = [f"{subset}/doc_{i}.txt" for i in range(12)]
            candidates = {q: pool for q in subset_qids}
        wanted = qids.get(subset) if isinstance(qids, dict) else qids
        if wanted is not None:
            subset_qids = [str(q) for q in wanted]
            for q in subset_qids:
                candidates.setdefault(q, [f"{subset}/doc_{i}.txt" for i in range(12)])
        if n_queries is not None:
            subset_qids = subset_qids[:n_queries]

        gold: dict[str, list[str]] = {}
        excluded: dict[str, list[str]] = {}
        for q in subset_qids:
            gold[q] = _pick(q, candidates[q], "gold", 9, 2)
            if subset in BRIGHT_WITH_EXCLUSIONS:
                excluded[q] = [d for d in _pick(q, candidates[q], "excluded", 13, 1) if d not in gold[q]]
                excluded[q].append(f"{subset}/excluded-only_{q}.txt")  # an excluded id the run never retrieves
        docids = list(dict.fromkeys(d for q in subset_qids for d in candidates[q]))
        docids += [f"{subset}/extra_{i}.txt" for i in range(extra_docs)]

        names = bright_file_names(subset)
        docs_path = target / names["docs"]
        shutil.rmtree(f"{docs_path}.pklz4", ignore_errors=True)  # a stale doc store would serve old texts
        pq.write_table(pa.table({"id": pa.array(docids, pa.string()),
                                 "content": pa.array([f"Text of {d} in {subset}." for d in docids], pa.string())}),
                       docs_path)

        def examples(query_text) -> "pa.Table":
            return pa.table({
                "query": pa.array([query_text(q) for q in subset_qids], pa.string()),
                "reasoning": pa.array([f"gold human reasoning for {subset} query {q}" for q in subset_qids],
                                      pa.string()),
                "id": pa.array(subset_qids, pa.string()),
                "excluded_ids": pa.array([excluded.get(q) or ["N/A"] for q in subset_qids], strings),
                "gold_ids": pa.array([gold[q] for q in subset_qids], strings),
                "gold_ids_long": pa.array([[f"{subset}/long_{q}.txt"] for q in subset_qids], strings),
                "gold_answer": pa.array([f"answer {q}" for q in subset_qids], pa.string()),
            })

        pq.write_table(examples(lambda q: f"{subset} question {q}"), target / names["queries"])
        for config in REASON_CONFIGS:
            pq.write_table(examples(lambda q, c=config: f"{c} expanded query for {subset} {q}"),
                           target / names[config])
        if long and subset in BRIGHT_LONG:
            long_path = target / names["long_docs"]
            shutil.rmtree(f"{long_path}.pklz4", ignore_errors=True)
            long_ids = [f"{subset}/long_{q}.txt" for q in subset_qids]
            pq.write_table(pa.table({"id": pa.array(long_ids, pa.string()),
                                     "content": pa.array([f"Long text {d}" for d in long_ids], pa.string())}),
                           long_path)
        written[subset] = {"qids": subset_qids, "docids": docids, "gold": gold, "excluded": excluded}
    return written


R2MED_SUBSETS = ("Biology", "Bioinformatics", "Medical-Sciences", "MedXpertQA-Exam", "MedQA-Diag",
                 "PMC-Treatment", "PMC-Clinical", "IIYi-Clinical")


def write_r2med_hub_cache(hub_cache: str | Path, subsets: Iterable[str] = R2MED_SUBSETS,
                          n_queries: int | None = None, first_stage_dir: str | Path | None = SHARED_FIRST_STAGE,
                          ref: str = "main") -> dict[str, dict]:
    """Write R2MED JSON-lines files into a Hugging Face hub cache at the pinned commits of ``tasks.r2med``.

    Layout (as huggingface_hub writes it): ``datasets--R2MED--<Task>/blobs/<hash>``,
    ``snapshots/<commit>/<file>`` (symlinks to the blobs) and ``refs/<ref>`` containing the commit.
    """
    from tasks.r2med import REVISIONS

    written: dict[str, dict] = {}
    for subset in subsets:
        run_path = Path(first_stage_dir) / f"r2med_{subset}" / "e5-mistral-7b-instruct_top100.trec" \
            if first_stage_dir else None
        if run_path is not None and run_path.is_file():
            qids, candidates = _run_ids(f"r2med_{subset}", "e5-mistral-7b-instruct_top100", Path(first_stage_dir))
        else:
            qids = [f"q{i}" for i in range(n_queries or 4)]
            pool = [f"{subset}_doc_{i}" for i in range(12)]
            candidates = {q: pool for q in qids}
        if n_queries is not None:
            qids = qids[:n_queries]
        gold = {q: _pick(q, candidates[q], "gold", 9, 2) for q in qids}
        docids = list(dict.fromkeys(d for q in qids for d in candidates[q]))
        files = {
            "corpus.jsonl": [{"id": d, "text": f"Passage {d}."} for d in docids],
            "query.jsonl": [{"id": q, "text": f"{subset} patient question {q}", "doc_id": gold[q],
                             "answer": "an answer", "body_system": "Other"} for q in qids],
            "qrels.jsonl": [{"q_id": q, "p_id": d, "score": 1} for q in qids for d in gold[q]],
        }
        repo = Path(hub_cache) / f"datasets--R2MED--{subset}"
        commit = REVISIONS[subset]
        snapshot = repo / "snapshots" / commit
        (repo / "blobs").mkdir(parents=True, exist_ok=True)
        snapshot.mkdir(parents=True, exist_ok=True)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
        for name, rows in files.items():
            data = "".join(json.dumps(r) + "\n" for r in rows).encode()
            blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
            blob.write_bytes(data)
            link = snapshot / name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(Path("..") / ".." / "blobs" / blob.name)
        written[subset] = {"qids": qids, "docids": docids, "gold": gold}
    return written
