"""benchmarks/gpu.py runs end to end on the CPU with its smallest settings (the numbers are not checked)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_gpu_benchmark_script_prints_its_table_on_the_cpu() -> None:
    args = ["--quick", "--device", "cpu", "--models", "vae", "--budget", "0.01", "--no-default-run"]
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu.py"), *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("device: CPU")
    rows = [line.split(" | ")[:2] for line in result.stdout.splitlines() if line.startswith("| vae")]
    assert [measurement for _, measurement in rows] == [
        "training",
        "sampling, batch 1",
        "sampling, batch 64",
        "likelihood",
    ]
    assert "| fid | classifier features |" in result.stdout
