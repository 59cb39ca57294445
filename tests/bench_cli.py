"""Benchmark: how long the CLI takes to start, beside ``python -c "import torch"``, in one run.

    .venv/bin/pytest tests/bench_cli.py --benchmark-enable --benchmark-only

Each round is a fresh interpreter, so the numbers include Python's start-up and every import, as a user sees
them. ``genbench show`` reads a tiny run that the module makes first (the independent model, nll only). The
median of each command over the median of ``import torch`` is printed at the end and stored in the benchmark's
extra_info as ``ratio_to_import_torch`` (issue 8's goal: at most 1.5).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROUNDS = 7
GENBENCH = [sys.executable, "-m", "genbench.cli"]
IMPORT_TORCH = [sys.executable, "-c", "import torch"]


def run_quietly(command: list[str], cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bench-cli")
    args = ["run", "--models", "independent", "--metrics", "nll", "--epochs", "1", "--name", "tiny"]
    run_quietly([*GENBENCH, *args, "--results-dir", str(folder)], folder)
    return folder / "tiny"


@pytest.fixture(scope="module")
def ratios(request: pytest.FixtureRequest, tiny_run: Path) -> Iterator[dict[str, float]]:
    """Filled by the benchmarks with each command's median; printed, as ratios to import torch, at the end."""
    medians: dict[str, float] = {}
    yield medians
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    torch_median = medians.get("import torch")
    if reporter is None or not torch_median:
        return
    reporter.write_line("")
    for name, median in medians.items():
        reporter.write_line(
            f"bench_cli: {name:<20} median {median:6.3f} s   {median / torch_median:4.2f}x import torch"
        )


COMMANDS = {
    "import torch": None,
    "genbench --help": ["--help"],
    "genbench plugins": ["plugins"],
    "genbench show": ["show", "TINY_RUN"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_bench_cli_start(benchmark: Any, name: str, tiny_run: Path, ratios: dict[str, float]) -> None:
    args = COMMANDS[name]
    command = IMPORT_TORCH if args is None else [*GENBENCH, *(str(tiny_run) if a == "TINY_RUN" else a for a in args)]
    benchmark.group = "CLI start-up (fresh interpreter)"
    benchmark.pedantic(run_quietly, args=(command, tiny_run.parent), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    ratios[name] = benchmark.stats.stats.median
    if "import torch" in ratios:
        benchmark.extra_info["ratio_to_import_torch"] = ratios[name] / ratios["import torch"]
