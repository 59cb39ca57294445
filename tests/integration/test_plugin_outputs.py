"""What a model plugin returns is checked by the runner: a broken output fails its cell with one sentence, the
run goes on, and nothing that cell measured reaches results.csv or the leaderboard. Also: every metric's seconds
are recorded, and results.csv sums them as eval_time."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import genbench
from bad_model_plugins import EXPECTED_ERRORS
from conftest import TESTS
from genbench.store.layout import RunDirectory

#: sample_time first: the cells that break a likelihood have measured it when they fail.
METRICS = ["sample_time", "nll", "bpd"]


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """One run of the uniform baseline beside every broken model."""
    results = tmp_path_factory.mktemp("bad-run")
    models = ["independent", *EXPECTED_ERRORS]
    return genbench.run(models, dataset="digits", metrics=METRICS, plugins=["bad_model_plugins"], results_dir=results)


@pytest.mark.parametrize("model", list(EXPECTED_ERRORS))
def test_a_broken_output_fails_its_cell_with_one_sentence(bad_run: pd.DataFrame, model: str) -> None:
    row = bad_run.set_index("model").loc[model]
    assert row["status"] == "failed"
    assert row["error"].startswith(EXPECTED_ERRORS[model]), row["error"]
    assert "\n" not in row["error"]


def test_the_other_cells_are_measured_as_before(bad_run: pd.DataFrame) -> None:
    independent = bad_run.set_index("model").loc["independent"]
    assert independent["status"] == "ok" and independent["error"] == ""
    assert all(math.isfinite(independent[column]) for column in METRICS)


def test_nothing_a_failed_cell_measured_reaches_the_table(bad_run: pd.DataFrame) -> None:
    run_dir = Path(bad_run.attrs["run_dir"])
    written = pd.read_csv(run_dir / "results.csv")
    failed = written[written["model"] != "independent"]
    assert failed[METRICS].isna().all().all()
    # The record keeps what was measured before the broken output, for whoever debugs the plugin.
    positive = RunDirectory(run_dir).read_cell(bad_run.set_index("model").loc["positive", "cell_id"])
    assert positive is not None and positive.metrics["sample_time"] > 0 and "nll" not in positive.metrics
    leaderboard = (run_dir / "leaderboard.md").read_text()
    assert "| positive | 1 | failed | failed | failed |" in leaderboard


def test_every_metric_time_is_recorded_and_summed_in_eval_time(bad_run: pd.DataFrame) -> None:
    independent = bad_run.set_index("model").loc["independent"]
    record = RunDirectory(Path(bad_run.attrs["run_dir"])).read_cell(independent["cell_id"])
    assert record is not None and set(record.metric_times) == set(METRICS)
    assert all(seconds >= 0 for seconds in record.metric_times.values())
    assert independent["eval_time"] == pytest.approx(sum(record.metric_times.values()))
    written = pd.read_csv(Path(bad_run.attrs["run_dir"]) / "results.csv")
    assert list(written.columns[:7]) == ["model", "dataset", "seed", "status", "error", "train_time", "eval_time"]
    leaderboard = (Path(bad_run.attrs["run_dir"]) / "leaderboard.md").read_text()
    assert "### Evaluation time" in leaderboard and "| model | sample_time (s) | nll (s) | bpd (s) |" in leaderboard


@pytest.mark.slow
def test_samples_of_the_wrong_levels_never_reach_fid(tmp_path: Path) -> None:
    frame = genbench.run(
        ["independent", "bytes"],
        dataset="digits",
        metrics=["fid"],
        metric_options={"fid": {"n_samples": 50}},
        plugins=["bad_model_plugins"],
        results_dir=tmp_path,
    )
    independent, broken = frame.iloc[0], frame.iloc[1]
    assert independent["status"] == "ok" and math.isfinite(independent["fd_classifier"])
    assert broken["status"] == "failed" and math.isnan(broken["fd_classifier"])
    assert broken["error"].startswith("model 'bytes' sample(50) returned values up to 255 on data with 17 levels")


@pytest.mark.slow
def test_a_broken_output_on_the_command_line_exits_1_and_the_run_goes_on(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "genbench.cli",
            "run",
            "-p",
            "bad_model_plugins",
            "--models",
            "independent,floats",
            "--metrics",
            "sample_time,nll",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "genbench: error" not in result.stderr
    assert EXPECTED_ERRORS["floats"] in result.stdout
