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
                  n_resamples=2000)
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
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;bold&lt;/b&gt;" in html
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
                                   "--resamples", "200"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "www" / "board-tiny.html").is_file() and "site written to" in out.output


def test_missing_templates_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_SITE_TEMPLATES", str(tmp_path))
    with pytest.raises(HarnessError, match="HARNESS_SITE_TEMPLATES"):
        build(tmp_path, tmp_path / "out")


# ---------------------------------------------------------------------------------------------------------------------
# headless Chromium
# ---------------------------------------------------------------------------------------------------------------------

def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium binary found (install the Debian package: apt-get install -y chromium); "
                "browser checks of the leaderboard skipped")


def _browse(url: str, *extra: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--enable-logging=stderr", "--v=0", *extra, url],
            capture_output=True, text=True, timeout=90)


def _console_problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if "CONSOLE" in line and ("Uncaught" in line or "Error" in line or "error" in line)]


def test_browser_screenshot_and_no_console_errors(site, tmp_path):
    shot = tmp_path / "board.png"
    result = _browse((site / "board-bright.html").as_uri(), f"--screenshot={shot}", "--window-size=1600,1200")
    assert shot.is_file() and shot.stat().st_size > 10_000, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("HARNESS_TEST_ARTIFACTS")  # e.g. CI uploads the screenshot for a human to look at
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(keep) / "leaderboard-bright.png")
    assert not _console_problems(result.stderr), _console_problems(result.stderr)
    explorer = _run_dir(site, "tiny__run-first_stage.trec__reasonrank") / "subset-tiny.html"
    result = _browse(explorer.as_uri(), "--dump-dom")
    assert not _console_problems(result.stderr), _console_problems(result.stderr)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in result.stdout  # the live DOM holds text, not a script


def _first_column_order(dom: str, attr: str = "data-key") -> list[str]:
    body = dom[dom.index("<tbody>"):dom.index("</tbody>")]
    return re.findall(rf'<tr[^>]*{attr}="([^"]+)"', body)


def _averages(dom: str) -> list[float]:
    body = dom[dom.index("<tbody>"):dom.index("</tbody>")]
    return [float(v) for v in re.findall(r'<td class="num avg" data-value="([0-9.]+)"', body)]


def test_browser_sorting_and_filtering(site):
    page = (site / "board-bright.html").as_uri()
    # a user clicking "Avg" once: numeric columns sort descending first; twice: ascending
    once = _browse(page + "?click=average", "--dump-dom")
    twice = _browse(page + "?click=average&click=average", "--dump-dom")
    assert not _console_problems(once.stderr + twice.stderr)
    desc, asc = _averages(once.stdout), _averages(twice.stdout)
    assert len(desc) >= 4 and desc == sorted(desc, reverse=True) and asc == sorted(asc)
    assert 'aria-sort="ascending"' in twice.stdout
    by_spq = _browse(page + "?sort=spq&dir=asc", "--dump-dom").stdout
    order = _first_column_order(by_spq)
    assert order[0].startswith("bright__reasonir-published__none")  # 0 s/query first
    filtered = _browse(page + "?size=32B", "--dump-dom").stdout
    body = filtered[filtered.index("<tbody>"):filtered.index("</tbody>")]
    visible = [k for k in re.findall(r'<tr ([^>]*)>', body) if "hidden" not in k]
    assert len(visible) == 1 and "32B" in visible[0]
