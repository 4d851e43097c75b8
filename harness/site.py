"""Static leaderboard site generated from run records (``harness site build``).

``build(results_dir, out_dir)`` is a pure function of the records under ``results_dir`` (and the claims in
``results_dir/expected``): no number is ever typed into a template. Templates (Jinja2, autoescaped — every string
from a record, a run file or a trace renders as text) and static assets live in the repository's ``site/``
directory, or wherever ``HARNESS_SITE_TEMPLATES`` points. The output is plain HTML/CSS plus a small vanilla script
for sorting and filtering, deployable as-is (e.g. GitHub Pages).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from harness.errors import HarnessError
from harness.files import TempDir, stored_file
from harness.schema import to_dict
from harness.verify import (
    VARIES as VARIES_, ClaimResult, RunGroup, benchmark_subsets, collect_groups, default_claims_dir, load_claims,
    verify_claim,
)

PRIMARY = "nDCG@10"
SITE_ENV = "HARNESS_SITE_TEMPLATES"
SITE_MARKER = ".harness-site"
MAX_DOCS = 20  # documents shown per query in the explorer
MAX_CALLS = 20  # model calls (reasoning traces) shown per query
MAX_TRACE_CHARS = 8000
_TRACE_QID = re.compile(r"^query (.+?), (?:window|doc) ")
_SIZE = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)\s*[bB](?![A-Za-z])")


def templates_dir() -> Path:
    """``$HARNESS_SITE_TEMPLATES``, else the repository's ``site/`` directory in a source checkout, else the copy
    installed with the wheel (``harness/_site``)."""
    override = os.environ.get(SITE_ENV)
    here = Path(__file__).resolve().parent
    candidates = [Path(override).expanduser()] if override else [here.parent / "site", here / "_site"]
    for path in candidates:
        if (path / "templates").is_dir() and (path / "static").is_dir():
            return path
    raise HarnessError(
        f"Site templates not found in {candidates[0]} (expected templates/ and static/ there). Set {SITE_ENV} to a "
        "directory with the harness's site/ templates, or reinstall the harness."
    )


# --------------------------------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------------------------------

@dataclass
class Row:
    group: RunGroup
    board_subsets: list[str]
    per_query: dict[str, dict[str, float]]  # subset -> {qid: primary metric}
    claims: list[ClaimResult] = field(default_factory=list)
    rank_group: int | None = None
    p_value: float | None = None  # vs the leader of the row's first stage (Holm-adjusted); None for the leader
    leader: bool = False
    ci: tuple[float, float] | None = None
    submission: dict[str, Any] | None = None
    kind: str = "reproduced"

    @property
    def key(self) -> str:
        return self.group.group_id

    @property
    def validated(self) -> bool:
        return bool(self.submission and self.submission.get("validated"))

    @property
    def card(self):
        from harness.model_cards import card_for

        model = self.model or None
        submitted = (self.submission or {}).get("model")
        if submitted:
            submitted = {k: v for k, v in submitted.items() if k != "model"}
        return card_for(model, submitted or None)

    @property
    def status(self) -> str:
        """``complete``, ``incomplete`` (not every subset) or ``smoke`` (--limit)."""
        if self.group.smoke:
            return "smoke"
        return "complete" if self.average is not None else "incomplete"

    @property
    def first_stage_key(self) -> str:
        """Rows are ranked against rows of the same first stage (same spec and files)."""
        s = self.settings
        return f"{s.get('first_stage')}|{s.get('first_stage_sha256') if s.get('first_stage_sha256') is not VARIES_ else 'per-subset'}"

    @property
    def first_stage_display(self) -> str:
        return first_stage_display(self.group)

    def metric_value(self, subset: str, metric: str) -> float | None:
        return self.group.subset_metric(subset, metric)

    def metric_average(self, metric: str) -> float | None:
        return self.group.average(metric, self.board_subsets)

    def metric_values(self, subset: str, metrics: list[str]) -> str:
        return json.dumps({m: self.metric_value(subset, m) for m in metrics})

    def metric_averages(self, metrics: list[str]) -> str:
        return json.dumps({m: self.metric_average(m) for m in metrics})

    @property
    def settings(self) -> dict[str, Any]:
        return self.group.settings

    @property
    def model(self) -> str:
        return str(self.settings.get("model") or "")

    @property
    def model_short(self) -> str:
        return self.model.rstrip("/").split("/")[-1]

    @property
    def family(self) -> str:
        """The reranker's paradigm (listwise, pointwise, setwise, cross-encoder, baseline) as its records state it."""
        families = {r.reranker.family for r in self.group.subsets.values() if r.reranker.family}
        return "/".join(sorted(families)) or "n/a"

    @property
    def model_size(self) -> str:
        card = self.card
        return card.size if card else "n/a"

    @property
    def first_stage_short(self) -> str:
        return self.first_stage_display

    @property
    def settings_text(self) -> str:
        s = self.settings
        parts = []
        if s.get("window_size"):
            parts.append(f"w{s['window_size']}/s{s.get('step')}")
        if s.get("top_k"):
            parts.append(f"top-{s['top_k']}")
        if s.get("query_field") and s["query_field"] != "original":
            parts.append(f"q={s['query_field']}")
        if s.get("fuse") and s["fuse"] != "none":
            parts.append(f"fused {s['fuse']} w={s.get('fuse_weight') if s.get('fuse_weight') is not None else 0.5}")
        return " · ".join(parts)

    def value(self, subset: str) -> float | None:
        return self.group.subset_metric(subset, PRIMARY)

    @property
    def average(self) -> float | None:
        return self.group.average(PRIMARY, self.board_subsets)

    @property
    def partial_average(self) -> float | None:
        values = [v for v in (self.value(s) for s in self.board_subsets) if v is not None]
        return sum(values) / len(values) if values else None

    @property
    def covered(self) -> int:
        return sum(1 for s in self.board_subsets if self.value(s) is not None)

    @property
    def queries(self) -> int:
        return sum(r.counts.queries for r in self.group.subsets.values())

    @property
    def costs(self) -> list[dict[str, Any]]:
        """One entry per hardware configuration: label, s/query and tokens/query over the subsets it covers."""
        return group_costs(self.group)

    @property
    def seconds_per_query(self) -> float | None:
        costs = [c for c in self.costs if c["seconds_per_query"] is not None]
        return costs[0]["seconds_per_query"] if costs else None

    @property
    def tokens_per_query(self) -> float | None:
        return self.costs[0]["tokens_per_query"] if self.costs else None

    @property
    def parse_failures(self) -> int:
        return sum(r.counts.parse_failures for r in self.group.subsets.values())

    @property
    def model_calls(self) -> int:
        return sum(r.counts.model_calls for r in self.group.subsets.values())

    @property
    def gpu(self) -> str:
        return " / ".join(c["label"] for c in self.costs) or "n/a"

    @property
    def grade(self) -> str | None:
        graded = [c.grade for c in self.claims if c.grade not in ("MISSING", "NOT COMPARABLE")]
        order = ("OK", "OKish", "PARTIAL", "FAIL")
        return max(graded, key=order.index) if graded else None


@dataclass
class ReportedRow:
    """A published number the board shows as a "paper, not reproduced" row: never ranked, never charted."""

    claim: Any  # harness.verify.Claim
    board_subsets: list[str]
    kind: str = "reported"
    claims: list = field(default_factory=list)
    rank_group = None
    p_value = None
    leader = False
    ci = None
    submission = None
    validated = False
    seconds_per_query = None
    tokens_per_query = None
    parse_failures = None
    model_calls = None
    gpu = "n/a"
    costs: list = field(default_factory=list)
    status = "reported"

    @property
    def key(self) -> str:
        return "paper-" + self.claim.id

    @property
    def settings(self) -> dict[str, Any]:
        return self.claim.settings

    @property
    def model(self) -> str:
        return str(self.settings.get("model") or "")

    @property
    def model_short(self) -> str:
        return self.model.rstrip("/").split("/")[-1].replace("*", "") if self.model else ""

    @property
    def card(self):
        from harness.model_cards import card_for

        return card_for(self.model.replace("*", "") or None)

    @property
    def model_size(self) -> str:
        card = self.card
        return card.size if card else "n/a"

    @property
    def family(self) -> str:
        from rerankers import RERANKERS

        name = str(self.settings.get("reranker"))
        if name not in RERANKERS:
            return "not in harness"  # e.g. Rank-K, RankT5: published, not yet contributed
        return RERANKERS.get(name).family or "n/a"

    @property
    def first_stage_key(self) -> str:
        return f"{self.settings.get('first_stage')}|reported"

    @property
    def first_stage_display(self) -> str:
        return _first_stage_name(str(self.settings.get("first_stage") or ""))

    first_stage_short = first_stage_display

    @property
    def settings_text(self) -> str:
        s = self.settings
        parts = [f"w{s['window_size']}/s{s.get('step')}"] if s.get("window_size") else []
        if s.get("top_k"):
            parts.append(f"top-{s['top_k']}")
        return " · ".join(parts)

    @property
    def source_text(self) -> str:
        return self.claim.source_text

    @property
    def source_url(self) -> str | None:
        links = self.claim.source_links
        return links[0][1] if links else None

    def value(self, subset: str) -> float | None:
        return self.claim.values.get(subset) if self.claim.metric == PRIMARY else None

    def metric_value(self, subset: str, metric: str) -> float | None:
        return self.claim.values.get(subset) if metric == self.claim.metric else None

    def metric_average(self, metric: str) -> float | None:
        return self.claim.values.get("average") if metric == self.claim.metric else None

    def metric_values(self, subset: str, metrics: list[str]) -> str:
        return json.dumps({m: self.metric_value(subset, m) for m in metrics})

    def metric_averages(self, metrics: list[str]) -> str:
        return json.dumps({m: self.metric_average(m) for m in metrics})

    @property
    def average(self) -> float | None:
        return self.metric_average(PRIMARY)

    @property
    def partial_average(self) -> float | None:
        return self.average

    @property
    def covered(self) -> int:
        return sum(1 for s in self.board_subsets if self.value(s) is not None)

    @property
    def grade(self) -> None:
        return None

    class group:  # the template's row.group.smoke / row.group.subsets on a row without records
        smoke = False
        subsets: dict = {}


FIRST_STAGE_NAMES = {
    "bm25": "BM25 (BRIGHT)", "bm25-bright": "BM25 (BRIGHT)", "bm25-lucene": "BM25 (Lucene)",
    "reasonir-published": "ReasonIR-8B (published run)", "e5-mistral-published": "E5-Mistral-7B (published run)",
    "reasonir": "ReasonIR-8B (live)",
}


def _first_stage_name(spec: str) -> str:
    if spec in FIRST_STAGE_NAMES:
        return FIRST_STAGE_NAMES[spec]
    if spec.startswith("dense:"):
        return "dense " + spec[6:].rstrip("/").split("/")[-1]
    if spec.startswith("run:"):
        name = spec[4:]
        if "{subset}" in name:
            return f"{name.replace('{subset}/', '')} (per-subset files)"
        if any(ch in name for ch in "*?["):
            return f"run file matching {name}"
        return name
    return spec


def first_stage_display(group: RunGroup) -> str:
    """Readable first stage: a display name for built-ins; for ``run:`` files the folder, the file and a short
    sha256 (``12 files`` for a per-subset template)."""
    records = list(group.subsets.values())
    spec = str(group.settings.get("first_stage") or (records[0].first_stage.spec if records else ""))
    if not spec.startswith("run:") or not records:
        return _first_stage_name(spec)
    first = records[0].first_stage
    folder = first.params.get("folder")
    name = spec[4:].replace("{subset}/", "{subset}/" if folder is None else "")
    shas = {r.first_stage.sha256 for r in records}
    tail = f"{len(shas)} files" if len(shas) > 1 else (str(first.sha256 or "")[:7] or "no sha")
    return f"{folder}/{name} · {tail}" if folder else f"{name} · {tail}"


def group_costs(group: RunGroup) -> list[dict[str, Any]]:
    """Costs of a group summed per hardware configuration over its subsets, most complete first."""
    by_key: dict[str, dict[str, Any]] = {}
    for record in group.subsets.values():
        for entry in record.costs:
            acc = by_key.setdefault(entry.hardware.key(), {"label": entry.hardware.label(), "queries": 0,
                                                           "seconds": 0.0, "tokens": 0, "complete": True,
                                                           "subsets": 0, "self_reported": False})
            acc["queries"] += entry.queries
            acc["seconds"] = None if acc["seconds"] is None or entry.generation_seconds is None else \
                acc["seconds"] + entry.generation_seconds
            acc["tokens"] += entry.input_tokens + entry.output_tokens
            acc["complete"] = acc["complete"] and entry.complete
            acc["subsets"] += 1
            acc["self_reported"] = acc["self_reported"] or entry.self_reported
    out = []
    for acc in by_key.values():
        n = acc["queries"]
        out.append({"label": acc["label"], "queries": n, "complete": acc["complete"] and
                    acc["subsets"] == len(group.subsets), "self_reported": acc["self_reported"],
                    "seconds_per_query": None if acc["seconds"] is None or not n else acc["seconds"] / n,
                    "tokens_per_query": acc["tokens"] / n if n else None})
    return sorted(out, key=lambda c: (not c["complete"], -c["queries"], c["label"]))


def record_cost(record) -> Any:
    """The cost entry of a record's latest execution (or its first entry)."""
    key = record.execution.hardware.key()
    return next((c for c in record.costs if c.hardware.key() == key), record.costs[0] if record.costs else None)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    from harness.files import open_text

    rows = []
    if not path.is_file():
        return rows
    with open_text(path) as handle:
        text = handle.read()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue  # a traces file cut by a kill ends mid-line
        if isinstance(obj, dict):
            rows.append(obj)
    return rows


def _per_query_file(group: RunGroup, subset: str) -> list[dict[str, Any]]:
    record = group.subsets[subset]
    return _read_jsonl(group.subset_dirs[subset] / record.files.per_query)


# --------------------------------------------------------------------------------------------------------------------
# Chart (inline SVG, computed here; the template only draws it)
# --------------------------------------------------------------------------------------------------------------------

_W, _H, _PAD_L, _PAD_R, _PAD_T, _PAD_B = 760, 340, 64, 24, 20, 52
_EPS_S = 0.01  # seconds; log axis offset so that first-stage-only rows (0 s/query) can be drawn


def _chart(rows: list[Row]) -> dict[str, Any] | None:
    pts = [(r, r.seconds_per_query or 0.0, r.average) for r in rows if r.average is not None and not r.group.smoke]
    if not pts:
        return None
    xs = [math.log10(x + _EPS_S) for _, x, _ in pts]
    ys = [y * 100 for _, _, y in pts]
    x_lo, x_hi = math.floor(min(xs)), math.ceil(max(xs))
    if x_hi == x_lo:
        x_hi += 1
    y_lo = math.floor(min(ys) / 5) * 5
    y_hi = math.ceil(max(ys) / 5) * 5
    if y_hi == y_lo:
        y_hi += 5
    pw, ph = _W - _PAD_L - _PAD_R, _H - _PAD_T - _PAD_B

    def px(v: float) -> float:
        return round(_PAD_L + (v - x_lo) / (x_hi - x_lo) * pw, 1)

    def py(v: float) -> float:
        return round(_PAD_T + (y_hi - v) / (y_hi - y_lo) * ph, 1)

    # Pareto frontier: cheapest first; a point is on it when it beats every cheaper point's quality.
    order = sorted(range(len(pts)), key=lambda i: (pts[i][1], -ys[i]))
    frontier, best = [], -1.0
    for i in order:
        if ys[i] > best:
            frontier.append(i)
            best = ys[i]
    path = []  # a staircase: from each frontier point go right at its quality, then up to the next point
    previous_y = None
    for i in frontier:
        x, y = px(xs[i]), py(ys[i])
        path.append(f"M{x},{y}" if previous_y is None else f"L{x},{previous_y} L{x},{y}")
        previous_y = y
    points = [{
        "x": px(xs[i]), "y": py(ys[i]), "anchor": "end" if px(xs[i]) > _PAD_L + 0.7 * pw else "start", "label": r.model_short or r.settings.get("reranker") or r.key,
        "title": f"{r.settings.get('reranker')} {r.model_short} on {r.first_stage_short}: {ys[i]:.2f} nDCG@10, "
                 f"{pts[i][1]:.2f} s/query", "frontier": i in frontier, "href": f"runs/{r.key}/index.html",
    } for i, (r, _, _) in enumerate(pts)]
    _place_labels(points, (_PAD_L, _W - _PAD_R, _PAD_T, _H - _PAD_B))
    x_ticks = []
    for seconds in [0.0] + [10.0 ** e for e in range(x_lo, x_hi + 1)]:
        pos = math.log10(seconds + _EPS_S)
        if x_lo - 1e-3 <= pos <= x_hi + 1e-3 and (seconds == 0.0 or seconds >= 0.1):
            x_ticks.append({"x": px(pos), "label": f"{seconds:g}"})
    y_ticks = [{"y": py(v), "label": f"{v:g}"} for v in range(int(y_lo), int(y_hi) + 1, 5)]
    return {"width": _W, "height": _H, "points": points, "frontier_path": " ".join(path), "x_ticks": x_ticks,
            "y_ticks": y_ticks, "plot": {"x0": _PAD_L, "x1": _W - _PAD_R, "y0": _PAD_T, "y1": _H - _PAD_B}}


_CHAR_W, _LABEL_H = 6.4, 12.0  # 11 px labels: average glyph width and line height, for collision tests


def _label_box(x: float, y: float, anchor: str, text: str) -> tuple[float, float, float, float]:
    width = _CHAR_W * len(text)
    x0 = x - width if anchor == "end" else x
    return (x0, y - _LABEL_H + 2, x0 + width, y + 2)


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_labels(points: list[dict[str, Any]], bounds: tuple[float, float, float, float]) -> None:
    """Give each point a label position that collides with no label placed before it (frontier points first, then
    best first); a label that fits nowhere is left out (the point keeps its tooltip)."""
    placed: list[tuple[float, float, float, float]] = []
    x_lo, x_hi, y_lo, y_hi = bounds
    for p in sorted(points, key=lambda p: (not p["frontier"], p["y"])):
        p["label_shown"] = False
        for dx, dy, anchor in ((8, -7, p["anchor"]), (8, 15, p["anchor"]), (-8, -7, "end"), (8, -7, "start"),
                               (-8, 15, "end"), (8, 15, "start")):
            x = p["x"] + (dx if anchor == "start" else -abs(dx))
            y = p["y"] + dy
            box = _label_box(x, y, anchor, p["label"])
            if box[0] < x_lo or box[2] > x_hi or box[1] < y_lo - 10 or box[3] > y_hi + 4:
                continue
            if any(_overlap(box, other) for other in placed):
                continue
            placed.append(box)
            p.update(label_x=round(x, 1), label_y=round(y, 1), anchor=anchor, label_shown=True)
            break


# --------------------------------------------------------------------------------------------------------------------
# Boards
# --------------------------------------------------------------------------------------------------------------------

@dataclass
class Board:
    benchmark: str
    title: str
    subsets: list[str]
    short: dict[str, str]
    rows: list  # Row and ReportedRow, ranked rows first
    chart: dict[str, Any] | None
    method: str
    first_stages: list[str]
    sizes: list[str]
    slug: str
    metrics: list[str] = field(default_factory=lambda: [PRIMARY])
    families: list[str] = field(default_factory=list)
    gpus: list[str] = field(default_factory=list)

    @property
    def reproduced(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "reproduced"]


BOARD_METRICS = ("nDCG@10", "nDCG@5", "R@10", "R@100", "RR@10")


def benchmark_info(name: str):
    from tasks import benchmark_info as lookup

    return lookup(name)


def _rank(rows: list[Row], subsets: list[str], n_resamples: int) -> None:
    """Rank groups, intervals and p vs the leader, computed within each first stage (rows on different candidates
    are not compared)."""
    from harness.significance import bootstrap_ci, compare_rows, holm, rank_groups

    comparable = [r for r in rows if r.average is not None and not r.group.smoke
                  and all(r.per_query.get(s) for s in subsets)]
    by_first_stage: dict[str, list[Row]] = {}
    for r in comparable:
        by_first_stage.setdefault(r.first_stage_key, []).append(r)
    for members in by_first_stage.values():
        result = rank_groups({r.key: r.per_query for r in members}, {r.key: r.average for r in members},
                             subsets, n_resamples=n_resamples)
        ordered = sorted(members, key=lambda r: (-(r.average or 0.0), r.key))
        leader, rest = ordered[0], ordered[1:]
        leader.leader = True
        adjusted = holm([compare_rows(leader.per_query, r.per_query, subsets, n_resamples=n_resamples)
                         for r in rest]) if rest else []
        for r, p in zip(rest, adjusted):
            r.p_value = p
        for r in members:
            r.rank_group = result.group[r.key]
            r.ci = bootstrap_ci([list(r.per_query[s].values()) for s in subsets], n_resamples=n_resamples)


def _board(benchmark: str, groups: list[RunGroup], claim_results: dict[str, list[ClaimResult]],
           n_resamples: int, reported: list = (), submissions: dict[str, dict] | None = None) -> Board:
    from harness.significance import method_text

    subsets = benchmark_subsets(benchmark)
    if not subsets:
        seen: dict[str, None] = {}
        for g in groups:
            for s in g.subsets:
                seen.setdefault(s, None)
        subsets = list(seen)
    rows: list = []
    for g in groups:
        per_query = {}
        for subset in g.subsets:
            per_query[subset] = {str(r["qid"]): float((r.get("metrics") or {}).get(PRIMARY, 0.0))
                                 for r in _per_query_file(g, subset) if "qid" in r}
        rows.append(Row(g, subsets, per_query, claim_results.get(g.group_id, []),
                        submission=(submissions or {}).get(g.group_id)))
    _rank(rows, subsets, n_resamples)
    rows.sort(key=lambda r: (r.average is None or r.group.smoke, -(r.average or r.partial_average or 0.0), r.key))
    paper = sorted((ReportedRow(c, subsets) for c in reported), key=lambda r: -(r.average or 0.0))
    info = benchmark_info(benchmark)
    short = {s: (info.subset(s).short if info and info.subset(s) else s) for s in subsets}
    present = {m for r in rows for rec in r.group.subsets.values() for m in rec.metrics}
    metrics = [m for m in BOARD_METRICS if m in present] or [PRIMARY]
    every = rows + paper
    return Board(
        benchmark=benchmark, title=info.title if info else benchmark, subsets=subsets, short=short, rows=every,
        chart=_chart(rows), method=method_text(n_resamples=n_resamples),
        first_stages=sorted({r.first_stage_display for r in every}),
        sizes=sorted({r.model_size for r in every}, key=_size_order),
        slug=re.sub(r"[^A-Za-z0-9_-]+", "-", benchmark), metrics=metrics,
        families=sorted({r.family for r in every}), gpus=sorted({r.gpu for r in rows}),
    )


def _size_order(size: str) -> tuple:
    if size == "n/a":
        return (1, 0.0)
    return (0, float(size[:-1]) / (1000 if size.endswith("M") else 1))


# --------------------------------------------------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------------------------------------------------

def board_table(board: Board) -> list[dict[str, Any]]:
    """Every row of a board with every column (the JSON and CSV downloads); metrics are fractions in [0, 1]."""
    out = []
    for rank, r in enumerate(board.rows, 1):
        card = r.card
        claims = [{"id": c.claim.id, "grade": c.grade_text} for c in r.claims]
        row: dict[str, Any] = {
            "position": rank, "kind": r.kind, "id": r.key, "status": r.status,
            "reranker": r.settings.get("reranker"), "model": r.model or None, "family": r.family,
            "first_stage": r.settings.get("first_stage"), "first_stage_display": r.first_stage_display,
            "settings_text": r.settings_text, "rank_group": r.rank_group,
            "rank_within": "first stage", "p_vs_leader": r.p_value, "leader": r.leader,
            "ci_low": r.ci[0] if r.ci else None, "ci_high": r.ci[1] if r.ci else None,
            "claims": claims, "grade": r.grade, "validated": r.validated,
            "team": (r.submission or {}).get("team"),
            "seconds_per_query": r.seconds_per_query, "costs_self_reported": bool(r.submission),
            "gpu": r.gpu, "tokens_per_query": r.tokens_per_query, "parse_failures": r.parse_failures,
            "model_card": card.to_dict() if card else None,
            "source": r.source_text if r.kind == "reported" else None,
            "source_url": r.source_url if r.kind == "reported" else None,
        }
        for metric in board.metrics:
            row[f"average {metric}"] = r.metric_average(metric)
            for subset in board.subsets:
                row[f"{subset} {metric}"] = r.metric_value(subset, metric)
        row["settings"] = {k: (None if v is VARIES_ else v) for k, v in r.settings.items()}
        out.append(row)
    return out


def _write_downloads(out: Path, board: Board) -> None:
    import csv

    table = board_table(board)
    doc = {"benchmark": board.benchmark, "title": board.title, "subsets": board.subsets, "metrics": board.metrics,
           "method": board.method, "rows": table}
    (out / f"board-{board.slug}.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str) + "\n",
                                                 encoding="utf-8")
    columns = list(dict.fromkeys(k for row in table for k in row))
    with open(out / f"board-{board.slug}.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in table:
            writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else
                             ("" if v is None else v) for k, v in row.items()})


# --------------------------------------------------------------------------------------------------------------------
# Query explorer
# --------------------------------------------------------------------------------------------------------------------

TaskData = Callable[[str], tuple[dict[str, str], dict[str, dict[str, int]]] | None]


def task_data_loader() -> TaskData:
    """Query texts and qrels from locally available task data (optional; the site works without them)."""
    cache: dict[str, Any] = {}

    def load(task_name: str):
        if task_name not in cache:
            try:
                from tasks import resolve_tasks

                tasks = resolve_tasks(task_name)
                cache[task_name] = (tasks[0].queries(), tasks[0].qrels) if len(tasks) == 1 else None
            except Exception:  # data not cached / not downloadable: gold marks and texts are simply not shown
                cache[task_name] = None
        return cache[task_name]

    return load


def _trace_call(call: dict[str, Any]) -> dict[str, Any]:
    """What the explorer shows of one model call (loaded on demand, rendered as text by site.js)."""
    response = str(call.get("response", ""))
    return {"label": str(call.get("label", "")), "output_tokens": call.get("output_tokens", 0),
            "seconds": call.get("seconds", 0), "finish_reason": call.get("finish_reason"),
            "response": response[:MAX_TRACE_CHARS], "cut": len(response) > MAX_TRACE_CHARS}


def _explorer(group: RunGroup, subset: str, task_data: TaskData | None) -> dict[str, Any]:
    from harness.trec import read_run

    record = group.subsets[subset]
    directory = group.subset_dirs[subset]
    files = record.files
    run_path = stored_file(directory, files.run)
    run = read_run(run_path)[0] if run_path.is_file() else {}
    loaded = task_data(record.task.name) if task_data else None
    texts, qrels = loaded if loaded else ({}, {})
    traces: dict[str, list[dict[str, Any]]] = {}
    if files.traces:
        for call in _read_jsonl(stored_file(directory, files.traces)):
            m = _TRACE_QID.match(str(call.get("label", "")))
            if m:
                traces.setdefault(m.group(1), []).append(call)
    queries = []
    metric_names: list[str] = list(record.metrics)
    for row in _per_query_file(group, subset):
        qid = str(row.get("qid"))
        gold = row.get("gold") if isinstance(row.get("gold"), dict) else qrels.get(qid, {})
        docs = [{"rank": i + 1, "docid": d, "score": s, "gold": gold.get(d, 0)}
                for i, (d, s) in enumerate(run.get(qid, [])[:MAX_DOCS])]
        calls = traces.get(qid, [])
        queries.append({
            "qid": qid, "anchor": "q-" + re.sub(r"[^A-Za-z0-9_-]", "_", qid), "text": texts.get(qid),
            "metrics": row.get("metrics") or {}, "row": row, "docs": docs, "gold_known": bool(gold),
            "gold_total": sum(1 for g in gold.values() if g > 0), "in_run": len(run.get(qid, [])),
            "calls": [_trace_call(c) for c in calls[:MAX_CALLS]],
            "calls_total": len(calls),
        })
    return {"subset": subset, "record": record, "queries": queries, "metric_names": metric_names,
            "has_traces": bool(files.traces), "has_gold": any(q["gold_known"] for q in queries),
            "has_text": any(q["text"] for q in queries)}


# --------------------------------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------------------------------

def _environment(site: Path):
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(site / "templates")), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v, d=2: "—" if v is None else f"{v * 100:.{d}f}"
    env.filters["num"] = lambda v, d=2: "—" if v is None else f"{v:,.{d}f}"
    env.filters["sortval"] = lambda v: "" if v is None else repr(float(v))
    env.filters["pretty"] = lambda v: json.dumps(to_dict(v), indent=2, ensure_ascii=False, default=str)
    env.filters["cost"] = record_cost
    env.filters["pts"] = lambda v, scale=100: "—" if v is None else f"{v * scale:.2f}"
    env.filters["signed"] = lambda v, scale=100: "—" if v is None else f"{round(v * scale, 2) + 0.0:+.2f}"
    return env


def build(results_dir: str | os.PathLike, out_dir: str | os.PathLike, *, task_data: TaskData | None = None,
          n_resamples: int = 10_000, strict: bool = True, warn: Callable[[str], None] | None = None,
          boards: Sequence[str] | None = None, only_validated: bool = False,
          releases_dir: str | os.PathLike | None = None, release: str | None = None,
          reported: bool = True) -> Path:
    """Render the site for the records in ``results_dir`` into ``out_dir``; returns the path of index.html.

    ``task_data`` (optional, e.g. ``task_data_loader()``) adds query texts and gold marks to the query explorer when
    the task's data is available locally; without it the explorer uses only what the records contain.
    ``boards``: benchmarks to show (default: every benchmark that declares ``board=True``, i.e. not the smoke
    fixture; ``["all"]`` for every one). ``only_validated``: only rows added with ``harness submit add``.
    ``release`` (a name such as ``2026-12-03``) also stores this build's downloads under
    ``releases_dir/<release>/``; every stored release is published under ``releases/`` with a ``latest`` link.
    ``reported``: also show the claims files' published numbers as "paper, not reproduced" rows.
    """
    results = Path(results_dir)
    if not results.is_dir():
        raise HarnessError(f"Results directory {results} does not exist. Pass the directory `harness run` wrote "
                           "with --results.")
    site = templates_dir()
    env = _environment(site)
    on_error = (lambda path, exc: warn(f"skipping {exc}")) if warn else None
    from harness.submit import load_submission

    groups = collect_groups(results, strict=strict, on_error=on_error)
    submissions = {g.group_id: sub for g in groups if (sub := load_submission(g.directory))}
    if only_validated:
        groups = [g for g in groups if g.group_id in submissions]
    claims_dir = default_claims_dir(results)
    claim_files = sorted(claims_dir.glob("*.yaml")) if claims_dir.is_dir() else []
    claims = load_claims([claims_dir]) if claims_dir.is_dir() else []
    papers: dict[str, list] = {}
    if reported:
        for c in claims:
            papers.setdefault(str(c.settings["benchmark"]), []).append(c)
    wanted = _wanted_boards(boards, {g.benchmark for g in groups} | set(papers))
    groups = [g for g in groups if g.benchmark in wanted]
    claim_results = [verify_claim(c, groups) for c in claims]
    by_group: dict[str, list[ClaimResult]] = {}
    for cr in claim_results:
        if cr.group_id:
            by_group.setdefault(cr.group_id, []).append(cr)
    benchmarks: dict[str, list[RunGroup]] = {}
    for g in groups:
        benchmarks.setdefault(g.benchmark, []).append(g)

    def order(name: str) -> int:
        info = benchmark_info(name)
        return info.board_order if info else 500

    names = sorted(set(benchmarks) | {b for b in papers if b in wanted and benchmark_info(b) is not None},
                   key=lambda b: (order(b), b))
    built = [_board(b, benchmarks.get(b, []), by_group, n_resamples, papers.get(b, []), submissions) for b in names]
    shown = {r.key for b in built for r in b.reproduced}
    footer = _footer(claim_files)

    final = Path(out_dir)
    if final.exists() and (not final.is_dir() or (any(final.iterdir()) and not (final / SITE_MARKER).is_file())):
        raise HarnessError(f"--out {final} exists and is not a site built by the harness; it would be replaced "
                           "entirely. Pass a new or empty directory.")
    try:
        staging = TempDir(final)
        out = staging.__enter__()
    except OSError as exc:
        raise HarnessError(f"Cannot write the site to {final} ({exc.strerror or exc}). Pass a writable --out "
                           "directory.") from exc
    try:
        _render(out, site, env, built, [g for g in groups if g.group_id in shown], claim_results, task_data,
                footer)
        _releases(out, built, releases_dir, release)
    except BaseException as exc:
        staging.__exit__(type(exc), exc, None)
        raise
    staging.__exit__(None, None, None)  # every page rendered: swap the new site in, nothing stale survives
    return final / "index.html"


def _wanted_boards(boards: Sequence[str] | None, available: set[str]) -> set[str]:
    if boards and "all" in boards:
        return set(available)
    if boards:
        unknown = [b for b in boards if b not in available]
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], sorted(available), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise HarnessError(f"--boards {','.join(unknown)}: no records or claims for that benchmark.{hint} "
                               f"Available: {', '.join(sorted(available)) or 'none'} (or 'all').")
        return set(boards)
    out = set()
    for name in available:
        info = benchmark_info(name)
        if info is None or info.board:
            out.add(name)
    return out


def _footer(claim_files: list[Path]) -> dict[str, str]:
    import datetime
    import hashlib

    from harness.provenance import git_state

    digest = hashlib.sha256()
    for path in claim_files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    commit = git_state().get("git_commit") or "not a git checkout"
    return {"built": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": str(commit)[:12], "claims_sha256": digest.hexdigest()[:12] if claim_files else "no claims"}


def _releases(out: Path, boards: list[Board], releases_dir, release: str | None) -> None:
    """Store this build's downloads as a release (``release``) and publish every stored release."""
    if releases_dir is None:
        if release:
            raise HarnessError("--release needs --releases-dir (a committed directory, e.g. results/releases, where "
                               "releases are kept between builds).")
        return
    store = Path(releases_dir)
    if release:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", release):
            raise HarnessError(f"--release {release!r}: use a plain name such as 2026-12-03.")
        target = store / release
        target.mkdir(parents=True, exist_ok=True)
        for board in boards:
            for suffix in ("json", "csv"):
                shutil.copyfile(out / f"board-{board.slug}.{suffix}", target / f"board-{board.slug}.{suffix}")
    names = sorted((p.name for p in store.iterdir() if p.is_dir()), reverse=True) if store.is_dir() else []
    if not names:
        return
    published = out / "releases"
    for name in names:
        shutil.copytree(store / name, published / name)
    shutil.copytree(store / names[0], published / "latest")
    items = "".join(f'<li><a href="{n}/">{n}</a></li>' for n in names)
    (published / "index.html").write_text(
        f"<!doctype html><meta charset=utf-8><title>Releases</title><h1>Releases</h1>"
        f"<p><a href=\"latest/\">latest</a> = {names[0]}</p><ul>{items}</ul>\n", encoding="utf-8")


def _copy_record_files(group: RunGroup, target: Path) -> dict[str, list[dict[str, str]]]:
    """Copy each subset's record.json, run and per-query files into the run page's files/ folder; returns the
    links per subset."""
    links: dict[str, list[dict[str, str]]] = {}
    for subset, record in group.subsets.items():
        directory = group.subset_dirs[subset]
        folder = target / "files" / _file_slug(subset)
        folder.mkdir(parents=True, exist_ok=True)
        entries = []
        for name in ("record.json", record.files.run, record.files.per_query):
            source = stored_file(directory, name)
            if source.is_file():
                shutil.copyfile(source, folder / source.name)
                entries.append({"name": source.name, "href": f"files/{folder.name}/{source.name}",
                                "sha256": record.sha256.get(name, "")})
        links[subset] = entries
    return links


def _render(out: Path, site: Path, env, boards, groups, claim_results, task_data, footer) -> None:
    (out / SITE_MARKER).write_text("built by `harness site build`; replaced whole on every build\n")
    shutil.copytree(site / "static", out / "static")
    runs_out = out / "runs"

    nav = [{"href": f"board-{b.slug}.html", "title": b.title} for b in boards]
    nav.append({"href": "claims.html", "title": "Claims"})
    common = {"nav": nav, "boards": boards, "footer": footer}

    def write(path: Path, template: str, root: str, **context: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        html = env.get_template(template).render(root=root, **common, **context)
        path.write_text(html, encoding="utf-8")

    grade_counts = {g: sum(1 for c in claim_results if c.grade == g)
                    for g in ("OK", "OKish", "PARTIAL", "FAIL", "NOT COMPARABLE", "MISSING")}
    write(out / "index.html", "index.html.j2", "", page_title="Leaderboards", grade_counts=grade_counts,
          n_groups=len(groups))
    for board in boards:
        _write_downloads(out, board)
        write(out / f"board-{board.slug}.html", "board.html.j2", "", page_title=f"{board.title} leaderboard",
              board=board)
        for row in board.reproduced:
            for subset in row.group.subsets:
                explorer = _explorer(row.group, subset, task_data)
                _write_traces(runs_out / row.key, subset, explorer)
                write(runs_out / row.key / f"{_file_slug(subset)}.html", "queries.html.j2", "../../",
                      page_title=f"{subset} · {row.key}", row=row, board=board, explorer=explorer)
            files = _copy_record_files(row.group, runs_out / row.key)
            write(runs_out / row.key / "index.html", "run.html.j2", "../../", page_title=row.key, row=row,
                  board=board, subset_links={s: f"{_file_slug(s)}.html" for s in row.group.subsets}, files=files)
    ranked = sorted(claim_results, key=lambda c: c.grade == "MISSING")  # reproduced claims first, file order kept
    write(out / "claims.html", "claims.html.j2", "", page_title="Published claims", claim_results=ranked)


def _write_traces(run_dir: Path, subset: str, explorer: dict[str, Any]) -> None:
    """One small script per query with its model calls, loaded when the reader opens "Model reasoning" (a page
    never inlines traces: a full BRIGHT run would be ~100 MB of HTML). Scripts, not JSON, so that they load from
    file:// too; site.js renders every string as text."""
    for q in explorer["queries"]:
        if not q["calls"]:
            continue
        path = run_dir / "traces" / _file_slug(subset) / f"{q['anchor']}.js"
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"anchor": q["anchor"], "total": q["calls_total"], "calls": q["calls"]},
                             ensure_ascii=True)
        path.write_text(f"window.harnessTraces && window.harnessTraces({payload});\n", encoding="utf-8")
        q["traces_src"] = f"traces/{_file_slug(subset)}/{q['anchor']}.js"


def _file_slug(name: str) -> str:
    return "subset-" + re.sub(r"[^A-Za-z0-9_-]+", "_", name)
