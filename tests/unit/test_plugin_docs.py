"""docs/plugins.md: its examples run as written, and its hook reference matches the docstrings of hookspecs.py.

Every code block whose fence names a file (```python genbench_docs_NAME.py) is written to a folder and loaded
with -p; a block added for a new kind of plugin (the executor) is picked up and loaded without editing this file.
"""

from __future__ import annotations

import csv
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from genbench.registry import load_plugins
from genbench.testing import FAIL, PASS, checks_for

DOC = REPO / "docs" / "plugins.md"
FILE_BLOCK = re.compile(r"^```python (genbench_docs_\w+)\.py\n(.*?)^```", re.MULTILINE | re.DOTALL)
REGENERATE = "python scripts/hook_reference.py --write"


def example_modules() -> dict[str, str]:
    return {name: code for name, code in FILE_BLOCK.findall(DOC.read_text(encoding="utf-8"))}


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs_examples")
    for name, code in example_modules().items():
        (folder / f"{name}.py").write_text(code, encoding="utf-8")
    return folder


def test_the_page_has_an_example_of_each_kind() -> None:
    kinds = {"model", "tempered", "data", "extractor", "metric"}
    assert {f"genbench_docs_{kind}" for kind in kinds} <= set(example_modules())


@pytest.mark.slow
def test_the_examples_run_with_genbench_run(examples: Path, tmp_path: Path) -> None:
    modules = [arg for name in example_modules() for arg in ("-p", name)]
    command = [sys.executable, "-m", "genbench.cli", "run", *modules, "--dataset", "docs_stripes"]
    command += ["--models", "docs_mixture,docs_tempered,independent", "--metrics", "nll,bpd,mean_gap", "--epochs", "2"]
    command += ["--sample-option", "docs_tempered.temperature=0.5,1", "--results-dir", str(tmp_path), "--name", "docs"]
    env = {**os.environ, "PYTHONPATH": str(examples), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    with (tmp_path / "docs" / "results.csv").open() as table:
        rows = {row["model"] + row["sample_options"]: row for row in csv.DictReader(table)}
    assert set(rows) == {"docs_mixture", "docs_temperedtemperature=0.5", "docs_temperedtemperature=1.0", "independent"}
    # Two temperatures of one trained model: one checkpoint, the same bound, both labelled as bounds.
    tempered = [rows["docs_temperedtemperature=0.5"], rows["docs_temperedtemperature=1.0"]]
    assert tempered[0]["nll"] == tempered[1]["nll"]
    assert len(list((tmp_path / "docs" / "checkpoints").glob("*.safetensors"))) == 3
    assert "(bound)" in (tmp_path / "docs" / "leaderboard.md").read_text()
    for row in rows.values():
        assert row["status"] == "ok"
        values = {column: float(row[column]) for column in ("nll", "bpd", "mean_gap")}
        assert all(math.isfinite(value) and value >= 0 for value in values.values())
    # Uniform over 4 levels is exactly 2 bits/dim; both models learned something in two epochs.
    assert float(rows["docs_mixture"]["bpd"]) < 2.0 and float(rows["independent"]["bpd"]) < 2.0


def test_the_examples_pass_the_conformance_checks(
    examples: Path, monkeypatch: pytest.MonkeyPatch, shared_cache: Path
) -> None:
    monkeypatch.syspath_prepend(str(examples))
    registry = load_plugins(list(example_modules()), autoload=True)
    for name in ("docs_mixture", "docs_tempered", "docs_stripes", "docs_pixels", "mean_gap"):
        outcomes = [check.outcome() for check in checks_for(name, registry, cache_dir=shared_cache)]
        assert not [o.line() for o in outcomes if o.status == FAIL]
        assert any(o.status == PASS for o in outcomes)


def test_the_hook_reference_matches_the_docstrings() -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import hook_reference
    finally:
        sys.path.remove(str(REPO / "scripts"))
    from genbench.contract import hookspecs

    document = DOC.read_text(encoding="utf-8")
    expected = hook_reference.replaced(document, hook_reference.hook_section(hookspecs))
    assert document == expected, f"docs/plugins.md's hook reference is out of date; regenerate it: {REGENERATE}"
    for name, _, _ in hook_reference.hook_functions(hookspecs):
        assert f"### `{name}(" in document


def test_the_generator_lists_any_hook_with_its_options_and_parameters() -> None:
    """Hooks added later (an executor hook, a firstresult hook with arguments) need no change to the generator."""
    import types

    import pluggy

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import hook_reference
    finally:
        sys.path.remove(str(REPO / "scripts"))
    spec = pluggy.HookspecMarker("genbench")
    source = (
        "def genbench_pick(name: str, count: int = 2) -> str | None:\n    'Pick one.\\n\\nMore words.'\n"
        "def genbench_models() -> list:\n    'Models.'\n"
        "def helper() -> None:\n    'Not a hook.'\n"
    )
    module = types.ModuleType("fake_hookspecs")
    exec(compile(source, "<fake hookspecs>", "exec"), module.__dict__)
    spec(firstresult=True)(module.genbench_pick)
    spec(module.genbench_models)
    section = hook_reference.hook_section(module)
    assert "### `genbench_pick(name: str, count: int = 2) -> str | None`" in section
    assert "*firstresult*: the first non-None answer wins." in section and "Pick one.\n\nMore words." in section
    assert "### `genbench_models() -> list`" in section and "helper" not in section
