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
* A claim's grade is its worst value grade among OK < OKish < FAIL when every value (each subset and the
  average) was reproduced. A comparable run that covers only some of them is **PARTIAL n/N** (never OK: a claim
  about 12 subsets is not reproduced by 3), unless a covered value FAILs; **MISSING** when no comparable run exists.
* Per-subset first-stage files are pinned with ``first_stage_files: {subset: "git-blob:<sha1>" | "sha256:<hex>"}``;
  a run whose files differ (or do not record the needed digest) is NOT COMPARABLE, naming the subset.
* Matching compares like with like. A run group (one ``results/<group_id>/``) is a *candidate* for a claim when its
  benchmark, reranker, model (glob, case-insensitive) and first stage (glob) equal the claim's. A candidate is
  graded only if **every other setting the claim declares** (window_size, step, top_k, query_field, passage_length,
  reasoning_budget, max_tokens, temperature, prompt_mode, model_revision, …) equals the group's resolved experiment
  identity in every subset; otherwise it is listed as **NOT COMPARABLE** with the differing settings
  (``window_size 10 ≠ 20``), never OK/FAIL. Smoke runs (``--limit``) and degenerate runs are never graded. Several
  comparable groups → the most recently finished one is graded (the others are counted).
"""

from __future__ import annotations

import fnmatch
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from harness.errors import HarnessError
from harness.schema import AggregateRecord, SubsetRecord
from harness.spec import flat_settings

GRADES = ("OK", "OKish", "PARTIAL", "FAIL", "NOT COMPARABLE", "MISSING")
AVERAGE = "average"
CANDIDATE_KEYS = ("benchmark", "reranker", "model", "first_stage")
DEFAULT_TOLERANCE = {"subset": {"ok": 1.5, "okish": 3.0}, AVERAGE: {"ok": 1.0, "okish": 2.0}}
_EPS = 1e-9
VARIES = object()


# --------------------------------------------------------------------------------------------------------------------
# Run groups: the records of one results/<group_id>/ directory, as verify and the site see them
# --------------------------------------------------------------------------------------------------------------------

@dataclass
class RunGroup:
    group_id: str
    directory: Path
    benchmark: str
    identity: dict[str, Any]
    settings: dict[str, Any]  # flat settings equal in every subset (VARIES where they differ)
    subsets: dict[str, SubsetRecord] = field(default_factory=dict)
    subset_dirs: dict[str, Path] = field(default_factory=dict)
    aggregate: AggregateRecord | None = None
    finished_utc: str = ""

    @property
    def smoke(self) -> bool:
        return self.identity.get("limit") is not None

    @property
    def degenerate(self) -> bool:
        return any(r.counts.degenerate for r in self.subsets.values())

    def subset_metric(self, subset: str, metric: str) -> float | None:
        record = self.subsets.get(subset)
        value = record.metrics.get(metric) if record else None
        return float(value) if value is not None else None

    def average(self, metric: str, expected_subsets: Iterable[str]) -> float | None:
        """Unweighted mean over ``expected_subsets``; None unless every one of them is present."""
        wanted = list(expected_subsets)
        values = [self.subset_metric(s, metric) for s in wanted]
        if not wanted or any(v is None for v in values):
            return None
        return sum(values) / len(values)


def _group_settings(records: list[SubsetRecord]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for i, record in enumerate(records):
        flat = flat_settings(record.experiment, record.reranker.settings)
        flat["first_stage"] = record.first_stage.spec
        flat["first_stage_sha256"] = record.first_stage.sha256
        flat["query_field"] = record.first_stage.query_field
        for key in set(merged) | set(flat):
            value = flat.get(key)
            if i == 0:
                merged[key] = value
            elif merged.get(key, None) is not VARIES and merged.get(key) != value:
                merged[key] = VARIES
    return merged


def collect_groups(results_dir: str | os.PathLike, *, strict: bool = True, on_error=None) -> list[RunGroup]:
    """Every run group under ``results_dir``, built from its subset records (and aggregate record, if any)."""
    from harness.records import records_by_group

    groups = []
    for group_dir, found in records_by_group(results_dir, strict=strict, on_error=on_error).items():
        subsets = found["subsets"]
        if not subsets:
            continue
        records = [record for _, record in subsets.values()]
        first = records[0]
        order = {s: i for i, s in enumerate(benchmark_subsets(first.task.benchmark))}
        keys = sorted(subsets, key=lambda s: (order.get(s, len(order)), s))
        group = RunGroup(
            group_id=group_dir.name, directory=group_dir, benchmark=first.task.benchmark,
            identity=first.experiment, settings=_group_settings(records),
            subsets={k: subsets[k][1] for k in keys}, subset_dirs={k: subsets[k][0] for k in keys},
            aggregate=found["aggregate"],
            finished_utc=max(r.provenance.finished_utc for r in records),
        )
        groups.append(group)
    return sorted(groups, key=lambda g: g.group_id)


def benchmark_subsets(benchmark: str) -> list[str]:
    """The declared official subsets of a benchmark that averages over them (BRIGHT, R2MED), in column order."""
    from tasks import benchmark_info

    info = benchmark_info(benchmark)
    return info.subset_names if info and info.average == "mean" else []


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
    obtain: str = ""  # how to get the first-stage files the claim pins (shown before the reproduce commands)
    reproduce: tuple[str, ...] = ()  # explicit commands; empty: derived from the settings

    @property
    def source_links(self) -> list[tuple[str, str]]:
        """(text, URL) for the claim's source: the arXiv abstract, a URL given in the file."""
        links = []
        if self.source.get("arxiv"):
            links.append((f"arXiv {self.source['arxiv']}", f"https://arxiv.org/abs/{self.source['arxiv']}"))
        for key in ("url", "code"):
            if self.source.get(key):
                links.append((str(self.source[key]), str(self.source[key])))
        return links

    @property
    def source_text(self) -> str:
        parts = [str(self.source[k]) for k in ("table", "row") if self.source.get(k)]
        paper = f"arXiv {self.source['arxiv']}" if self.source.get("arxiv") else str(self.source.get("paper", ""))
        return ", ".join([paper] + parts) if paper else ", ".join(parts)

    def commands(self) -> list[str]:
        """The ``harness run`` command(s) that reproduce this claim, then the verify command."""
        if self.reproduce:
            return list(self.reproduce) + [f"harness verify --claim {self.id}"]
        return [reproduce_command(self.settings), f"harness verify --claim {self.id}"]


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


PIN_KINDS = ("git-blob", "sha256")


def _check_pins(claim: Claim, where: str) -> None:
    pins = claim.settings.get("first_stage_files")
    if pins is None:
        return
    if not isinstance(pins, dict) or not pins:
        raise HarnessError(f"{where} ({claim.id}): first_stage_files must map subsets to 'git-blob:<sha1>' or "
                           "'sha256:<hex>'.")
    for subset, pin in pins.items():
        kind, _, digest = str(pin).partition(":")
        if kind not in PIN_KINDS or not digest or any(ch not in "0123456789abcdef" for ch in digest):
            raise HarnessError(f"{where} ({claim.id}): first_stage_files.{subset} = {pin!r}; write "
                               "'git-blob:<40 hex>' (git hash-object FILE) or 'sha256:<64 hex>'.")


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def reproduce_command(settings: dict[str, Any]) -> str:
    """``harness run`` with every setting a claim declares (exact values, nothing left to a default)."""
    import shlex

    from harness.run_options import RERANKER_FLAGS

    direct = {"first_stage", "reranker", "top_k", "query_field", "limit"}
    parts = ["harness", "run", "--task", str(settings["benchmark"])]
    lead = ("first_stage", "reranker", "model", "model_revision", "top_k", "query_field")
    ordered = [k for k in lead if k in settings] + [k for k in settings if k not in lead]
    for key in ordered:
        value = settings[key]
        if key in ("benchmark", "first_stage_sha256", "first_stage_files"):
            continue
        if key == "model_revision":
            key = "revision"
        if isinstance(value, bool):
            value = str(value).lower()
        if key in direct or key in RERANKER_FLAGS:
            parts += [_flag(key), shlex.quote(str(value))]
        else:
            parts += ["--reranker-arg", shlex.quote(f"{key}={value}")]
    return " ".join(parts)


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
        settings = dict(item["settings"]) if isinstance(item["settings"], dict) else None
        if settings is None or "benchmark" not in settings or "reranker" not in settings:
            raise HarnessError(f"{where} ({item['id']}): settings must be a mapping with at least 'benchmark' and "
                               "'reranker' (plus every setting the published number was measured with).")
        for key in settings:
            if key not in known_setting_keys():
                import difflib

                close = difflib.get_close_matches(key, sorted(known_setting_keys()), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise HarnessError(f"{where} ({item['id']}): unknown setting {key!r}.{hint} Settings are the "
                                   "resolved run settings (see `harness ls rerankers -v`).")
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
            party=str(item.get("party", doc.get("party", "authors"))), note=" ".join(str(item.get("note", "")).split()),
            obtain=" ".join(str(item.get("obtain", "")).split()),
            reproduce=tuple(str(c) for c in (item.get("reproduce") or ())),
        ))
        _check_pins(out[-1], where)
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
    not_comparable: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (group id, differing settings)

    @property
    def coverage(self) -> tuple[int, int]:
        """(subsets reproduced, subsets claimed); a claim of only an average counts that one value."""
        cells = [c for c in self.cells if c.key != AVERAGE] or list(self.cells)
        return sum(1 for c in cells if c.reproduced is not None), len(cells)

    @property
    def average_cell(self) -> Cell | None:
        return next((c for c in self.cells if c.key == AVERAGE), None)

    @property
    def grade_text(self) -> str:
        """``PARTIAL 3/13`` for partial coverage; the grade otherwise."""
        if self.grade == "PARTIAL":
            return "PARTIAL {}/{}".format(*self.coverage)
        return self.grade


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


def _same(key: str, have: Any, wanted: Any) -> bool:
    if have is VARIES:
        return False
    if key in ("first_stage", "model"):
        return have is not None and fnmatch.fnmatchcase(str(have).lower(), str(wanted).lower())
    if isinstance(wanted, bool) or isinstance(have, bool):
        return have is wanted or have == wanted
    if isinstance(wanted, (int, float)) and not isinstance(have, (str, type(None))):
        try:
            return math.isclose(float(have), float(wanted), rel_tol=0, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    return str(have) == str(wanted)


def _shown(value: Any) -> str:
    return "varies by subset" if value is VARIES else ("unset" if value is None else str(value))


_KNOWN_KEYS: set[str] = set()


def known_setting_keys() -> set[str]:
    """Names a claim may use: the identity's top-level settings, and every option and resolved setting of every
    registered reranker (rerankers the harness does not have yet use the same names)."""
    if not _KNOWN_KEYS:
        from rerankers import RERANKERS

        _KNOWN_KEYS.update({"benchmark", "first_stage", "first_stage_sha256", "reranker", "model", "model_revision",
                            "top_k", "limit", "query_field", "quantization",
                            "first_stage_files"})
        for name in RERANKERS:
            cls = RERANKERS.get(name)
            _KNOWN_KEYS.update(cls.options.options)
            _KNOWN_KEYS.update(cls().resolve({}))
    return _KNOWN_KEYS


def is_candidate(claim: Claim, group: RunGroup) -> bool:
    return all(_same(key, group.settings.get(key), claim.settings[key]) for key in CANDIDATE_KEYS
               if key in claim.settings)


def differences(claim: Claim, group: RunGroup) -> list[str]:
    """The declared settings of ``claim`` the group does not share (empty: comparable)."""
    out = []
    if group.smoke:
        out.append(f"limit {group.identity.get('limit')} (a smoke run)")
    if group.degenerate:
        out.append("degenerate run (most answers were fallbacks)")
    for key, wanted in claim.settings.items():
        if key in CANDIDATE_KEYS:
            continue
        if key == "first_stage_files":
            out.extend(_pin_differences(wanted, group))
            continue
        have = group.settings.get(key)
        if not _same(key, have, wanted):
            out.append(f"{key} {_shown(have)} ≠ {wanted}")
    return out


def _pin_differences(pins: dict[str, str], group: RunGroup) -> list[str]:
    out = []
    for subset, pin in pins.items():
        record = group.subsets.get(subset)
        if record is None:
            continue  # coverage, not comparability: the subset is simply MISSING
        kind, _, digest = str(pin).partition(":")
        have = record.first_stage.sha256 if kind == "sha256" else record.first_stage.params.get("git_blob")
        if have is None:
            out.append(f"first stage of {subset}: the record has no {kind} digest to check against the pin")
        elif str(have).lower() != digest.lower():
            out.append(f"first stage of {subset}: {kind} {str(have)[:12]} ≠ pinned {digest[:12]}")
    return out


def verify_claim(claim: Claim, groups: Iterable[RunGroup]) -> ClaimResult:
    candidates = sorted((g for g in groups if is_candidate(claim, g)),
                        key=lambda g: (g.finished_utc, g.group_id), reverse=True)
    comparable = [g for g in candidates if not differences(claim, g)]
    apart = tuple((g.group_id, tuple(differences(claim, g))) for g in candidates if differences(claim, g))
    group = comparable[0] if comparable else None
    cells = []
    order = {s: i for i, s in enumerate(benchmark_subsets(str(claim.settings["benchmark"])) + [AVERAGE])}
    for key in sorted(claim.values, key=lambda k: order.get(k, len(order))):
        published = claim.values[key]
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
    if group is None:
        grade = "NOT COMPARABLE" if apart else "MISSING"
    elif not graded:
        grade = "MISSING"
    elif "FAIL" in graded:
        grade = "FAIL"  # a value off by more than the tolerance fails the claim, whatever else is missing
    elif len(graded) < len(cells):
        grade = "PARTIAL"
    else:
        grade = max(graded, key=GRADES.index)
    return ClaimResult(claim, group.group_id if group else None, tuple(cells), grade,
                       max(len(comparable) - 1, 0), apart)


def select_claims(claims: list[Claim], ids: Iterable[str]) -> list[Claim]:
    """The claims named by ``ids`` (``--claim``), with a did-you-mean for an unknown id."""
    import difflib

    by_id = {c.id: c for c in claims}
    chosen = []
    for wanted in ids:
        if wanted not in by_id:
            close = difflib.get_close_matches(wanted, list(by_id), n=3, cutoff=0.4)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise HarnessError(f"--claim {wanted}: no such claim in the claims files.{hint} List them with "
                               "`harness verify --hide-missing` or see results/expected/*.yaml.")
        chosen.append(by_id[wanted])
    return chosen


def verify(claims: Iterable[Claim], results_dir: str | os.PathLike, *, strict: bool = True,
           warn=None, allow_empty: bool = False) -> list[ClaimResult]:
    """Grade ``claims``; a record that does not follow the schema stops it (``strict``) or is skipped with
    ``warn(message)``. No run record at all under ``results_dir`` is an error: nothing could be verified."""
    on_error = (lambda path, exc: warn(f"skipping {exc}")) if warn else None
    if not Path(results_dir).is_dir():
        raise HarnessError(f"Results directory {results_dir} does not exist. Pass the directory `harness run` "
                           "wrote with --results.")
    groups = collect_groups(results_dir, strict=strict, on_error=on_error)
    if not groups and not allow_empty:
        raise HarnessError(f"No run records under {results_dir}: nothing to verify. Run `harness run …` first "
                           "(`harness verify --claim ID` prints the command for a claim), or pass --results DIR.")
    return [verify_claim(c, groups) for c in claims]


def _shipped_claims_dir() -> Path:
    """The claims of a source checkout (results/expected), else the copy installed with the wheel."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "results" / "expected"
    return checkout if checkout.is_dir() else here / "_claims"


SHIPPED_CLAIMS_DIR = _shipped_claims_dir()


def default_claims_dir(results_dir: str | os.PathLike) -> Path:
    """``<results>/expected`` when the results directory has its own claims, else the claims shipped with the
    harness (``results/expected`` of the checkout)."""
    own = Path(results_dir) / "expected"
    return own if own.is_dir() else SHIPPED_CLAIMS_DIR


def _claim_block(r: ClaimResult, *, detail: bool) -> list[str]:
    import textwrap

    c = r.claim
    t = c.tolerance
    lines = [f"{r.grade_text:<7} {c.id}  ({c.label}; {c.source_text})"]
    covered, total = r.coverage
    avg = r.average_cell
    avg_text = "" if avg is None else (" + average" if avg.reproduced is not None else ", no average")
    lines.append(f"        {c.party} · coverage {covered}/{total}{avg_text} · tolerance (points): subsets OK ±{t['subset']['ok']:g}"
                 f", OKish ±{t['subset']['okish']:g}; average OK ±{t[AVERAGE]['ok']:g}, OKish "
                 f"±{t[AVERAGE]['okish']:g}")
    for text, url in c.source_links:
        lines.append(f"        source: {url}")
    if c.note:
        lines += textwrap.wrap(c.note, width=110, initial_indent="        note: ", subsequent_indent="              ")
    if r.group_id:
        lines.append(f"        run: {r.group_id}" + (f"  (+{r.other_matches} older matching runs)"
                                                      if r.other_matches else ""))
    if r.group_id or detail:
        lines.append(f"        {'subset':<22} {'published':>10} {'reproduced':>11} {'delta':>8}  grade")
        for cell in r.cells:
            rep = "—" if cell.reproduced is None else f"{cell.reproduced * c.scale:.2f}"
            delta = "" if cell.delta is None else f"{round(cell.delta * c.scale, 2) + 0.0:+.2f}"
            lines.append(f"        {cell.key:<22} {cell.published * c.scale:>10.2f} {rep:>11} {delta:>8}  "
                         f"{cell.grade}")
    for group_id, diffs in r.not_comparable if detail else ():
        lines.append(f"        not comparable: {group_id}: {'; '.join(diffs)}")
    if detail or r.grade in ("PARTIAL", "MISSING"):
        if c.obtain:
            lines += textwrap.wrap(c.obtain, width=110, initial_indent="        first stage: ",
                                   subsequent_indent="                     ")
        lines.append("        reproduce:")
        lines += [f"          {command}" for command in c.commands()]
    lines.append("")
    return lines


def render_report(results: list[ClaimResult], *, show_missing: bool = True, detail: bool = False) -> str:
    """Plain-text report: one block per graded claim (grade, party, coverage, tolerance, source, note, values and,
    for partial claims, the reproduce commands), then the not-comparable candidates, then the claims with no
    matching record. ``detail`` (``--claim``) prints the full block of every claim given."""
    lines: list[str] = []
    for r in results:
        if r.group_id is not None or detail:
            lines += _claim_block(r, detail=detail)
    apart = [r for r in results if r.not_comparable and not detail]
    if apart:
        lines.append(f"NOT COMPARABLE: {len(apart)} claim(s) have runs of the same system with other settings "
                     "(not graded):")
        for r in apart:
            lines.append(f"  {r.claim.id}")
            for group_id, diffs in r.not_comparable:
                lines.append(f"      {group_id}: {'; '.join(diffs)}")
        lines.append("")
    missing = [r for r in results if r.grade == "MISSING"]
    if show_missing and missing and not detail:
        lines.append(f"MISSING: {len(missing)} claim(s) have no matching run record "
                     "(`harness verify --claim ID` prints how to reproduce one):")
        for r in missing:
            s = r.claim.settings
            lines.append(f"  {r.claim.id:<40} " + " ".join(f"{k}={v}" for k, v in s.items()
                                                             if k != "first_stage_files"))
        lines.append("")
    counts = {g: sum(1 for r in results if r.grade == g) for g in GRADES}
    lines.append("summary: " + ", ".join(f"{counts[g]} {g}" for g in GRADES))
    return "\n".join(lines)


def exit_code(results: list[ClaimResult], *, fail_on_missing: bool = False) -> int:
    """1 on any FAIL; with ``fail_on_missing`` also on any claim not fully reproduced (PARTIAL, MISSING or NOT
    COMPARABLE)."""
    if any(r.grade == "FAIL" for r in results):
        return 1
    if fail_on_missing and any(r.grade in ("PARTIAL", "MISSING", "NOT COMPARABLE") for r in results):
        return 1
    return 0
