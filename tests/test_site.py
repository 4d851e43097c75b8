"""The static leaderboard: HTML content from fixture records, escaping, and a check in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.site import build, task_data_loader
from records_fixture import XSS, write_fake_boards, write_tiny_records

EXPECTED = Path(__file__).resolve().parent.parent / "results" / "expected"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site")
    results = root / "results"
    write_tiny_records(results)
    write_fake_boards(results, queries=8)
    shutil.copytree(EXPECTED, results / "expected")
    loader = task_data_loader()
    # only the packaged tiny task has data offline; the fake BRIGHT/R2MED boards render without gold marks
    index = build(results, root / "out", task_data=lambda name: loader(name) if name.startswith("tiny") else None,
                  n_resamples=2000, boards=["all"])
    return index.parent


def _run_dir(site: Path, prefix: str) -> Path:
    return next(p for p in (site / "runs").iterdir() if p.name.startswith(prefix))


def test_pages_exist(site):
    for name in ("index.html", "board-bright.html", "board-r2med.html", "board-tiny.html", "claims.html",
                 "static/site.css", "static/site.js"):
        assert (site / name).is_file(), name
    html = (site / "index.html").read_text()
    assert "BRIGHT" in html and "R2MED" in html and "http" not in html.replace("http://www.w3.org", "")  # no CDN


def test_bright_board_content(site):
    html = (site / "board-bright.html").read_text()
    header = html[html.index("<thead>"):html.index("</thead>")]
    for subset in ("biology", "earth_science", "theoremqa_theorems"):
        assert f'title="{subset}"' in header
    assert len(re.findall(r'data-sort="s-\d+"', header)) == 12 and ">Avg<" in header
    assert "35.74" in html and "38.20" in html  # averages of ReasonRank-7B and of the OKish 32B row
    for column in ("s/query", "GPU", "tok/query", "Fails"):
        assert column in header
    assert "1× H100 80GB HBM3" in html
    assert 'class="grade grade-okish"' in html and 'class="grade grade-fail"' in html
    assert "Holm" in html and "randomization" in html  # the test and correction are stated
    assert "<svg" in html and 'class="frontier"' in html  # quality–cost chart, inline, built at build time
    assert 'id="filter-first-stage"' in html and 'value="7B"' in html and 'value="32B"' in html
    assert 'class="rankgroup' in html
    partial = html[html.index('data-key="bright__reasonir-published__rankzephyr'):]
    partial = partial[:partial.index("</tr>")]
    assert "*</span>" in partial and "rankgroup" not in partial  # incomplete run: partial mean, not ranked
    r2med = (site / "board-r2med.html").read_text()
    assert len(re.findall(r'data-sort="s-\d+"', r2med)) == 8 and "39.52" in r2med
    row = html[html.index('data-key="bright__reasonir-published__reasonrank'):]
    assert '<span class="family" title="reranker family">listwise</span>' in row[:row.index("</tr>")]


def test_run_detail_page(site):
    html = (_run_dir(site, "bright__reasonir-published__reasonrank-reasonrank-32B") / "index.html").read_text()
    assert "Experiment identity" in html and "Provenance" in html and "harness_version" in html
    assert "ReasonRank (32B)" in html and "+2.00" in html  # claim table with delta
    assert html.index(">biology<") < html.index(">earth_science<") < html.index(">aops<")  # published order
    assert "sha256" in html


def test_query_explorer_gold_marks_and_escaped_reasoning(site):
    page = _run_dir(site, "tiny__run-first_stage.trec__reasonrank") / "subset-tiny.html"
    html = page.read_text()
    assert "Why are insects attracted to light at night?" in html  # query text from the task (opt-in)
    assert "✓ (1)" in html and "✓ (2)" in html  # gold marks, with grades
    assert "bio/photo_1" in html and "Model reasoning" in html
    assert XSS not in html and "<b>bold</b>" not in html
    # traces are not inlined: one small script per query, loaded on demand and rendered as text by site.js
    assert "Model reasoning: 2 call(s)" in html and 'data-src="traces/subset-tiny/q-' in html
    trace_file = next((page.parent / "traces" / "subset-tiny").glob("*.js"))
    assert "window.harnessTraces" in trace_file.read_text() and "\\u003c" not in trace_file.read_text()
    first_stage = (_run_dir(site, "tiny__run-first_stage.trec__none") / "subset-tiny.html").read_text()
    assert "Model reasoning" not in first_stage


def test_every_page_escapes_record_strings(site):
    for page in site.rglob("*.html"):
        assert XSS not in page.read_text(), page


def test_cli_site_build(site, tmp_path):
    import typer
    from typer.testing import CliRunner

    from harness.commands.leaderboard import register

    app = typer.Typer()
    register(app)
    results = tmp_path / "results"
    write_tiny_records(results)
    out = CliRunner().invoke(app, ["site", "build", "--results", str(results), "--out", str(tmp_path / "www"),
                                   "--resamples", "200", "--boards", "tiny"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "www" / "board-tiny.html").is_file() and "site written to" in out.output
    hidden = CliRunner().invoke(app, ["site", "build", "--results", str(results), "--out", str(tmp_path / "www"),
                                      "--resamples", "200"])
    assert hidden.exit_code == 0, hidden.output  # the smoke fixture is not a peer of BRIGHT unless asked for
    assert not (tmp_path / "www" / "board-tiny.html").exists() and "tiny" not in \
        (tmp_path / "www" / "index.html").read_text().split("<main>")[1]
    bad = CliRunner().invoke(app, ["site", "build", "--results", str(results), "--out", str(tmp_path / "www"),
                                   "--boards", "brigth"])
    assert bad.exit_code != 0 and "Did you mean 'bright'?" in str(bad.exception)


def test_missing_templates_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_SITE_TEMPLATES", str(tmp_path))
    with pytest.raises(HarnessError, match="HARNESS_SITE_TEMPLATES"):
        build(tmp_path, tmp_path / "out")


# ---------------------------------------------------------------------------------------------------------------------
# headless Chromium, driven by Playwright (the system Chromium; no browser download)
# ---------------------------------------------------------------------------------------------------------------------

def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium binary found (install the Debian package: apt-get install -y chromium); "
                "browser checks of the leaderboard skipped")


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e "
                                   "'.[dev]'); browser checks of the leaderboard skipped")
    with sync_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def served(site):
    """The built site over HTTP on localhost (downloads are fetched the way a visitor's browser fetches them)."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _page(browser, width: int, height: int = 900):
    page = browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("dialog", lambda dialog: (problems.append("dialog: " + dialog.message), dialog.dismiss()))
    return page, problems


_BOX = """selector => { const b = document.querySelector(selector).getBoundingClientRect();
                    return {left: b.left, right: b.right, top: b.top, bottom: b.bottom}; }"""


@pytest.mark.parametrize("width", [1280, 390])
def test_layout_avg_and_system_visible_without_scrolling(browser, served, width, tmp_path):
    page, problems = _page(browser, width)
    page.goto(f"{served}/board-bright.html")
    inner = page.evaluate("innerWidth")
    for selector in ("#board thead th.avg", "#board tbody tr td.avg", "#board tbody tr td.system",
                     "#board thead th.system"):
        box = page.evaluate(_BOX, selector)
        assert 0 <= box["left"] and box["right"] <= inner, (width, selector, box, inner)
    assert page.evaluate("document.documentElement.scrollWidth") <= inner  # the page itself never scrolls sideways
    if width < 1400:  # per-subset columns start collapsed, one click shows them
        assert not page.locator("#board thead th.sub").first.is_visible()
        page.click("#toggle-subsets")
        assert page.locator("#board thead th.sub").first.is_visible() and "subsets=1" in page.url
        page.evaluate("document.getElementById('board-wrap').scrollLeft = 10000")  # System stays in view
        wrap = page.evaluate(_BOX, "#board-wrap")
        box = page.evaluate(_BOX, "#board tbody tr td.system")
        assert wrap["left"] <= box["left"] and box["right"] <= inner, (box, wrap)
    page.screenshot(path=str(tmp_path / f"board-{width}.png"))
    keep = os.environ.get("HARNESS_TEST_ARTIFACTS")  # e.g. CI uploads the screenshots for a human to look at
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / f"board-{width}.png", Path(keep) / f"leaderboard-bright-{width}.png")
    assert not problems, problems


def test_filters_change_the_url_and_the_metric_selector_switches_values(browser, served):
    page, problems = _page(browser, 1280)
    page.goto(f"{served}/board-bright.html")
    rows = page.locator("#board tbody tr")
    total = rows.count()
    page.select_option("#filter-family", "pointwise")
    assert "family=pointwise" in page.url
    visible = [rows.nth(i).get_attribute("data-family") for i in range(total) if rows.nth(i).is_visible()]
    assert visible and set(visible) == {"pointwise"}
    page.select_option("#filter-kind", "reported")
    assert "kind=reported" in page.url and "family=pointwise" in page.url
    page.select_option("#filter-family", "")
    assert "family=" not in page.url
    shown = [rows.nth(i).get_attribute("data-kind") for i in range(total) if rows.nth(i).is_visible()]
    assert shown and set(shown) == {"reported"}
    # a shared link restores the view
    page.goto(f"{served}/board-bright.html?kind=reproduced&metric=R@100")
    assert page.input_value("#filter-kind") == "reproduced" and page.input_value("#metric") == "R@100"
    first = page.locator("#board tbody tr:not([hidden]) td.avg .v").first.inner_text()
    page.select_option("#metric", "nDCG@10")
    assert page.locator("#board tbody tr:not([hidden]) td.avg .v").first.inner_text() != first
    assert "metric=" not in page.url
    assert not problems, problems


def test_downloads_load(browser, served, site):
    page, problems = _page(browser, 1280)
    page.goto(f"{served}/board-bright.html")
    doc = page.evaluate("async () => (await fetch(document.getElementById('download-json').href)).json()")
    csv_text = page.evaluate("async () => (await fetch(document.getElementById('download-csv').href)).text()")
    assert len(doc["rows"]) == page.locator("#board tbody tr").count()
    kinds = {r["kind"] for r in doc["rows"]}
    assert kinds == {"reproduced", "reported"}
    first = doc["rows"][0]
    assert 0 <= first["average nDCG@10"] <= 1 and first["rank_group"] == 1 and first["group_id" if False else "id"]
    header = csv_text.splitlines()[0]
    for column in ("kind", "id", "rank_group", "p_vs_leader", "ci_low", "grade", "average nDCG@10",
                   "biology nDCG@10", "seconds_per_query", "model_card"):
        assert column in header, column
    run = page.locator("#board tbody tr[data-kind='reproduced'] td.system a.sysname").first.get_attribute("href")
    page.goto(f"{served}/{run}")
    href = page.locator("a[download]").first.get_attribute("href")
    record = page.evaluate("async href => (await fetch(href)).json()", href)
    assert record["schema_version"] == 2
    assert not problems, problems


def test_traces_load_on_demand_as_text(browser, served, site):
    page, problems = _page(browser, 1280)
    explorer = _run_dir(site, "tiny__run-first_stage.trec__reasonrank").name
    page.goto(f"{served}/runs/{explorer}/subset-tiny.html")
    details = page.locator("details.traces").first
    assert "Loading" in details.inner_text() or not details.evaluate("d => d.open")
    details.locator("summary").click()
    page.wait_for_function("() => document.querySelector('details.traces pre.reasoning') !== null")
    text = details.locator("pre.reasoning").first.text_content()
    assert XSS in text and "<b>bold</b>" in text  # the raw text, shown as text
    assert details.locator("script, b").count() == 0  # … never as markup
    assert not problems, problems


def test_chart_labels_do_not_collide(browser, served):
    page, problems = _page(browser, 1280)
    page.goto(f"{served}/board-bright.html")
    boxes = page.evaluate("""() => Array.from(document.querySelectorAll('.chart text.pt-label')).map(t => {
        const b = t.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; })""")
    assert len(boxes) >= 2
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    assert not problems, problems


def test_sorting_by_clicking_headers(browser, served):
    page, problems = _page(browser, 1280)
    page.goto(f"{served}/board-bright.html?kind=reproduced")
    page.click("#board thead th[data-sort='average']")
    values = [float(v) for v in page.eval_on_selector_all(
        "#board tbody tr td.avg", "cells => cells.map(c => c.dataset.value).filter(v => v !== '')")]
    assert len(values) >= 4 and values == sorted(values, reverse=True)
    page.click("#board thead th[data-sort='average']")
    values = [float(v) for v in page.eval_on_selector_all(
        "#board tbody tr td.avg", "cells => cells.map(c => c.dataset.value).filter(v => v !== '')")]
    assert values == sorted(values)
    assert not problems, problems


# ---------------------------------------------------------------------------------------------------------------------
# the leaderboard issue's observations, each reproduced
# ---------------------------------------------------------------------------------------------------------------------

def test_partial_coverage_is_never_a_green_badge(site):
    html = (site / "board-bright.html").read_text()
    row = html[html.index('data-key="bright__reasonir-published__rankzephyr'):]
    row = row[:row.index("</tr>")]
    assert "PARTIAL 3/12" in row and "grade-ok" not in row and "grade-partial" in row  # observation 1


def test_paper_rows_are_shown_apart_and_never_ranked(site):
    html = (site / "board-bright.html").read_text()
    rows = re.findall(r'<tr data-first-stage="[^"]*"[^>]*data-kind="reported"[^>]*>(.*?)</tr>', html, re.DOTALL)
    assert len(rows) >= 10  # ReasonRank Table 1 rows, incl. rerankers the harness cannot run (Rank-K, RankT5)
    text = " ".join(rows)
    assert "Rank-K" in text or "rank-k" in text
    assert "paper, not reproduced" in text and "https://arxiv.org/abs/2508.07050v3" in text
    assert "rankgroup" not in text  # never in a rank group
    assert ">run:" not in html and "hybrid_BM25_Rader.json (per-subset files)" in html  # readable names


def test_first_stage_names_are_readable_and_model_cards_shown(site):
    html = (site / "board-bright.html").read_text()
    assert "ReasonIR-8B (published run)" in html and "reasonir-published</td>" not in html
    tiny = (site / "board-tiny.html").read_text()
    assert re.search(r"first_stage\.trec · [0-9a-f]{7}<", tiny)  # run: file = [folder/]file · short sha
    assert "32.8B · Qwen2.5-32B-Instruct" in html  # the card of liuwenhan/reasonrank-32B, not a name parse
    assert 'value="32.8B"' in html


def test_rank_groups_are_computed_within_each_first_stage(tmp_path):
    from records_fixture import BRIGHT, REASONIR, REASONRANK_7B, write_board_records

    results = tmp_path / "results"
    write_board_records(results, benchmark="bright", subsets=BRIGHT, targets=REASONRANK_7B,
                        first_stage="reasonir-published", reranker="none", queries=6, seed=1)
    write_board_records(results, benchmark="bright", subsets=BRIGHT, targets=REASONIR, first_stage="bm25",
                        reranker="none", queries=6, seed=2)
    index = build(results, tmp_path / "out", n_resamples=200, reported=False)
    html = (index.parent / "board-bright.html").read_text()
    assert html.count(">leader<") == 2  # one leader per first stage: rows on other candidates are not compared
    assert html.count('class="rankgroup rg-0">1<') == 2


def test_explorer_pages_stay_small_with_long_traces(tmp_path):
    """Observation 10: traces are written one script per query, the page itself does not grow with them."""
    results = tmp_path / "results"
    dirs = write_tiny_records(results)
    traces = dirs["reasonrank"] / "traces.jsonl"
    import json

    lines = [json.loads(line) for line in traces.read_text().splitlines()]
    for line in lines:
        line["response"] = "reasoning " * 50_000
    traces.write_text("".join(json.dumps(line) + "\n" for line in lines))
    index = build(results, tmp_path / "out", n_resamples=200, boards=["tiny"])
    page = _run_dir(index.parent, "tiny__run-first_stage.trec__reasonrank") / "subset-tiny.html"
    assert page.stat().st_size < 40_000, page.stat().st_size


def test_rebuilds_leave_nothing_stale_and_releases_persist(tmp_path):
    """Observation 7: rebuilding into the same output removes boards and run pages of removed runs."""
    import json

    results = tmp_path / "results"
    dirs = write_tiny_records(results)
    out, releases = tmp_path / "www", tmp_path / "releases"
    build(results, out, n_resamples=200, boards=["tiny"], releases_dir=releases, release="2026-12-01")
    gone = dirs["oracle"].parent
    assert (out / "runs" / gone.name / "index.html").is_file()
    shutil.rmtree(gone)
    build(results, out, n_resamples=200, boards=["tiny"], releases_dir=releases, release="2026-12-03")
    assert not (out / "runs" / gone.name).exists() and gone.name not in (out / "board-tiny.html").read_text()
    assert sorted(p.name for p in (out / "releases").iterdir()) == ["2026-12-01", "2026-12-03", "index.html",
                                                                    "latest"]
    latest = json.loads((out / "releases" / "latest" / "board-tiny.json").read_text())
    assert gone.name not in {r["id"] for r in latest["rows"]}
    first = json.loads((out / "releases" / "2026-12-01" / "board-tiny.json").read_text())
    assert gone.name in {r["id"] for r in first["rows"]}  # an old release is kept as it was published
    footer = (out / "index.html").read_text()
    assert "Built " in footer and "claims files sha256 " in footer and "harness " in footer


def test_model_cards_cover_every_built_in_default_model():
    from harness.model_cards import CARDS, card_for
    from rerankers import RERANKERS

    for name in RERANKERS:
        model = RERANKERS.get(name)().resolve({}).get("model")
        if model:
            assert str(model).lower() in CARDS, (name, model)
    assert card_for("some/dir/my-checkpoint").size == "n/a"  # a local directory: unknown, never guessed
    assert card_for("org/Model-7B").size == "7B" and card_for("smollm2-135m").size == "135M"
    assert card_for("x/y", {"parameters_b": 1.5, "trained_on_bright": "no"}).trained_on_bright == "no"
    with pytest.raises(HarnessError, match="trained_on_bright"):
        card_for("x/y", {"trained_on_bright": "maybe"})


def test_results_workflow_and_pr_template_run_real_commands():
    import yaml

    root = Path(__file__).resolve().parent.parent
    workflow = yaml.safe_load((root / ".github" / "workflows" / "results.yml").read_text())
    script = "\n".join(step.get("run", "") for step in workflow["jobs"]["validate"]["steps"])
    for command in ("harness submit validate", "--require-traces", "harness verify --results results/board",
                    "harness site build --results results/board"):
        assert command in script, command
    assert "harness submit add" in (root / ".github" / "pull_request_template.md").read_text()
