"""``run:PATH_OR_URL`` — candidates from any TREC run file (or a BRIGHT-style ``{qid: {docid: score}}`` JSON).

The run is fitted to the task, and every change is counted in ``FirstStageResult.report`` (never silent):

* ``unknown_queries``: run queries the task does not have (dropped);
* ``missing_queries``: task queries the run lacks (they get no candidates; they score 0 in evaluation);
* ``excluded_removed``: excluded documents (negative qrels) removed before the top-k cut, so they never take a
  rank slot (BRIGHT's protocol);
* ``beyond_top_k``: candidates cut by ``--top-k``;
* ``not_in_corpus``: candidates within the top-k whose docid the corpus lacks (dropped: there is no text to
  rerank; the list is not refilled from deeper ranks);
* plus the reader's counters (``docids_with_spaces``, ``dropped_lines``, ``duplicate_docids``, ``malformed_lines``).

Option ``run_mode`` (``robust`` default, or ``reference``: drop docid-with-space lines as the ReasonRank code does).

Per-subset files: a location containing ``{subset}`` (``run:RaDeR/{subset}/hybrid_BM25_Rader.json``) names one file
per subset of a multi-subset task; the experiment stays one group, its identity pins every subset's file by sha256,
and each subset reads its own file. Records also carry each file's git blob id (``git hash-object``), so a claim can
pin files published in a git repository without anyone downloading them first.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from harness.download import fetch
from harness.files import sha256_file
from harness.errors import HarnessError
from harness.first_stage.base import FirstStage, FirstStageOptions, FirstStageResult
from harness.trec import MODES, evaluation_order, read_run
from harness.types import Run


SUBSET = "{subset}"


def from_spec(argument: str | None, options: FirstStageOptions) -> "RunFileFirstStage":
    if not argument:
        raise HarnessError("First stage 'run' needs a file or URL: --first-stage run:PATH_OR_URL "
                           "(a TREC run 'qid Q0 docid rank score tag'), or run:DIR/{subset}/FILE for one file "
                           "per subset.")
    if SUBSET in argument:
        return RunTemplateFirstStage(argument, mode=run_mode(options))
    return RunFileFirstStage(argument, mode=run_mode(options))


def git_blob_id(path: Path) -> str:
    """The id git gives the file's content (``git hash-object PATH``): sha1 of ``blob <size>\\0`` + bytes."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_params(path: Path) -> dict[str, Any]:
    """What records keep of a local run file: its name, the folder it sat in (for display) and its git blob id."""
    return {"location": path.name, "folder": path.parent.name, "git_blob": git_blob_id(path)}


def run_mode(options: FirstStageOptions) -> str:
    mode = options.get("run_mode", "robust")
    if mode not in MODES:
        raise HarnessError(f"Unknown run_mode {mode!r}; use one of {', '.join(MODES)}.")
    return mode


def _is_url(location: str) -> bool:
    return urlparse(location).scheme in ("http", "https")


def read_run_file(path: Path, mode: str) -> tuple[Run, dict[str, int]]:
    """A TREC run, or a ``.json`` score file ``{qid: {docid: score}}`` (BRIGHT/RaDeR output)."""
    if path.suffix.lower() != ".json":
        return read_run(path, mode=mode)
    try:
        scores = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{path} is not a valid JSON score file {{qid: {{docid: score}}}} ({exc}).") from exc
    if not isinstance(scores, dict) or not all(isinstance(v, dict) for v in scores.values()):
        raise HarnessError(f"{path}: expected a JSON object {{qid: {{docid: score}}}}.")
    run: Run = {}
    malformed = 0
    for qid, docs in scores.items():
        hits = []
        for docid, score in docs.items():
            try:
                hits.append((str(docid), float(score)))
            except (TypeError, ValueError):
                malformed += 1
        if hits:
            run[str(qid)] = evaluation_order(hits)
    return run, ({"malformed_entries": malformed} if malformed else {})


def fit_to_task(run: Run, read_report: dict[str, int], task, options: FirstStageOptions,
                source: str) -> tuple[Run, dict[str, int]]:
    """Restrict a parsed run to ``task``: drop unknown queries and excluded docs, cut to top-k, check the corpus."""
    report: Counter[str] = Counter(read_report)
    if not any(run.values()):
        detail = f" ({read_report.get('malformed_lines', 0)} malformed lines)" if read_report else ""
        raise HarnessError(f"Run {source} contains no usable lines{detail}; expected 'qid Q0 docid rank score tag'.")
    task_qids = list(task.queries())
    known = set(task_qids)
    shared = [q for q in run if q in known]
    if not shared:
        sample_run = ", ".join(list(run)[:3])
        sample_task = ", ".join(task_qids[:3])
        raise HarnessError(
            f"Run {source} shares no query id with task {task.name} (run has {sample_run}, ...; task has "
            f"{sample_task}, ...). Is the run for a different task?"
        )
    report["unknown_queries"] = len(run) - len(shared)
    report["missing_queries"] = sum(1 for q in task_qids if q not in run)

    top_k = options.top_k
    fitted: Run = {}
    for qid in task_qids:
        if qid not in run:
            continue
        hits = run[qid]
        bad = task.excluded.get(qid)
        if bad:
            kept = [h for h in hits if h[0] not in bad]
            report["excluded_removed"] += len(hits) - len(kept)
            hits = kept
        if top_k and len(hits) > top_k:
            report["beyond_top_k"] += len(hits) - top_k
            hits = hits[:top_k]
        fitted[qid] = hits

    in_corpus = set(task.docs({d for hits in fitted.values() for d, _ in hits}))
    for qid, hits in fitted.items():
        kept = [h for h in hits if h[0] in in_corpus]
        report["not_in_corpus"] += len(hits) - len(kept)
        fitted[qid] = kept
    for key in ("unknown_queries", "missing_queries", "excluded_removed", "beyond_top_k", "not_in_corpus"):
        report.setdefault(key, 0)
    return fitted, dict(report)


def load_candidates(path: Path, task, options: FirstStageOptions, *, source: str, mode: str,
                    sha256: str | None = None, params: dict[str, Any] | None = None) -> FirstStageResult:
    """Read a run file and fit it to ``task``; shared by ``run:`` and the published-run first stages."""
    digest = sha256 or sha256_file(path)
    run, read_report = read_run_file(path, mode)
    fitted, report = fit_to_task(run, read_report, task, options, source)
    return FirstStageResult(run=fitted, source=source, sha256=digest,
                            params={"mode": mode, "top_k": options.top_k, **(params or {})}, report=report)


class RunFileFirstStage(FirstStage):
    name = "run"

    def __init__(self, location: str, mode: str = "robust"):
        self.location = location
        self.mode = mode
        if not _is_url(location) and not Path(location).expanduser().is_file():
            raise HarnessError(f"Run file {location} does not exist (--first-stage run:PATH_OR_URL).")

    def identity(self) -> dict[str, Any]:
        path = self.local_path()
        return {"spec": "run", "label": f"run:{path.name}", "file": path.name, "sha256": sha256_file(path),
                "mode": self.mode}

    def local_path(self) -> Path:
        if not _is_url(self.location):
            return Path(self.location).expanduser()
        from harness.paths import cache_dir

        name = Path(urlparse(self.location).path).name or "run.trec"
        key = hashlib.sha256(self.location.encode()).hexdigest()[:16]
        return fetch(self.location, cache_dir("runs") / f"{key}-{name}")

    def retrieve(self, task, options: FirstStageOptions) -> FirstStageResult:
        path = self.local_path()
        # records name a local file by its name and sha256, never by a machine path
        source = self.location if _is_url(self.location) else path.name
        params = {**file_params(path), "location": self.location} if _is_url(self.location) else file_params(path)
        return load_candidates(path, task, options, source=source, mode=self.mode, params=params)


class RunTemplateFirstStage(FirstStage):
    """``run:DIR/{subset}/FILE``: one local run file per subset, pinned per subset in the identity."""

    name = "run"

    def __init__(self, template: str, mode: str = "robust"):
        if _is_url(template):
            raise HarnessError(f"--first-stage run:{template}: a {SUBSET} template must name local files; download "
                               "the per-subset files first (see the README, 'Per-subset first-stage runs').")
        self.template = template
        self.mode = mode
        self.files: dict[str, Path] = {}

    def path_for(self, subset: str) -> Path:
        return Path(self.template.replace(SUBSET, subset)).expanduser()

    def bind(self, tasks) -> "RunTemplateFirstStage":
        missing = [(t.subset, self.path_for(t.subset)) for t in tasks if not self.path_for(t.subset).is_file()]
        if missing:
            shown = "; ".join(f"{subset}: {path}" for subset, path in missing[:4]) + (" …" if len(missing) > 4 else "")
            raise HarnessError(f"--first-stage run:{self.template}: {len(missing)} of {len(tasks)} subset file(s) do "
                               f"not exist ({shown}). Every subset needs its own file where {SUBSET} is replaced "
                               "by the subset name.")
        self.files = {t.subset: self.path_for(t.subset) for t in tasks}
        return self

    def _tail(self) -> str:
        """The template from the directory holding ``{subset}`` on (never a machine path)."""
        parts = re.split(r"[/\\]", self.template)
        at = next(i for i, part in enumerate(parts) if SUBSET in part)
        return "/".join(parts[at:])

    def identity(self) -> dict[str, Any]:
        if not self.files:
            raise HarnessError("internal: a per-subset run template must be bound to its tasks before use")
        return {"spec": "run", "label": f"run:{self._tail()}", "template": self._tail(),
                "files": {subset: sha256_file(path) for subset, path in sorted(self.files.items())},
                "mode": self.mode}

    def retrieve(self, task, options: FirstStageOptions) -> FirstStageResult:
        path = self.files.get(task.subset) or self.path_for(task.subset)
        if not path.is_file():
            raise HarnessError(f"Run file {path} for subset {task.subset} does not exist (--first-stage "
                               f"run:{self.template}).")
        params = {**file_params(path), "template": self._tail(),
                  "folder": path.parent.parent.name}  # the folder above the per-subset folders
        return load_candidates(path, task, options, source=path.name, mode=self.mode, params=params)
