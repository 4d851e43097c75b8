"""Every `harness ...` command in the README is exercised: quick-start commands run for real (offline, CPU);
the GPU / network examples are parsed by the real CLI so their commands and options cannot drift."""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(text: str) -> list[str]:
    lines, out = [], []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        lines += block.replace("\\\n", " ").splitlines()
    for line in lines:
        line = line.strip()
        line = re.sub(r"^\.venv/bin/", "", line)
        if line.startswith("harness "):
            out.append(line.split("  #")[0].split(" # ")[0].strip())
    return out


def _quick_start() -> str:
    return README.split("## Quick start", 1)[1].split("\n## ", 1)[0]


def test_readme_install_and_test_commands_are_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -c constraints.txt -e ".[dev]"' in _quick_start()
    assert 'pip install -q -c constraints.txt -e ".[dev]"' in ci
    assert ".venv/bin/python -m pytest -q" in _quick_start() and ".venv/bin/python -m pytest -q" in ci


def test_quick_start_commands_run(tmp_path):
    commands = _commands(_quick_start())
    assert len(commands) >= 3
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for command in commands:
        args = shlex.split(command)[1:]
        if "<group>" in command:
            [run_file] = glob.glob(str(tmp_path / "results" / "*" / "tiny" / "run.trec"))[:1]
            args = [run_file if "<group>" in a else a for a in args]
        done = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (command, done.stderr)
        if "--json" in args:
            assert "nDCG@10" in json.loads(done.stdout)


def _parse(app: typer.Typer, args: list[str]) -> None:
    command = typer.main.get_command(app)
    ctx = command.make_context("harness", list(args), resilient_parsing=False)
    while hasattr(ctx.command, "get_command"):  # a command group (typer vendors its own click)
        pending = list(getattr(ctx, "_protected_args", None) or getattr(ctx, "protected_args", None) or []) + ctx.args
        if not pending:
            break
        name, *rest = pending
        sub = ctx.command.get_command(ctx, name)
        assert sub is not None, f"README names an unknown command: {name}"
        ctx = sub.make_context(name, rest, parent=ctx, resilient_parsing=False)


@pytest.mark.parametrize("command", _commands(README))
def test_every_readme_command_parses(command):
    from harness.cli import app

    _parse(app, shlex.split(command)[1:])


@pytest.mark.parametrize("bad", [["run", "--task", "x", "--bogus"], ["nosuch"], ["train", "sft", "--nope"]])
def test_the_parser_check_catches_unknown_commands_and_options(bad):
    from harness.cli import app

    with pytest.raises(Exception) as caught:
        _parse(app, bad)
    assert isinstance(caught.value, AssertionError) or type(caught.value).__name__ in ("NoSuchOption", "UsageError")
