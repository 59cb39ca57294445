"""Benchmark: how long the CLI takes to start, beside ``python -c "import torch"``, in one run.

    .venv/bin/pytest tests/bench_cli.py --benchmark-enable --benchmark-only

Each round is a fresh interpreter, so the numbers include Python's start-up and every import, as a user sees
them. ``genbench show`` reads a tiny run that the module makes first (the independent model, nll only). The
rounds of every command alternate with untimed runs of ``import torch`` (pedantic's setup), and the ratio of
the two medians, measured under the same load, is printed and stored in extra_info as ``ratio_to_import_torch``
(the goal: at most 1.5). On a shared machine the ratios are steadier than the times.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROUNDS = 5
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


COMMANDS = {
    "import torch": None,
    "genbench --help": ["--help"],
    "genbench plugins": ["plugins"],
    "genbench show": ["show", "TINY_RUN"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_bench_cli_start(benchmark: Any, capsys: pytest.CaptureFixture[str], name: str, tiny_run: Path) -> None:
    args = COMMANDS[name]
    command = IMPORT_TORCH if args is None else [*GENBENCH, *(str(tiny_run) if a == "TINY_RUN" else a for a in args)]
    torch_seconds: list[float] = []

    def time_import_torch() -> None:
        """Before every round, untimed by the benchmark: ``import torch`` alone, for a ratio on the same load."""
        start = time.perf_counter()
        run_quietly(IMPORT_TORCH, tiny_run.parent)
        torch_seconds.append(time.perf_counter() - start)

    benchmark.group = "CLI start-up (fresh interpreter)"
    benchmark.pedantic(
        run_quietly, args=(command, tiny_run.parent), setup=time_import_torch, rounds=ROUNDS, warmup_rounds=1
    )
    ratio = benchmark.stats.stats.median / statistics.median(torch_seconds)
    benchmark.extra_info["import_torch_median_s"] = statistics.median(torch_seconds)
    benchmark.extra_info["ratio_to_import_torch"] = ratio
    with capsys.disabled():
        print(
            f"\n{name}: median {benchmark.stats.stats.median:.3f} s, import torch (interleaved) "
            f"{statistics.median(torch_seconds):.3f} s, ratio {ratio:.2f}"
        )
