"""Test-wide setup: offline hubs, caches in a temporary directory, shared fixtures."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_FIRST_STAGE = ROOT.parent / "shared" / "data" / "first-stage"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OPENAI_API_KEY", "test-dummy")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ helpers (tiny_model, fakes) importable

# Caches live in one temporary directory per test session. Set at import time, before any test module can import
# ir_datasets (which fixes its home directory on import) or huggingface_hub.
_CACHE_ROOT = Path(tempfile.mkdtemp(prefix="harness-tests-"))
for _var, _sub in (("HARNESS_CACHE_DIR", "harness"), ("IR_DATASETS_HOME", "ir_datasets"),
                   ("HF_DATASETS_CACHE", "hf_datasets")):
    os.environ[_var] = str(_CACHE_ROOT / _sub)


@pytest.fixture(autouse=True, scope="session")
def _isolated_caches():
    yield _CACHE_ROOT
    shutil.rmtree(_CACHE_ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2 model + byte-level BPE tokenizer, built offline once per test session."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen3 causal LM (Qwen3-style template, "yes"/"no" single tokens)."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen3"), "qwen3")


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tmp_path_factory) -> Path:
    """A tiny random BERT cross-encoder (sequence classification, one label)."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-cross-encoder"), "cross-encoder")


@pytest.fixture(scope="session")
def shared_first_stage() -> Path:
    if not SHARED_FIRST_STAGE.is_dir():
        pytest.skip(f"shared first-stage runs not present at {SHARED_FIRST_STAGE}")
    return SHARED_FIRST_STAGE
