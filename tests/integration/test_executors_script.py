"""benchmarks/executors.py runs end to end on the CPU with --quick (its timings are not checked, its table is)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


@pytest.mark.slow
def test_executors_benchmark_script_prints_its_table_on_the_cpu(tmp_path: Path) -> None:
    args = ["--quick", "--device", "cpu", "--cells", "2", "--out", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "executors.py"), *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("device: CPU")
    rows = [line.split(" | ")[:3] for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == [
        ["| one cell", "serial", "1"],
        ["| 2 cells", "serial", "2"],
        ["| 2 cells", "--executor local --jobs 2", "2"],
    ]
    assert "metric values, local against serial: identical (1 metric columns x 2 cells)" in result.stdout
    assert (tmp_path / "executors.md").read_text().strip() == result.stdout.strip()
