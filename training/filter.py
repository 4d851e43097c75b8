"""Self-consistency filter (paper §4.1): keep an example when NDCG@10 of the teacher's final ranking, judged
against the teacher's own relevant ids, is at least ``threshold`` (0.4 in the paper).

Examples with no relevant ids score NDCG@10 = 0 (pytrec_eval would skip the query) and are therefore dropped
for any positive threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.data import RankingExamples, load_ranking_examples, write_ranking_examples
from training.rewards import ndcg_recall_at_k

DEFAULT_THRESHOLD = 0.4


@dataclass
class FilterReport:
    threshold: float
    per_domain: dict[str, dict[str, int]] = field(default_factory=dict)  # dataset -> {"kept": k, "total": n}

    @property
    def kept(self) -> int:
        return sum(d["kept"] for d in self.per_domain.values())

    @property
    def total(self) -> int:
        return sum(d["total"] for d in self.per_domain.values())

    def as_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "kept": self.kept, "total": self.total, "per_domain": self.per_domain}

    def table(self) -> str:
        lines = [f"{'domain':<24} {'kept':>7} {'total':>7} {'kept %':>7}"]
        for name in sorted(self.per_domain):
            d = self.per_domain[name]
            lines.append(f"{name:<24} {d['kept']:>7} {d['total']:>7} {100 * d['kept'] / max(d['total'], 1):>6.1f}%")
        lines.append(f"{'all':<24} {self.kept:>7} {self.total:>7} {100 * self.kept / max(self.total, 1):>6.1f}%")
        return "\n".join(lines)


def self_consistency(row: dict[str, Any]) -> float:
    """NDCG@10 of ``final_list`` with ``relevant_docids`` as binary judgments."""
    ndcg, _ = ndcg_recall_at_k([str(d) for d in row["final_list"]], {str(d) for d in row.get("relevant_docids") or []})
    return ndcg


def filter_examples(examples: RankingExamples, threshold: float = DEFAULT_THRESHOLD) -> tuple[RankingExamples, FilterReport]:
    report = FilterReport(threshold=threshold)
    kept_rows = []
    for row in examples.rows:
        counts = report.per_domain.setdefault(str(row.get("dataset", "unknown")), {"kept": 0, "total": 0})
        counts["total"] += 1
        if self_consistency(row) >= threshold:
            counts["kept"] += 1
            kept_rows.append(row)
    return RankingExamples(rows=kept_rows, queries=examples.queries, docs=examples.docs, source=examples.source), report


def filter_dir(source: str | Path, out_dir: str | Path, threshold: float = DEFAULT_THRESHOLD) -> FilterReport:
    """Filter a 13k-layout directory (or hub id) into ``out_dir`` (same layout, only the texts still used)."""
    kept, report = filter_examples(load_ranking_examples(source), threshold)
    write_ranking_examples(out_dir, kept)
    import json

    (Path(out_dir) / "filter_report.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    return report
