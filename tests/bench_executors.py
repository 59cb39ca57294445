"""Benchmark: the wall time of a grid of 8 small cells under the serial executor and under local --jobs 2.

    .venv/bin/pytest tests/bench_executors.py --benchmark-enable --benchmark-only

The grid is the baseline and the VAE, seeds 0-3, 2 epochs, nll and bpd, on the digits: 8 cells of a few seconds
each on one core, run through ``genbench.run`` in this process (so the serial rounds pay no Python start-up,
and each local round pays its two workers' start). Each round gets a run folder of its own, so no cell is
reused. On a machine with two free cores the local rounds should take about half as long; on a busy one, less
gain (see BENCHMARKS.md, and benchmarks/executors.py for the default cells and the GPU).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

import genbench

GRID: dict[str, Any] = {"models": ["independent", "vae"], "seeds": [0, 1, 2, 3], "epochs": 2, "metrics": ["nll", "bpd"]}
ROUNDS = 3


@pytest.mark.parametrize("executor", ["serial", "local"])
def test_grid_of_8_cells(benchmark: Any, tmp_path: Path, executor: str) -> None:
    options = {"jobs": 2} if executor == "local" else {}
    rounds = itertools.count()

    def run_grid() -> Any:
        return genbench.run(
            **GRID, results_dir=tmp_path, name=f"round{next(rounds)}", executor=executor, executor_options=options
        )

    frame = benchmark.pedantic(run_grid, rounds=ROUNDS, iterations=1)
    assert len(frame) == 8 and (frame["status"] == "ok").all()
