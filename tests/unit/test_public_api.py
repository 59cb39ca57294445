"""Plugins use the public API only: ``genbench`` itself, ``genbench.toolkit.*`` and, in tests, ``genbench.testing``.

Every other module of genbench is internal and may move; a built-in plugin or an example that reached into one
would break the day it moves, and would teach third-party authors to do the same. Old module names that
earlier releases documented still work, through an alias that warns.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import genbench
from genbench._moved import MOVED_MODULES, GenbenchDeprecationWarning

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_MODULES = ("genbench", "genbench.toolkit", "genbench.testing")


def is_public(module: str) -> bool:
    return (
        module == "genbench"
        or any(module.startswith(prefix + ".") for prefix in PUBLIC_MODULES[1:])
        or (module in PUBLIC_MODULES)
    )


def genbench_imports(path: Path) -> list[tuple[int, str]]:
    """(line, what) for every import of genbench in a file: modules, and names taken from ``genbench``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "genbench"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "genbench":
            if node.module == "genbench":
                found += [(node.lineno, f"genbench.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def private_imports(path: Path) -> list[str]:
    wrong = []
    for line, what in genbench_imports(path):
        top_level_name = what.removeprefix("genbench.")
        if what == "genbench" or is_public(what):
            continue
        if what.count(".") == 1 and (top_level_name in genbench.__all__ or top_level_name in ("toolkit", "testing")):
            continue
        wrong.append(f"{path.relative_to(ROOT)}:{line} imports {what}")
    return wrong


PLUGIN_FILES = sorted([*(ROOT / "plugins").rglob("*.py"), *(ROOT / "examples").rglob("*.py")])


def test_built_in_plugins_and_examples_import_only_the_public_api() -> None:
    assert PLUGIN_FILES, "no plugin sources found"
    wrong = [line for path in PLUGIN_FILES for line in private_imports(path)]
    assert wrong == []


def test_the_check_catches_an_internal_import(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin.py"
    plugin.write_text("from genbench.registry import load_plugins\nfrom genbench import hookimpl, RunRequest\n")
    wrong = [
        what
        for _, what in genbench_imports(plugin)
        if not (is_public(what) or what.removeprefix("genbench.") in genbench.__all__)
    ]
    assert wrong == ["genbench.registry", "genbench.RunRequest"]


def test_every_public_name_resolves() -> None:
    for name in genbench.__all__:
        assert getattr(genbench, name) is not None, name


@pytest.mark.slow
def test_importing_genbench_loads_the_contract_not_the_runner() -> None:
    probe = "import sys, genbench; print(sorted(m for m in sys.modules if m.startswith('genbench')))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    loaded = ast.literal_eval(result.stdout.strip())
    assert not [
        m for m in loaded if m.startswith(("genbench.runner", "genbench.api", "genbench.report", "genbench.store"))
    ]
    assert "genbench.contract" in loaded


@pytest.mark.slow
def test_old_module_names_still_import_with_a_warning() -> None:
    """In a fresh interpreter, so that no earlier import has put the old names in sys.modules already."""
    probe = (
        "import importlib, json, sys, warnings\n"
        "warnings.simplefilter('always')\n"
        "found = {}\n"
        "for old in json.loads(sys.argv[1]):\n"
        "    with warnings.catch_warnings(record=True) as caught:\n"
        "        module = importlib.import_module(old)\n"
        "    found[old] = [module.__name__, [str(w.message) for w in caught if 'has moved' in str(w.message)]]\n"
        "print(json.dumps(found))\n"
    )
    olds = sorted(MOVED_MODULES)
    result = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(olds)], capture_output=True, text=True, timeout=300, check=True
    )
    found = json.loads(result.stdout.splitlines()[-1])
    for old in olds:
        name, messages = found[old]
        assert name == MOVED_MODULES[old]
        assert len(messages) == 1 and old in messages[0] and MOVED_MODULES[old] in messages[0]


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("genbench.training", "train_epochs"),
        ("genbench.validation", "require_at_least"),
        ("genbench.features", "generated_features"),
        ("genbench.data", "make_dataset"),
        ("genbench.plugins", "load_plugins"),
        ("genbench.workers", "run_task"),
        ("genbench.types", "ModelSpec"),
        ("genbench.executors", "ExecutorSpec"),
    ],
)
def test_the_imports_earlier_docs_showed_still_resolve(module: str, name: str) -> None:
    sys.modules.pop(module, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = getattr(importlib.import_module(module), name)
    assert callable(found)
    assert any(issubclass(w.category, GenbenchDeprecationWarning) for w in caught)


def test_old_registry_accessors_warn_and_work() -> None:
    from genbench.testing import MODEL, load_plugins

    registry = load_plugins()
    with pytest.warns(DeprecationWarning, match=r"registry.get\(MODEL, name\)"):
        spec = registry.model("independent")
    assert spec is registry.get(MODEL, "independent")
