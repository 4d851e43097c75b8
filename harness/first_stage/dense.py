"""Dense first stages: ``dense:MODEL`` (any sentence-embedding model, by HF id or local directory) and ``reasonir``
(``reasonir/ReasonIR-8B``, live, GPU).

Documents and queries are embedded in batches, L2-normalised, scored by cosine similarity; the query's excluded
documents are removed before the top-k cut. Corpus embeddings are cached on disk
(``$HARNESS_CACHE_DIR/dense/<key>/``), keyed by model, model revision, corpus content hash, document instruction and
maximum length, with a sha256 checksum — a damaged cache is rebuilt with a warning, never used.

ReasonIR is used the way its authors evaluate BRIGHT: ``AutoModel.from_pretrained(..., trust_remote_code=True,
torch_dtype="auto")`` and the model's own ``encode(texts, instruction=..., max_length=...)``; the query instruction
per BRIGHT task is ``REASONIR_QUERY_INSTRUCTIONS`` (formatted with the task name), documents get no instruction.
Those strings follow the BRIGHT/ReasonIR config convention; they are reconstructed, not copied from the ReasonIR
configs [unverified] — override with the ``query_instruction`` option when reproducing exactly. The published
ReasonIR runs (``reasonir-published``) used GPT-4 reasoning queries: pass ``--query-field gpt4_reason``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from harness.errors import DataNotAvailableError, HarnessError, require
from harness.files import TempDir, recover_directory, sha256_file
from harness.first_stage.base import (
    FirstStage, FirstStageOptions, FirstStageResult, top_k_indices, unique_corpus,
)
from harness.paths import cache_dir

log = logging.getLogger(__name__)

REASONIR_MODEL = "reasonir/ReasonIR-8B"
_POST = "Given a {task} post, retrieve relevant passages that help answer the post"
REASONIR_QUERY_INSTRUCTIONS = {
    **{t: _POST for t in ("biology", "earth_science", "economics", "psychology", "robotics", "stackoverflow",
                          "sustainable_living")},
    "leetcode": "Given a coding problem, retrieve relevant examples that help answer the problem",
    "pony": "Given a {task} question, retrieve relevant passages that help answer the question",
    "aops": "Given a Math problem, retrieve relevant examples that help answer the problem",
    "theoremqa_questions": "Given a Math problem, retrieve relevant examples that help answer the problem",
    "theoremqa_theorems": "Given a Math problem, retrieve relevant theorems that help answer the problem",
}
_DEFAULT_BATCH = 32


class _SentenceTransformerEncoder:
    def __init__(self, model: str, device: str | None):
        st = require("sentence_transformers", "dense", "Dense retrieval (--first-stage dense:MODEL)")
        try:
            self.model = st.SentenceTransformer(model, device=device)
        except OSError as exc:
            raise DataNotAvailableError(
                f"Embedding model {model!r} is not available locally and cannot be downloaded ({exc}). Pass a local "
                "model directory (dense:/path/to/model) or run once with network access to cache it."
            ) from exc

    def encode(self, texts: list[str], instruction: str, batch_size: int, max_length: int | None) -> np.ndarray:
        if max_length:
            self.model.max_seq_length = max_length
        texts = [instruction + t for t in texts] if instruction else texts
        return np.asarray(self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                            convert_to_numpy=True, show_progress_bar=len(texts) > 1000))


class _ReasonIREncoder:
    def __init__(self, model: str, device: str | None):
        require("torch", "dense", "ReasonIR retrieval")
        transformers = require("transformers", "dense", "ReasonIR retrieval")
        import torch

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.model = transformers.AutoModel.from_pretrained(model, torch_dtype="auto", trust_remote_code=True)
        except OSError as exc:
            raise DataNotAvailableError(f"{model!r} is not available offline ({exc}). Download it first.") from exc
        self.model.eval().to(self.device)

    def encode(self, texts: list[str], instruction: str, batch_size: int, max_length: int | None) -> np.ndarray:
        import torch

        with torch.no_grad():
            emb = self.model.encode(texts, instruction=instruction, batch_size=batch_size,
                                    max_length=max_length or 32768)
        emb = np.asarray(emb, dtype=np.float32)
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


class DenseFirstStage(FirstStage):
    def __init__(self, model: str, *, reasonir: bool = False, query_instruction: str | None = None,
                 doc_instruction: str = "", batch_size: int = _DEFAULT_BATCH, max_length: int | None = None,
                 device: str | None = None):
        if not model:
            raise HarnessError("dense needs a model: --first-stage dense:MODEL_ID_OR_DIRECTORY")
        self.model = model
        self.reasonir = reasonir
        self.name = "reasonir" if reasonir else f"dense:{model}"
        self.query_instruction = query_instruction
        self.doc_instruction = doc_instruction
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self._encoder = None

    @property
    def encoder(self):
        if self._encoder is None:
            cls = _ReasonIREncoder if self.reasonir else _SentenceTransformerEncoder
            self._encoder = cls(self.model, self.device)
        return self._encoder

    def _query_instruction(self, task) -> str:
        if self.query_instruction is not None:
            return self.query_instruction
        if self.reasonir:
            template = REASONIR_QUERY_INSTRUCTIONS.get(task.subset.removesuffix("-long"), _POST)
            return template.format(task=task.subset.removesuffix("-long"))
        return ""

    def identity(self) -> dict:
        from harness.models import model_label

        return {"spec": "reasonir" if self.reasonir else "dense", "label": self.name if self.reasonir else
                f"dense-{model_label(self.model)}", "model": model_label(self.model),
                "model_revision": self._model_revision() if Path(self.model).is_dir() else None,
                "query_instruction": self.query_instruction, "doc_instruction": self.doc_instruction,
                "max_length": self.max_length}

    def _model_revision(self) -> str:
        path = Path(self.model)
        if path.is_dir():
            h = hashlib.sha256()
            for f in sorted(path.rglob("*")):
                if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".txt"):
                    h.update(f.name.encode())
                    h.update(str(f.stat().st_size).encode())
            return "sha256:" + h.hexdigest()[:16]
        return self.model

    def _doc_embeddings(self, task, docids: list[str], texts: list[str], root: Path) -> tuple[np.ndarray, bool]:
        key_info = {"model": self._model_revision(), "corpus": task.corpus_fingerprint(),
                    "doc_instruction": self.doc_instruction, "max_length": self.max_length}
        key = hashlib.sha256(json.dumps(key_info, sort_keys=True).encode()).hexdigest()[:24]
        directory = root / key
        cached = _load_embeddings(directory, key_info, len(docids))
        if cached is not None:
            return cached, True
        emb = self.encoder.encode(texts, self.doc_instruction, self.batch_size, self.max_length).astype(np.float32)
        try:
            _save_embeddings(directory, key_info, emb)
        except OSError as exc:  # a read-only or full cache: the run goes on, the corpus is re-encoded next time
            log.warning("Corpus embeddings not cached: %s is not writable (%s). Set HARNESS_CACHE_DIR to a writable "
                        "directory to keep them.", directory.parent, exc.strerror or exc)
        return emb, False

    def retrieve(self, task, options: FirstStageOptions) -> FirstStageResult:
        docids, texts, duplicates = unique_corpus(task)
        root = Path(options.cache_dir) / "dense" if options.cache_dir else cache_dir("dense")
        doc_emb, cached = self._doc_embeddings(task, docids, texts, root)
        queries = task.queries(options.query_field)
        qids = list(queries)
        instruction = self._query_instruction(task)
        query_emb = self.encoder.encode([queries[q] for q in qids], instruction, self.batch_size, self.max_length)
        doc_index = {d: i for i, d in enumerate(docids)}
        run, removed = {}, 0
        for row, qid in enumerate(qids):
            scores = doc_emb @ query_emb[row].astype(np.float32)
            scores = scores.astype(np.float64)
            for docid in task.excluded.get(qid, ()):
                i = doc_index.get(docid)
                if i is not None:
                    scores[i] = -np.inf
                    removed += 1
            run[qid] = [(docids[i], float(scores[i])) for i in top_k_indices(scores, options.top_k)]
        report = {k: v for k, v in {"duplicate_docids": duplicates, "excluded_removed": removed}.items() if v}
        return FirstStageResult(
            run=run,
            source=f"{self.name} (cosine, query field {options.query_field})",
            params={"model": self.model, "model_revision": self._model_revision(), "query_instruction": instruction,
                    "doc_instruction": self.doc_instruction, "max_length": self.max_length,
                    "embeddings_cached": cached, "documents": len(docids)},
            report=report,
        )


def _load_embeddings(directory: Path, key_info: dict, n_docs: int) -> np.ndarray | None:
    recover_directory(directory)
    manifest = directory / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
        if info.get("key") != key_info:
            raise ValueError("stale")
        if sha256_file(directory / "embeddings.npy") != info["sha256"]:
            raise ValueError("embeddings.npy fails its checksum")
        emb = np.load(directory / "embeddings.npy")
        if emb.shape[0] != n_docs:
            raise ValueError("wrong number of rows")
        return emb
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        log.warning("Dense embedding cache %s is unusable (%s); re-encoding the corpus.", directory, exc)
        return None


def _save_embeddings(directory: Path, key_info: dict, emb: np.ndarray) -> None:
    with TempDir(directory) as tmp:
        np.save(tmp / "embeddings.npy", emb)
        digest = sha256_file(tmp / "embeddings.npy")
        (tmp / "manifest.json").write_text(json.dumps({"key": key_info, "sha256": digest, "shape": emb.shape}))


def from_spec(argument: str | None, options: FirstStageOptions) -> DenseFirstStage:
    return DenseFirstStage(argument or "", query_instruction=options.get("query_instruction"),
                           batch_size=int(options.get("batch_size", _DEFAULT_BATCH)),
                           max_length=options.get("max_length"))


def reasonir(argument: str | None, options: FirstStageOptions) -> DenseFirstStage:
    return DenseFirstStage(argument or REASONIR_MODEL, reasonir=True,
                           query_instruction=options.get("query_instruction"),
                           batch_size=int(options.get("batch_size", 1)), max_length=options.get("max_length"))
