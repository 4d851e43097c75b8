"""R2MED task: names, pinned revisions, and loading a fixture Hugging Face cache through snapshot_download."""

from __future__ import annotations

import re

import pytest

from data_fixtures import R2MED_SUBSETS, write_r2med_hub_cache
from harness.errors import DataNotAvailableError, HarnessError
from tasks import r2med


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants

    if not huggingface_hub.constants.HF_HUB_OFFLINE:
        pytest.skip("these tests need HF_HUB_OFFLINE=1 when huggingface_hub is imported (tests/conftest.py)")
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def test_subsets_and_pinned_revisions():
    assert r2med.SUBSETS == R2MED_SUBSETS
    assert set(r2med.REVISIONS) == set(r2med.SUBSETS)
    assert all(re.fullmatch(r"[0-9a-f]{40}", rev) for rev in r2med.REVISIONS.values())


def test_resolve_names():
    tasks = r2med.resolve(None)
    assert [t.subset for t in tasks] == list(r2med.SUBSETS)
    (task,) = r2med.resolve("medqa-diag")
    assert task.subset == "MedQA-Diag" and task.name == "r2med/MedQA-Diag"
    assert task.published_run_key() == "r2med_MedQA-Diag"
    assert task.default_first_stage == "e5-mistral-published"
    assert task.revision == "hf:R2MED/MedQA-Diag@78b585990279cc01a493f876c1b0cf09557fba57"
    with pytest.raises(HarnessError, match="Did you mean 'r2med/PMC-Clinical'"):
        r2med.resolve("PMC-Clinic")


def test_registry_resolves_r2med():
    from tasks import resolve_tasks

    assert [t.subset for t in resolve_tasks("r2med/Biology")] == ["Biology"]
    assert len(resolve_tasks("r2med")) == 8


def test_loads_through_snapshot_download(hub_cache):
    fixture = write_r2med_hub_cache(hub_cache, subsets=("Biology",), n_queries=6, first_stage_dir=None)["Biology"]
    (task,) = r2med.resolve("Biology")
    assert task.snapshot_dir.parts[-2:] == ("snapshots", r2med.REVISIONS["Biology"])
    assert task.snapshot_dir.is_relative_to(hub_cache / "datasets--R2MED--Biology")
    queries = task.queries()
    assert list(queries) == fixture["qids"] and queries["q2"] == "Biology patient question q2"
    assert task.query_fields() == ["original"]
    assert task.qrels == {q: {d: 1 for d in g} for q, g in fixture["gold"].items()}
    assert task.excluded == {}
    assert task.docs(["Biology_doc_3", "missing"]) == {"Biology_doc_3": "Passage Biology_doc_3."}
    assert [d for d, _ in task.iter_docs()] == fixture["docids"]
    assert len(task.queries()) == 6 and task.details() == {"hf_dataset": "R2MED/Biology"}


def test_grades_are_integers(hub_cache):
    write_r2med_hub_cache(hub_cache, subsets=("IIYi-Clinical",), n_queries=2, first_stage_dir=None)
    path = hub_cache / "datasets--R2MED--IIYi-Clinical" / "snapshots" / r2med.REVISIONS["IIYi-Clinical"]
    qrels = path / "qrels.jsonl"
    text = qrels.read_text().replace('"score": 1', '"score": "2.0"', 1)
    qrels.unlink()  # replace the symlink by a plain file
    qrels.write_text(text)
    (task,) = r2med.resolve("IIYi-Clinical")
    grades = sorted(g for docs in task.qrels.values() for g in docs.values())
    assert grades[-1] == 2 and all(isinstance(g, int) for g in grades)


def test_not_cached_offline(hub_cache):
    (task,) = r2med.resolve("Bioinformatics")
    with pytest.raises(DataNotAvailableError) as info:
        task.queries()
    message = str(info.value)
    assert "R2MED/Bioinformatics" in message and r2med.REVISIONS["Bioinformatics"] in message
    assert "HF_HOME" in message and "harness run --task PATH" in message


def test_incomplete_snapshot(hub_cache):
    write_r2med_hub_cache(hub_cache, subsets=("PMC-Treatment",), n_queries=2, first_stage_dir=None)
    snapshot = hub_cache / "datasets--R2MED--PMC-Treatment" / "snapshots" / r2med.REVISIONS["PMC-Treatment"]
    (snapshot / "qrels.jsonl").unlink()
    (task,) = r2med.resolve("PMC-Treatment")
    with pytest.raises(DataNotAvailableError, match="lacks qrels.jsonl"):
        task.qrels
