"""The CLI starts at once: commands that only list, parse or read import none of the heavy libraries.

Every plugin module is imported by entry-point loading when ``genbench`` starts, so one top-level
``import torchvision`` (or pandas, scikit-learn, ...) in any of them, or in a core module the CLI imports,
slows every command down. These tests run the commands in a fresh interpreter and look at ``sys.modules``;
they time nothing (tests/bench_cli.py measures the start-up time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HEAVY, TESTS

PROBE = """
import sys, json
import genbench.cli
try:
    code = genbench.cli.main(json.loads(sys.argv[1]))
except SystemExit as exit:  # argparse's --help exits after printing
    code = exit.code
print(json.dumps({"code": code, "heavy": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)}))
"""


def imported_heavy_modules(args: list[str], cwd: Path, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    """The heavy modules present after ``genbench ARGS`` ran in a new interpreter (the command must succeed)."""
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(heavy)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["code"] in (0, 2), result.stdout  # --help without a command prints help and exits 2
    modules: list[str] = answer["heavy"]
    return modules


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--help"], [], ["plugins"]], ids=["--help", "no-command", "plugins"])
def test_listing_commands_import_no_heavy_library(args: list[str], tmp_path: Path) -> None:
    assert imported_heavy_modules(args, tmp_path) == []


@pytest.mark.slow
def test_show_imports_only_pandas(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "cells").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"cells": [], "columns": ["nll"]}))
    modules = imported_heavy_modules(["show", str(run)], tmp_path)
    assert modules == ["pandas"]


@pytest.mark.slow
def test_plugin_modules_import_no_heavy_library_when_loaded(tmp_path: Path) -> None:
    """Loading every installed plugin (entry points) imports none of them; each hook only describes."""
    probe = (
        "import sys, json\n"
        "from genbench.registry import load_plugins\n"
        "registry = load_plugins()\n"
        "assert not registry.broken, registry.broken\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []
