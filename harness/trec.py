"""Reading and writing TREC run files (``qid Q0 docid rank score tag``).

Published runs have real quirks; the reader tolerates and counts them instead of crashing or silently changing
results:

* docids containing spaces (BRIGHT stackoverflow): first field = qid, second = ``Q0``, last three = rank, score,
  tag, everything between = docid (``mode="robust"``, the default). ``mode="reference"`` drops such lines, as the
  ReasonRank code does (its loader skips every line that does not split into exactly six fields).
* duplicate docids within a query (R2MED): the first (best-ranked) occurrence is kept.
* malformed lines (too few fields, non-numeric score/rank): skipped and counted.

Within a query, hits keep the rank column's order (file order breaks ties), which is the order rerankers see.
"""

from __future__ import annotations

import io
import math
import os
from collections import Counter
from pathlib import Path
from typing import Iterable

from harness.errors import HarnessError
from harness.types import Run

MODES = ("robust", "reference")


def _lines(source: str | os.PathLike | Iterable[str]) -> Iterable[str]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise HarnessError(f"Run file {path} does not exist.")
        if not path.is_file():
            raise HarnessError(f"Run file {path} is not a file (a TREC run: 'qid Q0 docid rank score tag' lines).")
        if path.suffix == ".gz":
            import gzip

            with gzip.open(path, "rb") as fh:
                for raw in fh:
                    yield raw.decode("utf-8", errors="replace")
            return
        with path.open("rb") as fh:
            for raw in fh:
                yield raw.decode("utf-8", errors="replace")
    else:
        yield from source


def read_run(source: str | os.PathLike | Iterable[str], *, mode: str = "robust") -> tuple[Run, dict[str, int]]:
    """Parse a TREC run. Returns (run, report) where report counts every quirk that was met."""
    if mode not in MODES:
        raise HarnessError(f"Unknown run-reading mode {mode!r}; use one of {', '.join(MODES)}.")
    report: Counter[str] = Counter()
    hits: dict[str, list[tuple[int, int, str, float]]] = {}
    seen: dict[str, set[str]] = {}
    for lineno, line in enumerate(_lines(source), 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) < 6:
            report["malformed_lines"] += 1
            continue
        if len(fields) > 6:
            report["docids_with_spaces"] += 1
            if mode == "reference":
                report["dropped_lines"] += 1
                continue
            # recover the docid verbatim (it may contain runs of spaces)
            qid = fields[0]
            head = line.split(None, 2)[2]
            docid = head.rsplit(None, 3)[0]
        else:
            qid, docid = fields[0], fields[2]
        rank_text, score_text = fields[-3], fields[-2]
        try:
            score = float(score_text)
            rank = int(float(rank_text))
        except (ValueError, OverflowError):  # "abc", "nan" or "inf" in the rank column
            report["malformed_lines"] += 1
            continue
        if not math.isfinite(score):
            report["malformed_lines"] += 1
            continue
        if docid in seen.setdefault(qid, set()):
            report["duplicate_docids"] += 1
            continue
        seen[qid].add(docid)
        hits.setdefault(qid, []).append((rank, lineno, docid, score))
    run: Run = {}
    for qid, rows in hits.items():
        rows.sort(key=lambda r: (r[0], r[1]))
        run[qid] = [(docid, score) for _, _, docid, score in rows]
    return run, {k: v for k, v in report.items() if v}


def evaluation_order(hits: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """The order trec_eval scores a ranking in: score descending, ties broken by docid descending."""
    return sorted(hits, key=lambda h: (h[1], h[0]), reverse=True)


def format_run(run: Run, tag: str) -> str:
    """TREC text for a run, each query sorted in evaluation order so file rank == evaluated rank."""
    out = io.StringIO()
    for qid in run:
        for rank, (docid, score) in enumerate(evaluation_order(run[qid]), 1):
            out.write(f"{qid} Q0 {docid} {rank} {float(score)!r} {tag}\n")
    return out.getvalue()


def write_run(path: str | os.PathLike, run: Run, tag: str) -> Path:
    """Write a run atomically (temporary file + rename)."""
    from harness.files import atomic_write_text

    path = Path(path)
    try:
        return atomic_write_text(path, format_run(run, tag))
    except OSError as exc:
        raise HarnessError(f"Cannot write the run file {path} ({exc.strerror or exc}). Pass an --output path in a "
                           "writable directory.") from exc
