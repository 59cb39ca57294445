"""Executors: the same numbers under serial, local and ray; a dead worker retried, then its cell recorded as
failed while the others finish; workers that share no folder with the driver; one driver per run folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch

import genbench
import genbench.runner.workers
import genbench_executors.local
from conftest import REPO, TESTS
from genbench.cli import build_parser, execution_from_args, main
from genbench.contract import GenbenchError
from genbench.contract.executors import CellTask, ExecutorContext, absolute_request
from genbench.contract.request import RunRequest
from genbench.registry import load_plugins
from genbench.runner.workers import run_task, sees_driver_folder
from genbench.store.layout import RunDirectory
from genbench_executors.local import placements

#: A small grid with every case: the baseline and the VAE, 2 seeds, the digits, 2 epochs; three metrics, one of which
#: (fid) uses the caches beside the runs. On the CPU, where every executor must give the serial run's values to
#: the last bit (on a GPU each process lets cuDNN pick its own algorithms, which round differently), and where
#: --jobs 2 needs no --cells-per-gpu.
GRID: dict[str, Any] = {
    "models": ["independent", "vae"],
    "seeds": [0, 1],
    "epochs": 2,
    "metrics": ["nll", "bpd", "fid"],
    "device": "cpu",
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Path:
    """A results folder whose caches are the session's, so that the FID classifier is trained once."""
    folder = tmp_path_factory.mktemp("executors")
    (folder / ".cache").symlink_to(shared_cache, target_is_directory=True)
    return folder


@pytest.fixture(scope="module")
def serial(results: Path) -> dict[str, dict[str, Any]]:
    return cell_values(genbench.run(**GRID, results_dir=results, name="serial"))


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    """One local Ray instance for the module; its workers find the test plugins on PYTHONPATH."""
    import ray

    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Ray's own deprecation notices are not this suite's business
        ray.init(
            address="local",  # a new instance, whatever else runs on this machine
            num_cpus=2,
            include_dashboard=False,
            logging_level="ERROR",
            runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}},
        )
    yield
    ray.shutdown()


def cell_values(frame: Any) -> dict[str, dict[str, Any]]:
    """Cell id -> everything its record measured (metric values, N/A reasons, status), read from its file."""
    assert (frame["status"] == "ok").all(), frame[["model", "seed", "error"]]
    directory = RunDirectory(Path(frame.attrs["run_dir"]))
    values = {}
    for cell_id in frame["cell_id"]:
        record = directory.read_cell(cell_id)
        assert record is not None
        values[cell_id] = {
            "metrics": record.metrics,
            "not_applicable": record.not_applicable,
            "key": record.checkpoint_key,
        }
    return values


@pytest.mark.slow
def test_local_workers_give_every_cell_the_serial_numbers(results: Path, serial: dict[str, dict[str, Any]]) -> None:
    # The workers share the driver's folder: each writes its own record and checkpoint there.
    frame = genbench.run(**GRID, results_dir=results, name="local", executor="local", executor_options={"jobs": 2})
    assert cell_values(frame) == serial
    assert len(serial) == 4 and all(cell["metrics"]["fd_classifier"] > 0 for cell in serial.values())


@pytest.mark.slow
def test_local_workers_that_share_no_folder_give_the_serial_numbers_and_send_their_files_back(
    tmp_path: Path, results: Path, serial: dict[str, dict[str, Any]]
) -> None:
    # --worker-storage copy: each worker computes in a scratch folder of its own, so what it wrote (checkpoint,
    # sample grid, caches) must come back with its record. A results folder of its own with only the trained
    # classifier: the reference statistics are computed by a worker and must reach the driver's cache.
    (tmp_path / ".cache").mkdir()
    classifier = results / ".cache" / "feature_extractors"
    shutil.copytree(classifier, tmp_path / ".cache" / "feature_extractors")
    options: dict[str, Any] = {"executor": "local", "executor_options": {"jobs": 2}, "worker_storage": "copy"}
    frame = genbench.run(**GRID, results_dir=tmp_path, name="copy", **options)
    assert cell_values(frame) == serial
    run_dir = Path(frame.attrs["run_dir"])
    assert sorted(p.stem for p in (run_dir / "checkpoints").glob("*.safetensors")) == sorted(
        cell["key"] for cell in serial.values()
    )
    assert sorted(p.stem for p in (run_dir / "samples").glob("*-seed*.png")) == sorted(serial)
    assert list((tmp_path / ".cache" / "reference_statistics").glob("*.safetensors"))
    # What came back is what a serial rerun finds: every cell finished, nothing trained again.
    lines: list[str] = []
    genbench.run(**GRID, results_dir=tmp_path, name="copy", echo=lines.append)
    assert len(lines) == 4 and all("finished before, reusing" in line for line in lines)


@pytest.mark.slow
def test_ray_tasks_give_every_cell_the_serial_numbers(
    results: Path, serial: dict[str, dict[str, Any]], ray_instance: None
) -> None:
    frame = genbench.run(**GRID, results_dir=results, name="ray", executor="ray")
    assert cell_values(frame) == serial


def run_the_killer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **execution: Any) -> tuple[Any, int]:
    """The killer model (its fit kills its own worker) beside the baseline, with one retry, on the CPU; the
    results frame, and how many times the killer's fit ran (its tally file has a line per run)."""
    tally = tmp_path / "tally.txt"
    monkeypatch.syspath_prepend(str(TESTS))  # workers find the test plugins on the driver's sys.path
    frame = genbench.run(
        ["killer", "independent"],
        metrics=["bpd"],
        plugins=["executor_plugins"],
        model_options={"killer": {"tally": str(tally)}},
        results_dir=tmp_path,
        device="cpu",
        retries=1,
        **execution,
    )
    return frame, len(tally.read_text().splitlines())


@pytest.mark.slow
def test_a_worker_that_dies_is_retried_then_its_cell_fails_while_the_others_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[str] = []
    frame, runs = run_the_killer(
        tmp_path, monkeypatch, executor="local", executor_options={"jobs": 2}, echo=lines.append
    )
    assert runs == 2  # the first run and one retry, each in a worker of its own
    assert "killer seed 0: its worker died (killed by SIGKILL (out of memory, or kill -9)); retry 1 of 1" in lines
    assert frame["status"].tolist() == ["failed", "ok"]  # so `genbench run` exits with 1
    assert frame["error"][0].startswith("WorkerDied: the worker running this cell died (killed by SIGKILL")
    assert frame["error"][0].endswith("tried 2 times") and frame["bpd"][1] > 0


@pytest.mark.slow
def test_ray_retries_a_dead_worker_then_records_the_cell_failed(
    tmp_path: Path, ray_instance: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --worker-storage copy: and the baseline's checkpoint comes back through Ray's object store.
    frame, runs = run_the_killer(tmp_path, monkeypatch, executor="ray", worker_storage="copy")
    assert runs == 2
    assert frame["status"].tolist() == ["failed", "ok"]
    assert frame["error"][0].startswith("WorkerDied:") and "tried 2 times" in frame["error"][0]
    record = RunDirectory(Path(frame.attrs["run_dir"])).read_cell(frame["cell_id"][1])
    assert (
        record is not None
        and (Path(frame.attrs["run_dir"]) / "checkpoints" / f"{record.checkpoint_key}.json").is_file()
    )
    run_json = json.loads((Path(frame.attrs["run_dir"]) / "run.json").read_text())
    assert run_json["execution"] == {
        "executor": "ray",
        "options": run_json["execution"]["options"],
        "retries": 1,
        "storage": "copy",
    }


@pytest.mark.slow
def test_a_second_driver_on_a_running_run_folder_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = tmp_path / "release"
    monkeypatch.syspath_prepend(str(TESTS))
    options: dict[str, Any] = {"metrics": ["sample_time"], "plugins": ["executor_plugins"], "results_dir": tmp_path}
    first = ThreadPoolExecutor(1).submit(
        genbench.run, ["waiter"], model_options={"waiter": {"release": str(release)}}, **options
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "digits-waiter" / "run.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        suite = tmp_path / "suite.toml"
        suite.write_text(f'models = ["waiter"]\nmetrics = ["sample_time"]\n[model.waiter]\nrelease = "{release}"\n')
        second = genbench_cli(["run", "-p", "executor_plugins", "--config", str(suite), "--results-dir", str(tmp_path)])
    finally:
        release.touch()
        frame = first.result(timeout=120)
    assert (frame["status"] == "ok").all()
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"genbench: error: the run folder {tmp_path / 'digits-waiter'} is in use"
    )


def test_an_option_of_another_executor_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--models", "independent", "--jobs", "2", "--results-dir", str(tmp_path)]) == 2
    error = "genbench: error: --jobs is an option of executor 'local'; add --executor local"
    assert capsys.readouterr().err.strip() == error
    assert not list(tmp_path.iterdir())


def test_an_unknown_executor_gets_a_did_you_mean(tmp_path: Path) -> None:
    with pytest.raises(GenbenchError, match=r"unknown executor 'lcoal'\. Did you mean 'local'\?"):
        genbench.run(["independent"], metrics=["bpd"], results_dir=tmp_path, executor="lcoal")
    assert not list(tmp_path.iterdir())


def test_a_worker_sees_the_driver_folder_by_its_token(tmp_path: Path) -> None:
    marker = tmp_path / ".genbench-driver"
    marker.write_text("abc")
    task = CellTask(
        absolute_request(RunRequest(results_dir=tmp_path)), "vae", 0, "id", False, {}, "auto", marker, "abc"
    )
    assert sees_driver_folder(task)
    assert not sees_driver_folder(CellTask(**{**task.__dict__, "token": "another driver's"}))
    assert not sees_driver_folder(CellTask(**{**task.__dict__, "storage": "copy"}))
    marker.unlink()
    assert not sees_driver_folder(task)
    # Told to share a folder it cannot see, the worker fails the cell and says what to do.
    outcome = run_task(CellTask(**{**task.__dict__, "storage": "shared"}))
    assert outcome.record.status == "failed" and "--worker-storage copy" in (outcome.record.error or "")


def genbench_cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genbench.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_environment(),
    )


def cli_environment() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_the_documented_executor_plugin_runs_a_grid_with_the_serial_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (REPO / "docs" / "executors.md").read_text(encoding="utf-8")
    code = text.split("<!-- executor-example -->\n```python\n")[1].split("```\n<!-- /executor-example -->")[0]
    (tmp_path / "genbench_pool.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))  # the pool's processes get the driver's sys.path
    registry = load_plugins(["genbench_pool"])
    args = build_parser(registry)[0].parse_args(
        ["run", "-p", "genbench_pool", "--executor", "pool", "--pool-size", "2"]
    )
    execution = execution_from_args(args)
    assert (execution.executor, execution.options) == ("pool", {"pool_size": 2})
    grid: dict[str, Any] = {
        "models": ["independent"],
        "seeds": [0, 1],
        "metrics": ["bpd"],
        "results_dir": tmp_path,
        "device": "cpu",
    }
    pooled = genbench.run(**grid, plugins=["genbench_pool"], executor="pool", executor_options={"pool_size": 2})
    serial = genbench.run(**grid, name="serial")
    assert cell_values(pooled) == cell_values(serial)


def placement_context(device: str, tasks: int, **options: Any) -> ExecutorContext:
    task = CellTask(RunRequest(), "vae", 0, "id", False, {})
    return ExecutorContext(
        tasks=[task] * tasks,
        options={"jobs": None, "cells_per_gpu": 1, **options},
        retries=1,
        device=torch.device(device),
        run_here=lambda task: pytest.fail("placements run nothing"),
        started=lambda task: None,
        echo=lambda line: None,
    )


def test_local_places_workers_on_the_gpus_round_robin(monkeypatch: pytest.MonkeyPatch) -> None:
    # No GPU here: the count is faked, which is all placement reads (the workers would then start on them).
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 16)
    monkeypatch.setattr(genbench_executors.local, "available_cores", lambda: 16)
    monkeypatch.setattr(genbench.toolkit.devices, "available_cores", lambda: 16)
    placed = placements(placement_context("cuda", 8, cells_per_gpu=4))
    assert [p.gpu for p in placed] == ["0", "1"] * 4 and {p.threads for p in placed} == {2}  # 16 cores / 8
    assert [p.gpu for p in placements(placement_context("cuda", 8))] == ["0", "1"]  # one cell per GPU
    assert len(placements(placement_context("cuda", 3, cells_per_gpu=4))) == 3  # never more workers than cells
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # the GPUs this process was given are the ones shared out
    assert [p.gpu for p in placements(placement_context("cuda", 4, cells_per_gpu=2))] == ["3", "5", "3", "5"]
    with pytest.raises(GenbenchError, match=r"--jobs 3 is more than 2 GPU\(s\) x --cells-per-gpu 1.*--cells-per-gpu 2"):
        placements(placement_context("cuda", 8, jobs=3))


def test_local_divides_the_cores_among_cpu_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "get_num_threads", lambda: 16)
    monkeypatch.setattr(genbench_executors.local, "available_cores", lambda: 16)
    monkeypatch.setattr(genbench.toolkit.devices, "available_cores", lambda: 16)
    assert [(p.gpu, p.threads) for p in placements(placement_context("cpu", 8, jobs=4))] == [(None, 4)] * 4
    assert len(placements(placement_context("cpu", 32))) == 16  # default: one worker per core, one thread each
    assert {p.threads for p in placements(placement_context("cpu", 32))} == {1}
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # the driver was given 2 threads (OMP_NUM_THREADS)
    assert {p.threads for p in placements(placement_context("cpu", 8, jobs=2))} == {2}  # not 16 / 2
