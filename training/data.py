"""Training data: loaders for the published ReasonRank sets and converters to trl rows.

Layouts (training.md §2):

- ``liuwenhan/reasonrank_data_13k`` ("ranking examples"): ``training_data_all.jsonl`` with ``dataset``, ``qid``,
  ``initial_list`` (docids in prompt order), ``final_list`` (teacher ranking of the same ids), ``reasoning``
  (teacher chain) and ``relevant_docids`` (teacher positives); query texts under ``id_query/`` and passage texts
  under ``id_doc/``. ``harness train synthesize`` writes this layout too.
- ``liuwenhan/reasonrank_data_sft``: one LLaMA-Factory alpaca JSON file (``instruction`` / ``input`` /
  ``output`` / ``system``).
- ``liuwenhan/reasonrank_data_rl``: verl parquet files (``train.parquet``, ``val.parquet``) with ``prompt`` (chat
  messages), ``reward_model.ground_truth`` and ``extra_info.initial_list`` / ``final_list`` / ``relevant_docids``.

The file layout inside ``id_query/`` and ``id_doc/`` of the published 13k set has not been inspected, so the
reader is tolerant: every ``*.json`` (an ``{id: text}`` object, or a list of objects), ``*.jsonl`` (objects with
an id key such as ``id``/``qid``/``docid``/``_id`` and a text key such as ``text``/``query``/``contents``) and
``*.tsv`` (``id<TAB>text``) file below those directories is read, recursively. Our own writer uses
``id_query/<dataset>.jsonl`` and ``id_doc/<dataset>.jsonl`` with ``{"id": ..., "text": ...}`` lines.

Converted rows:

- SFT: ``{"messages": [system, user, assistant]}`` where system and user are exactly what the ``reasonrank``
  reranker sends at inference (``rerankers.reasonrank.build_messages``) and the assistant target is
  ``<think>{reasoning}</think> <answer>{ranking}</answer>``.
- GRPO: ``{"prompt": [system, user], "ground_truth": "[3] > [1] > …", "initial_list": [...],
  "relevant_docids": [...]}`` — the columns ``training.rewards.multi_view_reward`` reads.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from harness.errors import DataNotAvailableError, HarnessError

PUBLISHED = {
    "13k": "liuwenhan/reasonrank_data_13k",
    "sft": "liuwenhan/reasonrank_data_sft",
    "rl": "liuwenhan/reasonrank_data_rl",
}
EXAMPLES_FILE = "training_data_all.jsonl"
QUERY_DIR = "id_query"
DOC_DIR = "id_doc"
DEFAULT_PASSAGE_LENGTH = 512  # DOC_MAXLEN of the training sets math-qa / math-theorem in the original code

_ID_KEYS = ("id", "_id", "qid", "docid", "doc_id", "query_id", "pid")
_TEXT_KEYS = ("text", "query", "contents", "content", "doc", "passage", "body", "segment")


# -- ranking examples (the 13k layout) -------------------------------------------------------------------

@dataclass
class RankingExamples:
    """Teacher-labelled listwise examples plus the query and passage texts they reference."""

    rows: list[dict[str, Any]]
    queries: dict[str, str] = field(default_factory=dict)
    docs: dict[str, str] = field(default_factory=dict)
    source: str = ""


def resolve_source(source: str) -> Path:
    """A local file/directory, a short name (``13k``, ``sft``, ``rl``) or a HF dataset id → a local path.

    Hub datasets are fetched with ``huggingface_hub.snapshot_download`` (cached in ``HF_HOME``). Offline or
    unreachable hubs raise a DataNotAvailableError that names the dataset and how to provide it locally.
    """
    path = Path(source).expanduser()
    if path.exists():
        return path
    repo_id = PUBLISHED.get(source, source)
    if repo_id.count("/") != 1 or source.startswith((".", "/", "~")):
        raise HarnessError(
            f"Training data {source!r} is neither an existing file or directory nor a Hugging Face dataset id "
            f"(owner/name). Published ReasonRank sets: {', '.join(PUBLISHED.values())}."
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=repo_id, repo_type="dataset"))
    except Exception as exc:  # offline mode, no network, unknown repo, auth: all mean "not available here"
        raise DataNotAvailableError(
            f"Dataset {repo_id} is not available locally and could not be downloaded ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Download it on a machine with network access, e.g. "
            f"`huggingface-cli download --repo-type dataset {repo_id} --local-dir DIR`, and pass DIR instead "
            f"(or unset HF_HUB_OFFLINE so it can be fetched)."
        ) from exc


def load_ranking_examples(source: str | Path) -> RankingExamples:
    """Read the 13k layout (``training_data_all.jsonl`` + ``id_query/`` + ``id_doc/``) from a dir or hub id."""
    root = resolve_source(str(source))
    examples_file = root if root.is_file() else root / EXAMPLES_FILE
    if not examples_file.is_file():
        candidates = sorted(root.glob("*.jsonl")) if root.is_dir() else []
        if len(candidates) != 1:
            raise HarnessError(
                f"{root} has no {EXAMPLES_FILE} (the reasonrank_data_13k layout: {EXAMPLES_FILE}, "
                f"{QUERY_DIR}/, {DOC_DIR}/)."
            )
        examples_file = candidates[0]
    base = examples_file.parent
    rows = []
    for lineno, obj in _iter_jsonl(examples_file):
        missing = [k for k in ("qid", "initial_list", "final_list") if k not in obj]
        if missing:
            raise HarnessError(f"{examples_file}:{lineno}: missing {', '.join(missing)} (13k layout expected).")
        obj["qid"] = str(obj["qid"])
        obj["initial_list"] = [str(d) for d in obj["initial_list"]]
        obj["final_list"] = [str(d) for d in obj["final_list"]]
        obj["relevant_docids"] = [str(d) for d in obj.get("relevant_docids") or []]
        obj.setdefault("dataset", "unknown")
        obj.setdefault("reasoning", "")
        rows.append(obj)
    return RankingExamples(rows=rows, queries=_read_texts(base / QUERY_DIR), docs=_read_texts(base / DOC_DIR),
                           source=str(examples_file))


def write_ranking_examples(out_dir: str | Path, examples: RankingExamples) -> Path:
    """Write the 13k layout: ``training_data_all.jsonl`` + ``id_query/<dataset>.jsonl`` + ``id_doc/<dataset>.jsonl``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_dataset_q: dict[str, dict[str, str]] = {}
    by_dataset_d: dict[str, dict[str, str]] = {}
    for row in examples.rows:
        ds = _safe_name(row.get("dataset", "unknown"))
        if row["qid"] in examples.queries:
            by_dataset_q.setdefault(ds, {})[row["qid"]] = examples.queries[row["qid"]]
        for d in row["initial_list"]:
            if d in examples.docs:
                by_dataset_d.setdefault(ds, {})[d] = examples.docs[d]
    write_jsonl(out / EXAMPLES_FILE, examples.rows)
    for sub, groups in ((QUERY_DIR, by_dataset_q), (DOC_DIR, by_dataset_d)):
        for ds, texts in groups.items():
            write_jsonl(out / sub / f"{ds}.jsonl", ({"id": k, "text": v} for k, v in texts.items()))
    return out / EXAMPLES_FILE


def ranking_string(initial_list: list[str], final_list: list[str]) -> str:
    """Teacher ranking as prompt identifiers: ``[3] > [1] > [2]`` (identifier = 1-based position in the prompt)."""
    position = {d: i + 1 for i, d in enumerate(initial_list)}
    missing = [d for d in final_list if d not in position]
    if missing:
        raise HarnessError(f"final_list contains docids that are not in initial_list: {missing[:5]}")
    return " > ".join(f"[{position[d]}]" for d in final_list)


def assistant_target(reasoning: str, ranking: str) -> str:
    """SFT target: ``<think>{reasoning}</think> <answer>{ranking}</answer>`` (matches the reward's pattern)."""
    return f"<think>{reasoning.strip()}</think> <answer>{ranking}</answer>"


class PromptBuilder:
    """Builds the inference prompt (system + user messages) of the ``reasonrank`` reranker for one example.

    Passages are processed exactly as at inference (``process_passage``: ftfy, truncation to ``passage_length``
    tokens with ``tokenizer``, ``[n]`` → ``(n)``); the query with ``process_query``.
    """

    def __init__(self, tokenizer: Any = None, passage_length: int = DEFAULT_PASSAGE_LENGTH):
        from rerankers import reasonrank

        self._rr = reasonrank
        self.tokenizer = tokenizer
        self.passage_length = passage_length

    def messages(self, query: str, passages: list[str]) -> list[dict[str, str]]:
        import ftfy

        rr = self._rr
        if self.tokenizer is None:
            raise HarnessError("Building ReasonRank prompts needs the model's tokenizer (passages are truncated to "
                               f"{self.passage_length} tokens with it).")
        processed = [rr.process_passage(self.tokenizer, p, self.passage_length) for p in passages]
        messages = rr.build_messages(query, processed)
        # Inference runs ftfy once more over the chat-templated prompt; its first line (<|im_start|>system)
        # contains "<", which switches HTML unescaping off for the whole string. ftfy works line by line, so
        # fixing each message without unescaping yields the same bytes once trl applies the template.
        return [{"role": m["role"], "content": ftfy.fix_text(m["content"], unescape_html=False)} for m in messages]


def sft_rows(examples: RankingExamples, builder: PromptBuilder) -> list[dict[str, Any]]:
    """13k-layout examples → ``{"messages": [system, user, assistant]}`` rows (examples missing texts raise)."""
    out = []
    for row in examples.rows:
        messages = builder.messages(*_texts_for(row, examples))
        ranking = ranking_string(row["initial_list"], row["final_list"])
        messages = messages + [{"role": "assistant", "content": assistant_target(row.get("reasoning", ""), ranking)}]
        out.append({"messages": messages, "dataset": row.get("dataset", "unknown"), "qid": row["qid"]})
    return out


def grpo_rows(examples: RankingExamples, builder: PromptBuilder) -> list[dict[str, Any]]:
    """13k-layout examples → GRPO rows with the columns the multi-view reward reads."""
    out = []
    for row in examples.rows:
        out.append({
            "prompt": builder.messages(*_texts_for(row, examples)),
            "ground_truth": ranking_string(row["initial_list"], row["final_list"]),
            "initial_list": list(row["initial_list"]),
            "relevant_docids": list(row["relevant_docids"]),
            "dataset": row.get("dataset", "unknown"),
            "qid": row["qid"],
        })
    return out


# -- published SFT / RL sets -----------------------------------------------------------------------------

def load_published_sft(source: str | Path = "sft") -> list[dict[str, Any]]:
    """``reasonrank_data_sft`` (alpaca JSON) → ``{"messages": [system, user, assistant]}`` rows."""
    root = resolve_source(str(source))
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".json", ".jsonl"))
    files = [p for p in files if p.name != "dataset_info.json"]
    rows: list[dict[str, Any]] = []
    for path in files:
        for record in _read_records(path):
            if "instruction" not in record or "output" not in record:
                continue
            user = str(record["instruction"])
            if record.get("input"):
                user = f"{user}\n{record['input']}"  # LLaMA-Factory's alpaca convention
            messages = []
            if record.get("system"):
                messages.append({"role": "system", "content": str(record["system"])})
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": str(record["output"])}]
            rows.append({"messages": messages})
    if not rows:
        raise HarnessError(f"No alpaca rows (instruction/output) found in {root} (reasonrank_data_sft layout).")
    return rows


def load_published_rl(source: str | Path = "rl", split: str = "train") -> list[dict[str, Any]]:
    """``reasonrank_data_rl`` (verl parquet) → GRPO rows (prompt, ground_truth, initial_list, relevant_docids)."""
    import pandas as pd

    root = resolve_source(str(source))
    if root.is_file():
        path = root
    else:
        matches = sorted(root.rglob(f"{split}*.parquet"))
        if not matches:
            raise HarnessError(f"No {split}*.parquet in {root} (reasonrank_data_rl layout: train.parquet, val.parquet).")
        path = matches[0]
    frame = pd.read_parquet(path)
    rows = []
    for record in frame.to_dict(orient="records"):
        record = _plain(record)
        extra = record.get("extra_info") or {}
        reward_model = record.get("reward_model") or {}
        ground_truth = reward_model.get("ground_truth") or record.get("label")
        initial = extra.get("initial_list") or record.get("initial_list")
        relevant = extra.get("relevant_docids") or record.get("relevant_docids") or []
        if not record.get("prompt") or ground_truth is None or initial is None:
            raise HarnessError(f"{path}: a row lacks prompt / reward_model.ground_truth / extra_info.initial_list "
                               "(verl layout of reasonrank_data_rl expected).")
        rows.append({
            "prompt": [{"role": m["role"], "content": m["content"]} for m in record["prompt"]],
            "ground_truth": str(ground_truth),
            "initial_list": [str(d) for d in initial],
            "relevant_docids": [str(d) for d in relevant],
            "dataset": str(record.get("dataset") or record.get("data_source") or "unknown"),
        })
    return rows


# -- generic training-set resolution (used by sft.py / grpo.py / the convert command) --------------------

def load_sft_dataset(source: str, *, tokenizer: Any = None,
                     passage_length: int = DEFAULT_PASSAGE_LENGTH) -> list[dict[str, Any]]:
    """Any SFT source → messages rows: a messages JSONL, an alpaca JSON (the published SFT set), or a 13k dir."""
    kind, path = _detect(source)
    if kind == "messages":
        return _read_records(path)
    if kind == "alpaca":
        return load_published_sft(path)
    if kind == "examples":
        return sft_rows(load_ranking_examples(path), PromptBuilder(tokenizer, passage_length))
    raise HarnessError(f"{source} holds {kind} rows; SFT needs messages rows, the published SFT set or a 13k dir.")


def load_grpo_dataset(source: str, *, split: str = "train", tokenizer: Any = None,
                      passage_length: int = DEFAULT_PASSAGE_LENGTH) -> list[dict[str, Any]]:
    """Any GRPO source → prompt rows: a prompt JSONL, the published RL parquet set, or a 13k dir."""
    kind, path = _detect(source)
    if kind == "prompts":
        return _read_records(path)
    if kind == "verl":
        return load_published_rl(path, split=split)
    if kind == "examples":
        return grpo_rows(load_ranking_examples(path), PromptBuilder(tokenizer, passage_length))
    raise HarnessError(f"{source} holds {kind} rows; GRPO needs prompt rows, the published RL set or a 13k dir.")


def _detect(source: str) -> tuple[str, Path]:
    path = resolve_source(source)
    if path.is_dir():
        if (path / EXAMPLES_FILE).is_file():
            return "examples", path
        if any(path.rglob("*.parquet")):
            return "verl", path
        files = [p for p in sorted(path.rglob("*.json")) + sorted(path.rglob("*.jsonl")) if p.name != "dataset_info.json"]
        if not files:
            raise HarnessError(f"{path} contains no training data files (.jsonl, .json, .parquet).")
        kind, _ = _detect(str(files[0]))
        return kind, (path if kind in ("alpaca", "examples") else files[0])
    if path.suffix == ".parquet":
        return "verl", path
    first = next(iter(_read_records(path, limit=1)), None)
    if first is None:
        raise HarnessError(f"{path} is empty.")
    if "messages" in first:
        return "messages", path
    if "prompt" in first and "ground_truth" in first:
        return "prompts", path
    if "instruction" in first and "output" in first:
        return "alpaca", path
    if "initial_list" in first and "final_list" in first:
        return "examples", path
    raise HarnessError(f"{path}: unrecognised rows (keys {sorted(first)[:8]}); expected messages, prompt/ground_truth, "
                       "alpaca instruction/output, or 13k initial_list/final_list rows.")


def _texts_for(row: dict[str, Any], examples: RankingExamples) -> tuple[str, list[str]]:
    query = examples.queries.get(row["qid"])
    if query is None:
        raise HarnessError(f"Query text for qid {row['qid']!r} not found under {QUERY_DIR}/ ({examples.source}).")
    missing = [d for d in row["initial_list"] if d not in examples.docs]
    if missing:
        raise HarnessError(f"Passage texts for {len(missing)} docids of qid {row['qid']!r} not found under "
                           f"{DOC_DIR}/ (e.g. {missing[0]!r}; {examples.source}).")
    return query, [examples.docs[d] for d in row["initial_list"]]


# -- small file helpers ---------------------------------------------------------------------------------

def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write atomically (temp file + rename) so an interrupted write never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [obj for _, obj in _iter_jsonl(Path(path))]


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise HarnessError(f"{path}:{lineno}: not valid JSON ({exc.msg}).") from exc
            if not isinstance(obj, dict):
                raise HarnessError(f"{path}:{lineno}: expected a JSON object per line.")
            yield lineno, obj


def _read_records(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        out = []
        for _, obj in _iter_jsonl(path):
            out.append(obj)
            if limit and len(out) >= limit:
                break
        return out
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return [obj for _, obj in _iter_jsonl(path)][: limit or None]  # a .json file holding JSON lines
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), [data])
    return [d for d in data if isinstance(d, dict)][: limit or None]


def _read_texts(directory: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    if not directory.is_dir():
        return texts
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if path.suffix == ".tsv":
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    key, sep, text = line.rstrip("\n").partition("\t")
                    if sep:
                        texts[key] = text
        elif path.suffix in (".json", ".jsonl"):
            data: Any
            if path.suffix == ".jsonl":
                data = read_jsonl(path)
            else:
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                except json.JSONDecodeError:
                    data = read_jsonl(path)
            is_record = isinstance(data, dict) and any(k in data for k in _ID_KEYS) and any(k in data for k in _TEXT_KEYS)
            if isinstance(data, dict) and not is_record and all(isinstance(v, str) for v in data.values()):
                texts.update({str(k): v for k, v in data.items()})
                continue
            records = data if isinstance(data, list) else [data]
            for record in records:
                if isinstance(record, dict):
                    key = next((record[k] for k in _ID_KEYS if k in record), None)
                    text = next((record[k] for k in _TEXT_KEYS if k in record), None)
                    if key is not None and text is not None:
                        title = record.get("title")
                        texts[str(key)] = f"Title: {title} Content: {text}" if title else str(text)
    return texts


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)) or "unknown"


def _plain(value: Any) -> Any:
    """numpy arrays / scalars from parquet → plain Python lists and values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _plain(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


__all__ = [
    "PUBLISHED", "RankingExamples", "PromptBuilder", "resolve_source", "load_ranking_examples",
    "write_ranking_examples", "ranking_string", "assistant_target", "sft_rows", "grpo_rows",
    "load_published_sft", "load_published_rl", "load_sft_dataset", "load_grpo_dataset", "write_jsonl", "read_jsonl",
]
