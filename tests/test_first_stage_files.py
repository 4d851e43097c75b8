"""First stages from files: run:PATH_OR_URL, the ReasonRank published runs, downloads, and real run quirks."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

from data_fixtures import write_bright_cache, write_r2med_hub_cache
from harness.download import fetch
from harness.files import sha256_file
from harness.errors import DataNotAvailableError, HarnessError
from harness.first_stage import FirstStageOptions, build_first_stage
from harness.first_stage import published
from harness.trec import read_run
from tasks.beir import BeirDirTask

BRIGHT_QUERIES = {"biology": 103, "earth_science": 116, "economics": 103, "psychology": 101, "robotics": 101,
                  "stackoverflow": 117, "sustainable_living": 108, "leetcode": 142, "pony": 112, "aops": 111,
                  "theoremqa_questions": 194, "theoremqa_theorems": 76}
R2MED_QUERIES = {"Biology": 103, "Bioinformatics": 77, "Medical-Sciences": 88, "MedXpertQA-Exam": 97,
                 "MedQA-Diag": 118, "PMC-Treatment": 150, "PMC-Clinical": 114, "IIYi-Clinical": 129}
R2MED_DUPLICATES = {"Bioinformatics": 18, "MedQA-Diag": 79, "Medical-Sciences": 17, "PMC-Treatment": 223}
OPTIONS = FirstStageOptions()
REFERENCE = FirstStageOptions(extra=(("run_mode", "reference"),))


# -- a small BEIR-layout task with the quirks of real data ---------------------------------------
@pytest.fixture
def beir_task(tmp_path) -> BeirDirTask:
    root = tmp_path / "task"
    (root / "qrels").mkdir(parents=True)
    docs = ["d1", "d2", "d3", "d4", "d5", "doc with space.txt", "x1"]
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "text": f"text {d}"}) + "\n" for d in docs))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": f"query {q}"}) + "\n"
                                                for q in ("q1", "q2", "q3")))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\tx1\t-1\nq2\td2\t2\n")
    return BeirDirTask(root)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_run_file_quirks_are_counted(beir_task, tmp_path):
    run = _write(tmp_path / "run.trec", [
        "q1 Q0 x1 1 9.0 t",                  # excluded for q1: removed before the top-k cut
        "q1 Q0 d1 2 8.0 t",
        "q1 Q0 doc with space.txt 3 7.0 t",  # docid with spaces
        "q1 Q0 ghost 4 6.0 t",               # not in the corpus
        "q1 Q0 d1 5 5.0 t",                  # duplicate
        "q1 Q0 d3 6 4.0 t",                  # beyond top-k (3)
        "q2 Q0 d2 1 oops t",                 # malformed score
        "q2 Q0 d2 1 3.0 t",
        "short line",                         # malformed
        "q9 Q0 d1 1 1.0 t",                   # query absent from the task
    ])                                        # q3 absent from the run
    stage = build_first_stage(f"run:{run}", OPTIONS)
    result = stage.retrieve(beir_task, FirstStageOptions(top_k=3))
    assert result.run == {"q1": [("d1", 8.0), ("doc with space.txt", 7.0)], "q2": [("d2", 3.0)]}
    assert result.report == {"docids_with_spaces": 1, "duplicate_docids": 1, "malformed_lines": 2,
                             "unknown_queries": 1, "missing_queries": 1, "excluded_removed": 1,
                             "beyond_top_k": 1, "not_in_corpus": 1}
    assert result.sha256 == hashlib.sha256(run.read_bytes()).hexdigest()
    assert result.source == run.name and result.params["mode"] == "robust"  # no machine path in records

    reference = build_first_stage(f"run:{run}", REFERENCE).retrieve(beir_task, FirstStageOptions(top_k=3))
    assert reference.run["q1"] == [("d1", 8.0), ("d3", 4.0)]
    assert reference.report["dropped_lines"] == 1 and reference.params["mode"] == "reference"


def test_run_for_another_task(beir_task, tmp_path):
    run = _write(tmp_path / "other.trec", ["1 Q0 d1 1 1.0 t", "2 Q0 d2 1 1.0 t"])
    with pytest.raises(HarnessError, match=r"shares no query id with task beir/task .*different task"):
        build_first_stage(f"run:{run}", OPTIONS).retrieve(beir_task, OPTIONS)


@pytest.mark.parametrize("lines", [[], ["", "   "], ["garbage", "q1 Q0 d1 x y t"]])
def test_empty_or_malformed_only_run(beir_task, tmp_path, lines):
    run = _write(tmp_path / "empty.trec", lines)
    with pytest.raises(HarnessError, match="contains no usable lines"):
        build_first_stage(f"run:{run}", OPTIONS).retrieve(beir_task, OPTIONS)


def test_bad_run_specs(tmp_path):
    with pytest.raises(HarnessError, match="needs a file or URL"):
        build_first_stage("run", OPTIONS)
    with pytest.raises(HarnessError, match="does not exist"):
        build_first_stage(f"run:{tmp_path / 'nope.trec'}", OPTIONS)
    with pytest.raises(HarnessError, match="Unknown run_mode"):
        build_first_stage(f"run:{tmp_path}", FirstStageOptions(extra=(("run_mode", "fast"),)))
    with pytest.raises(HarnessError, match="takes no argument"):
        build_first_stage("reasonir-published:x", OPTIONS)


def test_json_score_file(beir_task, tmp_path):
    path = tmp_path / "scores.json"
    path.write_text(json.dumps({"q1": {"d2": 0.5, "d1": 0.9, "d3": 0.5}, "q2": {"d2": 1}}))
    result = build_first_stage(f"run:{path}", OPTIONS).retrieve(beir_task, OPTIONS)
    assert result.run["q1"] == [("d1", 0.9), ("d3", 0.5), ("d2", 0.5)]  # ties: docid descending, like trec_eval
    assert result.run["q2"] == [("d2", 1.0)]


def test_tiny_default_run_loads():
    from tasks import resolve_tasks

    (task,) = resolve_tasks("tiny")
    result = build_first_stage(task.default_first_stage, OPTIONS).retrieve(task, OPTIONS)
    assert result.run and result.report["unknown_queries"] == 0


# -- downloads --------------------------------------------------------------------------------------
@pytest.fixture
def http_dir(tmp_path):
    """A local HTTP server over a directory (the only 'network' tests use)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_run_url_downloaded_once(beir_task, http_dir):
    root, base = http_dir
    _write(root / "run.trec", ["q1 Q0 d1 1 2.0 t", "q2 Q0 d2 1 1.0 t"])
    stage = build_first_stage(f"run:{base}/run.trec", OPTIONS)
    first = stage.retrieve(beir_task, OPTIONS)
    assert first.source == f"{base}/run.trec" and set(first.run) == {"q1", "q2"}
    (root / "run.trec").unlink()  # the second use must come from the cache
    again = build_first_stage(f"run:{base}/run.trec", OPTIONS).retrieve(beir_task, OPTIONS)
    assert again.run == first.run and again.sha256 == first.sha256


def test_fetch_verifies_sha256(http_dir, tmp_path):
    root, base = http_dir
    (root / "f.txt").write_text("hello\n")
    good = hashlib.sha256(b"hello\n").hexdigest()
    assert fetch(f"{base}/f.txt", tmp_path / "a" / "f.txt", sha256=good).read_text() == "hello\n"
    with pytest.raises(HarnessError, match="expected 0000"):
        fetch(f"{base}/f.txt", tmp_path / "b" / "f.txt", sha256="0" * 64)
    assert (tmp_path / "b" / "f.txt.bad").is_file() and not (tmp_path / "b" / "f.txt").exists()
    with pytest.raises(HarnessError, match="HTTP 404"):
        fetch(f"{base}/missing.txt", tmp_path / "c" / "missing.txt")


def test_fetch_offline_message(tmp_path):
    url = "http://127.0.0.1:9/runs/x.txt"  # nothing listens on the discard port
    with pytest.raises(DataNotAvailableError) as info:
        fetch(url, tmp_path / "x.txt", sha256="ab" * 32)
    message = str(info.value)
    assert url in message and str(tmp_path / "x.txt") in message and "by hand" in message


# -- the published runs (shared copies) -----------------------------------------------------------
def test_published_table_matches_shared_readme(shared_first_stage):
    readme = (shared_first_stage / "README.md").read_text()
    assert len(published.SHA256) == 20
    for (key, file), digest in published.SHA256.items():
        assert f"| {key}/{file}.trec |" in readme and digest in readme
    assert published.published_url("biology", published.REASONIR_FILE) == (
        "https://raw.githubusercontent.com/8421BCD/ReasonRank/06721fd6ef3766c0e00d59a87d2696a0b4b0c17a/"
        "runs/biology/reasonir_gpt4cot_top100.txt")


@pytest.mark.parametrize("subset", sorted(BRIGHT_QUERIES))
def test_bright_published_run_query_counts(shared_first_stage, subset):
    run, report = read_run(shared_first_stage / subset / "reasonir_gpt4cot_top100.trec")
    assert len(run) == BRIGHT_QUERIES[subset]
    assert all(len(hits) == 100 for hits in run.values())
    assert report == ({"docids_with_spaces": 12} if subset == "stackoverflow" else {})


def test_stackoverflow_reference_mode(shared_first_stage):
    path = shared_first_stage / "stackoverflow" / "reasonir_gpt4cot_top100.trec"
    run, report = read_run(path, mode="reference")
    assert {q: len(run[q]) for q in ("4", "87", "96")} == {"4": 95, "87": 95, "96": 98}
    assert report == {"docids_with_spaces": 12, "dropped_lines": 12}
    robust, _ = read_run(path)
    assert "pytorch_torch_tensor_functions/Memory Management_2_0.txt" in {d for d, _ in robust["4"]}


@pytest.mark.parametrize("subset", sorted(R2MED_QUERIES))
def test_r2med_published_run_duplicates(shared_first_stage, subset):
    run, report = read_run(shared_first_stage / f"r2med_{subset}" / "e5-mistral-7b-instruct_top100.trec")
    assert len(run) == R2MED_QUERIES[subset]
    assert report.get("duplicate_docids", 0) == R2MED_DUPLICATES.get(subset, 0)


@pytest.fixture
def mirror(shared_first_stage, monkeypatch):
    monkeypatch.setenv("HARNESS_FIRST_STAGE_DIR", str(shared_first_stage))
    return shared_first_stage


def test_reasonir_published_over_bright_fixture_caches(mirror):
    """Every BRIGHT subset: the published run lines up with a fixture cache loaded by ir_datasets."""
    from tasks.bright import resolve

    written = write_bright_cache(None, first_stage_dir=mirror)
    for task in resolve(None):
        result = build_first_stage("reasonir-published", OPTIONS).retrieve(task, OPTIONS)
        assert len(result.run) == BRIGHT_QUERIES[task.subset], task.name
        assert result.report["missing_queries"] == 0 and result.report["unknown_queries"] == 0
        assert result.report["not_in_corpus"] == 0
        excluded = sum(len(v) for v in written[task.subset]["excluded"].values())
        if excluded:  # fixture exclusions are drawn from the candidates (plus one id per query never retrieved)
            assert 0 < result.report["excluded_removed"] <= excluded
            assert not any(d in task.excluded.get(q, ()) for q, hits in result.run.items() for d, _ in hits)
        else:
            assert result.report["excluded_removed"] == 0
        assert result.sha256 == published.SHA256[(task.subset, published.REASONIR_FILE)]
        assert result.params["license"] == "MIT" and "8421BCD" in result.params["attribution"]
        assert result.params["copy"] == "HARNESS_FIRST_STAGE_DIR"
        assert result.source == published.published_url(task.subset, published.REASONIR_FILE)

    (stackoverflow,) = resolve("stackoverflow")
    reference = build_first_stage("reasonir-published", REFERENCE).retrieve(stackoverflow, REFERENCE)
    assert {q: len(reference.run[q]) for q in ("4", "87", "96")} == {"4": 95, "87": 95, "96": 98}


def test_e5_mistral_published_over_r2med_fixture_caches(mirror, tmp_path, monkeypatch):
    import huggingface_hub.constants

    from tasks.r2med import resolve

    if not huggingface_hub.constants.HF_HUB_OFFLINE:
        pytest.skip("needs HF_HUB_OFFLINE=1 at import time (tests/conftest.py)")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    write_r2med_hub_cache(tmp_path / "hub", first_stage_dir=mirror)
    for task in resolve(None):
        result = build_first_stage("e5-mistral-published", OPTIONS).retrieve(task, OPTIONS)
        assert len(result.run) == R2MED_QUERIES[task.subset]
        assert result.report.get("duplicate_docids", 0) == R2MED_DUPLICATES.get(task.subset, 0)
        assert result.report["not_in_corpus"] == 0 and result.report["excluded_removed"] == 0


def test_published_wrong_benchmark(beir_task):
    with pytest.raises(HarnessError, match="has runs for bright only, not for task beir/task"):
        build_first_stage("reasonir-published", OPTIONS).retrieve(beir_task, OPTIONS)
    with pytest.raises(HarnessError, match="has runs for r2med only"):
        build_first_stage("e5-mistral-published", OPTIONS).retrieve(beir_task, OPTIONS)


def test_published_long_variant_has_no_run():
    from tasks.bright import resolve

    with pytest.raises(HarnessError, match="published no reasonir_gpt4cot_top100 run for bright/biology-long"):
        build_first_stage("reasonir-published", OPTIONS).retrieve(resolve("biology-long")[0], OPTIONS)


class _KeyTask:
    """Just enough of a task to resolve a published file (no loading)."""
    benchmark = "bright"
    name = "bright/pony"

    def published_run_key(self):
        return "pony"


def test_mirror_sha256_mismatch(shared_first_stage, tmp_path, monkeypatch):
    bad = tmp_path / "mirror" / "pony"
    bad.mkdir(parents=True)
    text = (shared_first_stage / "pony" / "reasonir_gpt4cot_top100.trec").read_text()
    (bad / "reasonir_gpt4cot_top100.trec").write_text(text.replace(" 1 ", " 2 ", 1))
    monkeypatch.setenv("HARNESS_FIRST_STAGE_DIR", str(tmp_path / "mirror"))
    stage = build_first_stage("reasonir-published", OPTIONS)
    with pytest.raises(HarnessError, match="HARNESS_FIRST_STAGE_DIR.*expected 20236a85"):
        stage._local_file(stage._key(_KeyTask()))


def test_cached_download_sha256_mismatch_is_quarantined(shared_first_stage, tmp_path, monkeypatch):
    from harness.paths import cache_dir

    monkeypatch.delenv("HARNESS_FIRST_STAGE_DIR", raising=False)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    cached = cache_dir("first-stage") / "pony" / "reasonir_gpt4cot_top100.txt"
    cached.parent.mkdir(parents=True)
    shutil.copy(shared_first_stage / "pony" / "reasonir_gpt4cot_top100.trec", cached)
    stage = build_first_stage("reasonir-published", OPTIONS)
    assert stage._local_file("pony") == cached  # intact copy: used as is
    with cached.open("a") as fh:
        fh.write("0 Q0 extra 101 0.1 reasonir\n")
    with pytest.raises(HarnessError, match="moved to .*\\.bad"):
        stage._local_file("pony")
    assert not cached.exists() and cached.with_name(cached.name + ".bad").is_file()
    # next time it is downloaded afresh; offline that is a clear error naming the pinned URL
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with pytest.raises(DataNotAvailableError, match="raw.githubusercontent.com/8421BCD/ReasonRank/06721fd6"):
        stage._local_file("pony")
    assert sha256_file(cached.with_name(cached.name + ".bad")) != published.SHA256[("pony", published.REASONIR_FILE)]


def test_published_run_downloaded_once_and_verified(shared_first_stage, http_dir, tmp_path, monkeypatch):
    """No mirror: the pinned URL is fetched into the harness cache once (here from a local server)."""
    root, base = http_dir
    served = root / published.COMMIT / "runs" / "pony" / "reasonir_gpt4cot_top100.txt"
    served.parent.mkdir(parents=True)
    shutil.copy(shared_first_stage / "pony" / "reasonir_gpt4cot_top100.trec", served)
    monkeypatch.setattr(published, "URL", base + "/{commit}/runs/{key}/{file}.txt")
    monkeypatch.delenv("HARNESS_FIRST_STAGE_DIR", raising=False)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    stage = build_first_stage("reasonir-published", OPTIONS)
    path = stage._local_file("pony")
    assert path == tmp_path / "cache" / "first-stage" / "pony" / "reasonir_gpt4cot_top100.txt"
    assert stage._origin(path) == "download cache"
    served.unlink()
    assert stage._local_file("pony") == path  # cached: no second download
    assert sha256_file(path) == published.SHA256[("pony", published.REASONIR_FILE)]
