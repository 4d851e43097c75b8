"""Published claims and their verification against run records (``harness verify``), graded 2CR-style.

Claims files (``results/expected/*.yaml``) hold published numbers, their source and the exact settings they used.
Conventions, fixed for every file:

* Values are written **as published, ×100** (``scale: 100``), so a reviewer can compare the file with the paper's
  table character by character; they are divided by ``scale`` on load, because records store metrics as fractions
  in [0, 1]. Tolerances are in the same published units (points of nDCG@10 ×100).
* Grade of one value, with Δ = reproduced − published (in points):
  **OK** if |Δ| ≤ ``ok``; **OKish** if |Δ| ≤ ``okish``; **FAIL** otherwise; **MISSING** if no record has it.
  Subsets and the benchmark average have separate tolerances (``tolerance.subset``, ``tolerance.average``); a file
  sets defaults and a claim may override them.
* A claim's grade is its worst value grade among OK < OKish < FAIL; MISSING cells only make the claim MISSING when
  nothing at all was reproduced.
* Matching: a run group (one ``results/<group_id>/``) matches a claim when every key of the claim's ``settings`` is
  equal in the group's records: ``benchmark``, ``first_stage`` (glob, e.g. ``run:*RaDeR*``), ``reranker``,
  ``model`` (glob, case-insensitive), ``window_size``, ``step``, ``top_k``, ``query_field``. Smoke runs
  (``--limit``) never match. Keys a claim leaves out are not checked. Several matching groups → the most recently
  finished one is graded (the others are counted).
"""

from __future__ import annotations

import fnmatch
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from harness.errors import HarnessError
from harness.records import iter_records

GRADES = ("OK", "OKish", "FAIL", "MISSING")
AVERAGE = "average"
SETTING_KEYS = ("benchmark", "first_stage", "reranker", "model", "window_size", "step", "top_k", "query_field")
DEFAULT_TOLERANCE = {"subset": {"ok": 1.5, "okish": 3.0}, AVERAGE: {"ok": 1.0, "okish": 2.0}}
_EPS = 1e-9


# --------------------------------------------------------------------------------------------------------------------
# Run groups: the records of one results/<group_id>/ directory, as verify and the site see them
# --------------------------------------------------------------------------------------------------------------------

@dataclass
class RunGroup:
    group_id: str
    directory: Path
    benchmark: str
    settings: dict[str, Any]
    subsets: dict[str, dict[str, Any]] = field(default_factory=dict)  # subset -> subset record
    subset_dirs: dict[str, Path] = field(default_factory=dict)
    aggregate: dict[str, Any] | None = None
    finished_utc: str = ""

    @property
    def smoke(self) -> bool:
        return any((r.get("spec") or {}).get("limit") is not None for r in self.subsets.values())

    def subset_metric(self, subset: str, metric: str) -> float | None:
        record = self.subsets.get(subset)
        value = (record or {}).get("metrics", {}).get(metric)
        return float(value) if value is not None else None

    def average(self, metric: str, expected_subsets: Iterable[str]) -> float | None:
        """Unweighted mean over ``expected_subsets``; None unless every one of them is present."""
        wanted = list(expected_subsets)
        values = [self.subset_metric(s, metric) for s in wanted]
        if not wanted or any(v is None for v in values):
            return None
        return sum(values) / len(values)


def _settings(record: dict[str, Any]) -> dict[str, Any]:
    spec = record.get("spec") or {}
    reranker = record.get("reranker") or {}
    params = reranker.get("params") or {}
    options = spec.get("reranker_options") or {}
    first_stage = record.get("first_stage") or {}
    return {
        "benchmark": (record.get("task") or {}).get("benchmark") or record.get("benchmark"),
        "first_stage": first_stage.get("spec") or spec.get("first_stage"),
        "reranker": reranker.get("name") or spec.get("reranker"),
        "model": reranker.get("model"),
        "window_size": params.get("window_size", options.get("window_size")),
        "step": params.get("step", options.get("step")),
        "top_k": first_stage.get("top_k", spec.get("top_k")),
        "query_field": first_stage.get("query_field", spec.get("query_field")),
    }


def collect_groups(results_dir: str | os.PathLike) -> list[RunGroup]:
    """Every run group under ``results_dir``, built from its subset records (and aggregate record, if any)."""
    root = Path(results_dir)
    groups: dict[Path, RunGroup] = {}
    aggregates: dict[Path, dict[str, Any]] = {}
    for directory, record in iter_records(root):
        if record.get("schema_version") != 1:
            raise HarnessError(f"Record {directory / 'record.json'} has schema_version "
                               f"{record.get('schema_version')!r}; this harness reads version 1.")
        if record.get("kind") == "aggregate":
            aggregates[directory] = record
            continue
        if record.get("kind") != "subset":
            raise HarnessError(f"Record {directory / 'record.json'} has an unknown kind {record.get('kind')!r}.")
        group_dir = directory.parent
        subset = (record.get("task") or {}).get("subset") or directory.name
        group = groups.get(group_dir)
        if group is None:
            settings = _settings(record)
            group = groups[group_dir] = RunGroup(group_dir.name, group_dir, str(settings["benchmark"]), settings)
        group.subsets[subset] = record
        group.subset_dirs[subset] = directory
        group.finished_utc = max(group.finished_utc, str((record.get("provenance") or {}).get("finished_utc", "")))
    for directory, record in aggregates.items():
        if directory in groups:
            groups[directory].aggregate = record
    for group in groups.values():  # published column order for BRIGHT / R2MED, then anything else
        order = {s: i for i, s in enumerate(benchmark_subsets(group.benchmark))}
        keys = sorted(group.subsets, key=lambda s: (order.get(s, len(order)), s))
        group.subsets = {k: group.subsets[k] for k in keys}
    return sorted(groups.values(), key=lambda g: g.group_id)


def benchmark_subsets(benchmark: str) -> list[str]:
    """The official subsets of a benchmark with a fixed board (BRIGHT, R2MED), in published column order."""
    if benchmark in ("bright", "r2med"):
        from tasks import list_subsets

        return list_subsets(benchmark)
    return []


# --------------------------------------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    id: str
    label: str
    file: str
    source: dict[str, Any]
    settings: dict[str, Any]
    metric: str
    values: dict[str, float]  # subset or "average" -> fraction in [0, 1]
    scale: float
    tolerance: dict[str, dict[str, float]]  # in published units
    party: str = "authors"
    note: str = ""


def load_claims(paths: Iterable[str | os.PathLike]) -> list[Claim]:
    """Claims from YAML files (or every *.yaml in a directory)."""
    import yaml

    claims: list[Claim] = []
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files.extend(sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")))
        elif path.is_file():
            files.append(path)
        else:
            raise HarnessError(f"Claims file {path} does not exist. Pass a YAML file or a directory such as "
                               "results/expected with --claims.")
    seen: dict[str, str] = {}
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise HarnessError(f"Claims file {path} is not valid YAML: {exc}") from exc
        for claim in _parse_file(doc, path):
            if claim.id in seen:
                raise HarnessError(f"Claim id {claim.id!r} appears in both {seen[claim.id]} and {path}; ids must be "
                                   "unique.")
            seen[claim.id] = str(path)
            claims.append(claim)
    return claims


def _tolerance(base: dict[str, dict[str, float]], override: Any, where: str) -> dict[str, dict[str, float]]:
    out = {k: dict(v) for k, v in base.items()}
    for kind, values in (override or {}).items():
        if kind not in out or not isinstance(values, dict) or set(values) - {"ok", "okish"}:
            raise HarnessError(f"{where}: tolerance must look like {{subset: {{ok: X, okish: Y}}, "
                               f"average: {{ok: X, okish: Y}}}}.")
        out[kind].update({k: float(v) for k, v in values.items()})
    for kind, t in out.items():
        if not 0 <= t["ok"] <= t["okish"]:
            raise HarnessError(f"{where}: tolerance.{kind} needs 0 ≤ ok ≤ okish (got {t}).")
    return out


def _parse_file(doc: Any, path: Path) -> list[Claim]:
    if not isinstance(doc, dict) or not isinstance(doc.get("claims"), list):
        raise HarnessError(f"Claims file {path} must be a mapping with a 'claims' list.")
    scale = float(doc.get("scale", 100))
    if scale not in (1.0, 100.0):
        raise HarnessError(f"Claims file {path}: scale must be 100 (values ×100 as published) or 1 (fractions).")
    file_tol = _tolerance(DEFAULT_TOLERANCE, doc.get("tolerance"), str(path))
    file_source = dict(doc.get("source") or {})
    out = []
    for i, item in enumerate(doc["claims"]):
        where = f"{path}: claim #{i + 1}"
        if not isinstance(item, dict) or "id" not in item or "values" not in item or "settings" not in item:
            raise HarnessError(f"{where} needs 'id', 'settings' and 'values'.")
        settings = dict(item["settings"])
        unknown = set(settings) - set(SETTING_KEYS)
        if unknown or "benchmark" not in settings:
            raise HarnessError(f"{where} ({item['id']}): settings need 'benchmark' and may only use "
                               f"{', '.join(SETTING_KEYS)} (unknown: {', '.join(sorted(unknown)) or 'none'}).")
        values = {}
        for key, value in dict(item["values"]).items():
            v = float(value) / scale
            if not 0.0 <= v <= 1.0:
                raise HarnessError(f"{where} ({item['id']}): value {key}={value} is outside [0, {scale:g}].")
            values[str(key)] = v
        out.append(Claim(
            id=str(item["id"]), label=str(item.get("label", item["id"])), file=path.name,
            source={**file_source, **dict(item.get("source") or {})}, settings=settings,
            metric=str(item.get("metric", doc.get("metric", "nDCG@10"))), values=values, scale=scale,
            tolerance=_tolerance(file_tol, item.get("tolerance"), where),
            party=str(item.get("party", doc.get("party", "authors"))), note=str(item.get("note", "")).strip(),
        ))
    return out


# --------------------------------------------------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    key: str  # subset name or "average"
    published: float  # fraction
    reproduced: float | None
    grade: str

    @property
    def delta(self) -> float | None:
        return None if self.reproduced is None else self.reproduced - self.published


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    group_id: str | None
    cells: tuple[Cell, ...]
    grade: str
    other_matches: int = 0


def grade_value(published: float, reproduced: float | None, tolerance: dict[str, float], scale: float = 100.0) -> str:
    """OK / OKish / FAIL / MISSING for one value (fractions in, tolerance in published units)."""
    if reproduced is None or (isinstance(reproduced, float) and math.isnan(reproduced)):
        return "MISSING"
    delta = abs(reproduced - published) * scale
    if delta <= tolerance["ok"] + _EPS:
        return "OK"
    if delta <= tolerance["okish"] + _EPS:
        return "OKish"
    return "FAIL"


def _matches(claim: Claim, group: RunGroup) -> bool:
    if group.smoke:
        return False
    for key, wanted in claim.settings.items():
        have = group.settings.get(key)
        if key in ("first_stage", "model"):
            if have is None or not fnmatch.fnmatchcase(str(have).lower(), str(wanted).lower()):
                return False
        elif key in ("window_size", "step", "top_k"):
            if have is None or int(have) != int(wanted):
                return False
        elif str(have) != str(wanted):
            return False
    return True


def matching_groups(claim: Claim, groups: Iterable[RunGroup]) -> list[RunGroup]:
    found = [g for g in groups if _matches(claim, g)]
    return sorted(found, key=lambda g: (g.finished_utc, g.group_id), reverse=True)


def verify_claim(claim: Claim, groups: Iterable[RunGroup]) -> ClaimResult:
    found = matching_groups(claim, groups)
    group = found[0] if found else None
    cells = []
    for key, published in claim.values.items():
        tol = claim.tolerance[AVERAGE if key == AVERAGE else "subset"]
        if group is None:
            reproduced = None
        elif key == AVERAGE:
            expected = benchmark_subsets(group.benchmark) or [k for k in claim.values if k != AVERAGE]
            reproduced = group.average(claim.metric, expected)
        else:
            reproduced = group.subset_metric(key, claim.metric)
        cells.append(Cell(key, published, reproduced, grade_value(published, reproduced, tol, claim.scale)))
    graded = [c.grade for c in cells if c.grade != "MISSING"]
    grade = max(graded, key=GRADES.index) if graded else "MISSING"
    return ClaimResult(claim, group.group_id if group else None, tuple(cells), grade, max(len(found) - 1, 0))


def verify(claims: Iterable[Claim], results_dir: str | os.PathLike) -> list[ClaimResult]:
    groups = collect_groups(results_dir)
    return [verify_claim(c, groups) for c in claims]


SHIPPED_CLAIMS_DIR = Path(__file__).resolve().parent.parent / "results" / "expected"


def default_claims_dir(results_dir: str | os.PathLike) -> Path:
    """``<results>/expected`` when the results directory has its own claims, else the claims shipped with the
    harness (``results/expected`` of the checkout)."""
    own = Path(results_dir) / "expected"
    return own if own.is_dir() else SHIPPED_CLAIMS_DIR


def render_report(results: list[ClaimResult], *, show_missing: bool = True) -> str:
    """Plain-text report: one table per matched claim, then the claims with no matching record."""
    lines: list[str] = []
    missing = [r for r in results if r.group_id is None]
    for r in results:
        if r.group_id is None:
            continue
        c = r.claim
        src = " ".join(str(c.source[k]) for k in ("arxiv", "table") if c.source.get(k)) or str(c.source.get("paper", ""))
        lines.append(f"{r.grade:<7} {c.id}  ({c.label}; {src})")
        lines.append(f"        run: {r.group_id}" + (f"  (+{r.other_matches} older matching runs)"
                                                      if r.other_matches else ""))
        lines.append(f"        {'subset':<22} {'published':>10} {'reproduced':>11} {'delta':>8}  grade")
        for cell in r.cells:
            rep = "—" if cell.reproduced is None else f"{cell.reproduced * c.scale:.2f}"
            delta = "" if cell.delta is None else f"{round(cell.delta * c.scale, 2) + 0.0:+.2f}"
            lines.append(f"        {cell.key:<22} {cell.published * c.scale:>10.2f} {rep:>11} {delta:>8}  "
                         f"{cell.grade}")
        lines.append("")
    if show_missing and missing:
        lines.append(f"MISSING: {len(missing)} claim(s) have no matching run record:")
        for r in missing:
            s = r.claim.settings
            lines.append(f"  {r.claim.id:<40} " + " ".join(f"{k}={s[k]}" for k in SETTING_KEYS if k in s))
        lines.append("")
    counts = {g: sum(1 for r in results if r.grade == g) for g in GRADES}
    lines.append("summary: " + ", ".join(f"{counts[g]} {g}" for g in GRADES))
    return "\n".join(lines)


def exit_code(results: list[ClaimResult], *, fail_on_missing: bool = False) -> int:
    if any(r.grade == "FAIL" for r in results):
        return 1
    if fail_on_missing and any(r.grade == "MISSING" for r in results):
        return 1
    return 0
