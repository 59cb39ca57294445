"""The command line in a real subprocess: the main job, resume, and one-line errors that write nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SHARED_DATA, genbench_cli

genbench = genbench_cli


@pytest.mark.slow
def test_run_independent_then_resume_without_training(tmp_path: Path) -> None:
    first = genbench("run", "--models", "independent", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    header = first.stdout.splitlines()[0].split()
    assert {"nll", "bpd", "sample_time", "train_time"} <= set(header)
    row = dict(zip(header, first.stdout.splitlines()[1].split(), strict=True))
    assert float(row["bpd"]) < 3.0  # the uniform model scores log2(17) = 4.09

    second = genbench("run", "--models", "independent", cwd=tmp_path)
    assert second.returncode == 0
    assert "finished before, reusing" in second.stderr and "running" not in second.stderr
    assert second.stdout == first.stdout


@pytest.mark.slow
def test_failed_cell_gives_exit_1_and_the_run_goes_on(tmp_path: Path) -> None:
    args = ["-p", "fake_plugins", "--models", "failing,constant", "--metrics", "sample_time"]
    result = genbench("run", *args, cwd=tmp_path)
    assert result.returncode == 1
    assert "failed: failing seed 0: RuntimeError: this model always fails" in result.stdout
    assert "constant" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "nope"], "unknown model 'nope'"),
        (["--models", "independnet"], "Did you mean 'independent'?"),
        (["--models", "independent,,x"], "is malformed"),
        (["--models", "independent", "--metrics", "bdp"], "Did you mean 'bpd'?"),
        (["--models", "independent", "--dataset", "mnistt"], "unknown data set 'mnistt'"),
        (["--models", "independent", "--seeds", "x"], "--seeds 'x' is not a comma-separated list of integers"),
        (["--models", "independent", "--dataset", "mnist", "--data-root", "/no/such/dir"], "does not exist"),
        (["--models", "independent", "--epochs", "zero"], "argument --epochs"),
        (["--models", "independent", "--config", "missing.toml"], "--config missing.toml does not exist"),
    ],
)
@pytest.mark.slow
def test_user_errors_are_one_line_exit_2_and_write_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    result = genbench("run", *args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genbench: error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="this machine has a GPU, so --device cuda is not an error"
)
@pytest.mark.slow
def test_device_cuda_without_gpu_is_a_user_error(tmp_path: Path) -> None:
    result = genbench("run", "--models", "independent", "--device", "cuda", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "genbench: error: --device cuda was asked for, but PyTorch sees no CUDA GPU; use --device cpu or auto"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_mnist_from_the_shared_test_split(tmp_path: Path) -> None:
    if not (SHARED_DATA / "MNIST").is_dir():
        pytest.skip("../shared/data is not beside the repository")
    result = genbench(
        "run",
        "--models",
        "independent",
        "--dataset",
        "mnist",
        "--data-root",
        str(SHARED_DATA),
        "--metrics",
        "bpd",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "mnist" in result.stdout


@pytest.mark.slow
def test_show_prints_the_table_and_plugins_lists_built_ins(tmp_path: Path) -> None:
    assert genbench("run", "--models", "independent", "--metrics", "bpd", "--name", "r", cwd=tmp_path).returncode == 0
    shown = genbench("show", "results/r", cwd=tmp_path)
    assert shown.returncode == 0 and "independent" in shown.stdout
    missing = genbench("show", "results/none", cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    listing = genbench("plugins", cwd=tmp_path).stdout
    assert "independent" in listing and "genbench 0.1.0" in listing
