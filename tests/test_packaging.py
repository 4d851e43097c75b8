"""The installed wheel is complete: built with pip, installed into a fresh virtual environment outside the repository,
it runs a benchmark, builds the site and verifies claims from there (templates, static files, claims and the tiny
task travel with it)."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repository(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps",
                            str(ROOT), "-w", str(wheels)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    [wheel] = wheels.glob("harness-*.whl")

    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    # The dependencies come from this test's environment (appended after the fresh site-packages, whose .pth files
    # are not processed: the repository's editable install stays out of the fresh environment).
    fresh_site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                     capture_output=True, text=True, check=True).stdout.strip())
    deps = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]] if Path(p).is_dir()]
    (fresh_site / "zz_harness_test_deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HARNESS_SITE_TEMPLATES")}
    where = subprocess.run([str(python), "-c", "import harness; print(harness.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # the wheel's copy, not the repository's

    harness = venv / "bin" / "harness"

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(harness), *args], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    run("run", "--task", "tiny", "--reranker", "oracle", "-q")
    [record] = (work / "results").glob("*/tiny/record.json")
    assert json.loads(record.read_text())["metrics"]["nDCG@10"] == 1.0
    run("site", "build", "--results", "results", "--out", "_site", "--resamples", "200")
    assert (work / "_site" / "index.html").is_file() and (work / "_site" / "static" / "site.css").is_file()
    verified = run("verify", "--results", "results")
    assert "summary:" in verified.stdout and "reasonrank-t1-reasonrank-7b" in verified.stdout
