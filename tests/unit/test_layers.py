"""The package's layers hold (README, "How the code is organised"), and the check catches a module that breaks them.

The contract is import-linter's, in pyproject.toml; ``tox -e lint`` runs it as ``lint-imports``. Here it runs on
the real tree, and on a copy where one low layer imports the runner, which must be refused by name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

LINT_IMPORTS_MISSING = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (pip install -e .[dev])"
)


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "genbench", tmp_path / "genbench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@LINT_IMPORTS_MISSING
def test_the_layers_are_kept(tmp_path: Path) -> None:
    result = lint_imports(copy_of_the_package(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@LINT_IMPORTS_MISSING
def test_an_upward_import_breaks_the_layers(tmp_path: Path) -> None:
    tree = copy_of_the_package(tmp_path)
    toolkit_text = tree / "genbench" / "toolkit" / "text.py"
    toolkit_text.write_text(toolkit_text.read_text() + "\nfrom genbench.runner import prepare  # upward\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "genbench.toolkit is not allowed to import genbench.runner" in result.stdout


def test_every_package_of_genbench_is_in_the_wheel() -> None:
    """pyproject.toml lists the packages a wheel holds; a package folder left out works in an editable install
    and is missing from every real one."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "genbench").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert folders - listed == set()
