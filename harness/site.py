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
from typing import Any, Callable

from harness.errors import HarnessError
from harness.files import TempDir
from harness.schema import to_dict
from harness.verify import (
    ClaimResult, RunGroup, benchmark_subsets, collect_groups, default_claims_dir, load_claims, verify_claim,
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
    p_value: float | None = None
    ci: tuple[float, float] | None = None

    @property
    def key(self) -> str:
        return self.group.group_id

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
        m = _SIZE.search(self.model_short)
        return f"{float(m.group(1)):g}B" if m else "n/a"

    @property
    def first_stage_short(self) -> str:
        spec = str(self.settings.get("first_stage") or "")
        if spec.startswith("run:"):
            return "run:" + re.split(r"[/\\]", spec[4:].rstrip("/"))[-1]
        return spec

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
        graded = [c.grade for c in self.claims if c.grade != "MISSING"]
        order = ("OK", "OKish", "FAIL")
        return max(graded, key=order.index) if graded else None


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
    rows = []
    if not path.is_file():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
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
    x_ticks = []
    for seconds in [0.0] + [10.0 ** e for e in range(x_lo, x_hi + 1)]:
        pos = math.log10(seconds + _EPS_S)
        if x_lo - 1e-3 <= pos <= x_hi + 1e-3 and (seconds == 0.0 or seconds >= 0.1):
            x_ticks.append({"x": px(pos), "label": f"{seconds:g}"})
    y_ticks = [{"y": py(v), "label": f"{v:g}"} for v in range(int(y_lo), int(y_hi) + 1, 5)]
    return {"width": _W, "height": _H, "points": points, "frontier_path": " ".join(path), "x_ticks": x_ticks,
            "y_ticks": y_ticks, "plot": {"x0": _PAD_L, "x1": _W - _PAD_R, "y0": _PAD_T, "y1": _H - _PAD_B}}


# --------------------------------------------------------------------------------------------------------------------
# Boards
# --------------------------------------------------------------------------------------------------------------------

@dataclass
class Board:
    benchmark: str
    title: str
    subsets: list[str]
    short: dict[str, str]
    rows: list[Row]
    chart: dict[str, Any] | None
    method: str
    first_stages: list[str]
    sizes: list[str]
    slug: str


def benchmark_info(name: str):
    from tasks import benchmark_info as lookup

    return lookup(name)


def _board(benchmark: str, groups: list[RunGroup], claim_results: dict[str, list[ClaimResult]],
           n_resamples: int) -> Board:
    from harness.significance import bootstrap_ci, method_text, rank_groups

    subsets = benchmark_subsets(benchmark)
    if not subsets:
        seen: dict[str, None] = {}
        for g in groups:
            for s in g.subsets:
                seen.setdefault(s, None)
        subsets = list(seen)
    rows = []
    for g in groups:
        per_query = {}
        for subset in g.subsets:
            per_query[subset] = {str(r["qid"]): float((r.get("metrics") or {}).get(PRIMARY, 0.0))
                                 for r in _per_query_file(g, subset) if "qid" in r}
        rows.append(Row(g, subsets, per_query, claim_results.get(g.group_id, [])))
    comparable = [r for r in rows if r.average is not None and not r.group.smoke
                  and all(r.per_query.get(s) for s in subsets)]
    if comparable:
        result = rank_groups({r.key: r.per_query for r in comparable}, {r.key: r.average for r in comparable},
                             subsets, n_resamples=n_resamples)
        for r in comparable:
            r.rank_group = result.group[r.key]
            r.p_value = result.pvalues.get(r.key)
            r.ci = bootstrap_ci([list(r.per_query[s].values()) for s in subsets], n_resamples=n_resamples)
    rows.sort(key=lambda r: (r.average is None or r.group.smoke, -(r.average or r.partial_average or 0.0), r.key))
    info = benchmark_info(benchmark)
    short = {s: (info.subset(s).short if info and info.subset(s) else s) for s in subsets}
    return Board(
        benchmark=benchmark, title=info.title if info else benchmark, subsets=subsets, short=short, rows=rows,
        chart=_chart(rows), method=method_text(n_resamples=n_resamples),
        first_stages=sorted({r.first_stage_short for r in rows}),
        sizes=sorted({r.model_size for r in rows}, key=lambda s: (s == "n/a", float(s[:-1]) if s != "n/a" else 0)),
        slug=re.sub(r"[^A-Za-z0-9_-]+", "-", benchmark),
    )


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


def _explorer(group: RunGroup, subset: str, task_data: TaskData | None) -> dict[str, Any]:
    from harness.trec import read_run

    record = group.subsets[subset]
    directory = group.subset_dirs[subset]
    files = record.files
    run_path = directory / files.run
    run = read_run(run_path)[0] if run_path.is_file() else {}
    loaded = task_data(record.task.name) if task_data else None
    texts, qrels = loaded if loaded else ({}, {})
    traces: dict[str, list[dict[str, Any]]] = {}
    if files.traces:
        for call in _read_jsonl(directory / files.traces):
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
            "calls": [{**c, "response": str(c.get("response", ""))[:MAX_TRACE_CHARS],
                       "cut": len(str(c.get("response", ""))) > MAX_TRACE_CHARS} for c in calls[:MAX_CALLS]],
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
          n_resamples: int = 10_000, strict: bool = True, warn: Callable[[str], None] | None = None) -> Path:
    """Render the site for the records in ``results_dir`` into ``out_dir``; returns the path of index.html.

    ``task_data`` (optional, e.g. ``task_data_loader()``) adds query texts and gold marks to the query explorer when
    the task's data is available locally; without it the explorer uses only what the records contain.
    """
    results = Path(results_dir)
    if not results.is_dir():
        raise HarnessError(f"Results directory {results} does not exist. Pass the directory `harness run` wrote "
                           "with --results.")
    site = templates_dir()
    env = _environment(site)
    on_error = (lambda path, exc: warn(f"skipping {exc}")) if warn else None
    groups = collect_groups(results, strict=strict, on_error=on_error)
    claims_dir = default_claims_dir(results)
    claims = load_claims([claims_dir]) if claims_dir.is_dir() else []
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

    boards = [_board(b, gs, by_group, n_resamples)
              for b, gs in sorted(benchmarks.items(), key=lambda kv: (order(kv[0]), kv[0]))]

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
        _render(out, site, env, boards, groups, claim_results, task_data)
    except BaseException as exc:
        staging.__exit__(type(exc), exc, None)
        raise
    staging.__exit__(None, None, None)  # every page rendered: swap the new site in, nothing stale survives
    return final / "index.html"


def _render(out: Path, site: Path, env, boards, groups, claim_results, task_data) -> None:
    (out / SITE_MARKER).write_text("built by `harness site build`; replaced whole on every build\n")
    shutil.copytree(site / "static", out / "static")
    runs_out = out / "runs"

    nav = [{"href": f"board-{b.slug}.html", "title": b.title} for b in boards]
    nav.append({"href": "claims.html", "title": "Claims"})
    common = {"nav": nav, "boards": boards}

    def write(path: Path, template: str, root: str, **context: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        html = env.get_template(template).render(root=root, **common, **context)
        path.write_text(html, encoding="utf-8")

    grade_counts = {g: sum(1 for c in claim_results if c.grade == g) for g in ("OK", "OKish", "FAIL", "MISSING")}
    write(out / "index.html", "index.html.j2", "", page_title="Leaderboards", grade_counts=grade_counts,
          n_groups=len(groups))
    for board in boards:
        write(out / f"board-{board.slug}.html", "board.html.j2", "", page_title=f"{board.title} leaderboard",
              board=board)
        for row in board.rows:
            explorers = []
            for subset in row.group.subsets:
                explorer = _explorer(row.group, subset, task_data)
                explorers.append(explorer)
                write(runs_out / row.key / f"{_file_slug(subset)}.html", "queries.html.j2", "../../",
                      page_title=f"{subset} · {row.key}", row=row, board=board, explorer=explorer)
            write(runs_out / row.key / "index.html", "run.html.j2", "../../", page_title=row.key, row=row,
                  board=board, subset_links={s: f"{_file_slug(s)}.html" for s in row.group.subsets})
    ranked = sorted(claim_results, key=lambda c: c.grade == "MISSING")  # reproduced claims first, file order kept
    write(out / "claims.html", "claims.html.j2", "", page_title="Published claims", claim_results=ranked)


def _file_slug(name: str) -> str:
    return "subset-" + re.sub(r"[^A-Za-z0-9_-]+", "_", name)
