"""examples/genbench-made, a third-party distribution: installed from its folder without network into a folder of
its own, it is found through its entry point, passes its own conformance tests and runs beside a built-in."""

from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

EXAMPLE = REPO / "examples" / "genbench-made"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """The environment of a Python that has genbench-made installed (its dist-info on PYTHONPATH), and the copy of
    the example it was built from."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    # Built from a copy: setuptools builds in the source folder, and the test must leave the repository as it was.
    source = shutil.copytree(
        EXAMPLE, build / "genbench-made", ignore=shutil.ignore_patterns("build", "*.egg-info", ".*")
    )
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-build-isolation", "-q"]
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "TMPDIR": str(build)}
    subprocess.run([*pip, "--target", str(target), str(source)], check=True, env=env, timeout=300)
    assert list(target.glob("genbench_made-*.dist-info"))
    return {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}, Path(source)


@pytest.mark.slow
def test_installed_made_runs_beside_a_built_in(installed: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env = installed[0]
    listing = subprocess.run(
        [sys.executable, "-m", "genbench.cli", "plugins"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert any(line.startswith("made ") and "genbench-made 0.1.0" in line for line in listing.splitlines())
    run = [sys.executable, "-m", "genbench.cli", "run", "--models", "made,independent", "--metrics", "nll,bpd"]
    options = ["--epochs", "1", "--results-dir", str(tmp_path), "--name", "made"]
    result = subprocess.run([*run, *options], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    with (tmp_path / "made" / "results.csv").open() as table:
        rows = {row["model"]: row for row in csv.DictReader(table)}
    assert rows["made"]["status"] == "ok" and rows["independent"]["status"] == "ok"
    nll = float(rows["made"]["nll"])
    # One epoch from scratch: finite, and below the uniform model's 64 ln 17 = 181.3 nats on the 8x8 digits.
    assert math.isfinite(nll) and nll < 64 * math.log(17)


@pytest.mark.slow
def test_its_own_conformance_tests_pass(installed: tuple[dict[str, str], Path]) -> None:
    env, copy = installed
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", "-p", "no:benchmark"],
        capture_output=True,
        text=True,
        env=env,
        cwd=copy,  # its own pyproject.toml configures pytest; the repository is left untouched
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
