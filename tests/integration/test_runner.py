"""The runner and store through the Python API: records, checkpoints, resume, failures, provenance."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import genbench
from genbench.contract.request import RunRequest
from genbench.runner.driver import execute
from genbench.runner.prepare import prepare
from genbench.store.layout import RunDirectory


def run_independent(tmp_path: Path, **kwargs: object) -> pd.DataFrame:
    # FID and KID would train a feature classifier in every fresh results directory; they have their own tests.
    kwargs.setdefault("metrics", ["nll", "bpd", "sample_time"])
    return genbench.run(["independent"], results_dir=tmp_path, **kwargs)  # type: ignore[arg-type]


def test_run_returns_one_row_per_cell_and_writes_the_run_directory(tmp_path: Path) -> None:
    frame = run_independent(tmp_path, seeds=[0, 1])
    assert list(frame["seed"]) == [0, 1] and (frame["status"] == "ok").all()
    assert list(frame.columns[:6]) == ["model", "dataset", "seed", "status", "error", "train_time"]
    run_dir = Path(frame.attrs["run_dir"])
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "ok" and run["device"]["type"] == "cpu"
    assert {"torch", "pandas", "pluggy"} <= set(run["packages"])
    assert "git_revision" in run and run["dataset"]["split"].startswith("random 80%/20%")
    assert len(list((run_dir / "cells").glob("*.json"))) == 2
    assert len(list((run_dir / "checkpoints").glob("*.safetensors"))) == 2
    assert (run_dir / "samples" / "real-digits.png").is_file()
    pd.testing.assert_frame_equal(genbench.load_results(run_dir), frame, check_like=False)
    pd.testing.assert_frame_equal(genbench.load_results(run_dir / "results.csv"), frame)


def test_every_number_says_how_it_was_measured(tmp_path: Path) -> None:
    frame = run_independent(tmp_path)
    record = RunDirectory(Path(frame.attrs["run_dir"])).read_cell(frame["cell_id"][0])
    assert record is not None
    assert record.provenance["nll"]["method"] == "exact log-likelihood"
    assert record.provenance["nll"]["n_images"] == 359
    assert record.provenance["sample_time"]["statistic"] == "median"
    assert record.dataset_provenance["fingerprint"]


def test_rerun_loads_checkpoints_and_reuses_records(tmp_path: Path) -> None:
    first = run_independent(tmp_path)
    run_dir = Path(first.attrs["run_dir"])
    cell = run_dir / "cells" / f"{first['cell_id'][0]}.json"
    before = cell.stat().st_mtime_ns
    second = run_independent(tmp_path)
    assert cell.stat().st_mtime_ns == before
    pd.testing.assert_frame_equal(first, second)

    # Other metric options make a new cell that loads the trained model instead of training it again.
    third = run_independent(tmp_path, metric_options={"sample_time": {"repeats": 2}})
    record = RunDirectory(run_dir).read_cell(third["cell_id"][0])
    assert record is not None and record.trained is False
    assert third["train_time"][0] == first["train_time"][0]
    assert third["nll"][0] == first["nll"][0]


def test_interrupted_run_resumes_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import genbench.runner.cell as runner

    real_run_cell = runner.run_cell
    calls: list[int] = []

    def interrupt_on_second_seed(run, spec, seed, identifier, **options):  # type: ignore[no-untyped-def]
        calls.append(seed)
        if seed == 1:
            raise KeyboardInterrupt
        return real_run_cell(run, spec, seed, identifier, **options)

    monkeypatch.setattr(runner, "run_cell", interrupt_on_second_seed)
    with pytest.raises(KeyboardInterrupt):
        run_independent(tmp_path, seeds=[0, 1])
    monkeypatch.setattr(runner, "run_cell", lambda *a, **k: calls.append(a[2]) or real_run_cell(*a, **k))
    frame = run_independent(tmp_path, seeds=[0, 1])
    assert calls == [0, 1, 1]  # seed 0 was not run again
    assert (frame["status"] == "ok").all()


def test_failing_model_is_recorded_and_the_others_still_run(tmp_path: Path) -> None:
    frame = genbench.run(
        ["failing", "constant"], plugins=["fake_plugins"], metrics=["sample_time", "nll"], results_dir=tmp_path
    )
    failing, constant = frame.iloc[0], frame.iloc[1]
    assert failing["status"] == "failed" and failing["error"] == "RuntimeError: this model always fails"
    assert constant["status"] == "ok" and constant["sample_time"] > 0
    # A metric that does not apply is N/A with a reason, never a silent 0.
    assert (
        math.isnan(constant["nll"])
        and "constant has no elbo, likelihoods or log_likelihood" in constant["not_applicable"]
    )
    record = RunDirectory(Path(frame.attrs["run_dir"])).read_cell(failing["cell_id"])
    assert record is not None and "RuntimeError" in (record.traceback or "")


def test_failed_cells_are_run_again_on_resume(tmp_path: Path) -> None:
    args = {"plugins": ["fake_plugins"], "metrics": ["sample_time"], "results_dir": tmp_path}
    first = genbench.run(["failing"], **args)  # type: ignore[arg-type]
    second = genbench.run(["failing"], **args)  # type: ignore[arg-type]
    assert first["status"][0] == second["status"][0] == "failed"


def test_checkpoints_are_safetensors_without_pickle(tmp_path: Path) -> None:
    frame = run_independent(tmp_path)
    tensors = next((Path(frame.attrs["run_dir"]) / "checkpoints").glob("*.safetensors"))
    assert tensors.read_bytes()[8:9] == b"{"  # a JSON header, not a pickle stream
    from safetensors.torch import load_file

    assert set(load_file(str(tensors))) == {"log_probs"}


def test_same_seed_gives_identical_metrics(tmp_path: Path) -> None:
    a = run_independent(tmp_path / "a", metrics=["nll"])
    b = run_independent(tmp_path / "b", metrics=["nll"])
    assert a["nll"][0] == b["nll"][0]


def test_options_for_a_model_or_metric_not_in_the_run_are_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = RunRequest(
        models=["independent"],
        metrics=["bpd"],
        results_dir=tmp_path,
        model_options={"vae": {"epochs": 3}, "independent": {"pseudocount": 2.0}},
        metric_options={"fid": {"n_samples": 10}},
    )
    run = prepare(request)
    assert capsys.readouterr().err.splitlines() == [
        "genbench: warning: options given for model 'vae', metric 'fid' are ignored: this run does not use them "
        "(models: independent; metrics: bpd)"
    ]
    # Dropped from the request that run.json records and workers prepare again (they do not warn twice).
    assert run.request.model_options == {"independent": {"pseudocount": 2.0}} and run.request.metric_options == {}
    assert list(tmp_path.iterdir()) == []


def test_nan_loss_fails_the_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from genbench.toolkit.training import train_epochs
    from genbench_independent import IndependentPixels

    def diverge(self, train, ctx):  # type: ignore[no-untyped-def]
        train_epochs(lambda batch: {"loss": float("nan")}, train, ctx, epochs=1, batch_size=64)

    monkeypatch.setattr(IndependentPixels, "fit", diverge)
    frame = run_independent(tmp_path)
    assert frame["status"][0] == "failed"
    assert frame["error"][0] == "TrainingDiverged: loss became nan in epoch 1"


def test_execute_reports_progress_lines(tmp_path: Path) -> None:
    lines: list[str] = []
    prepared = prepare(RunRequest(models=["independent"], results_dir=tmp_path, metrics=["bpd"]))
    execute(prepared, echo=lines.append)
    assert lines == ["independent seed 0: running", "independent seed 0: ok"]


def test_result_files_are_readable_by_others(tmp_path: Path) -> None:
    frame = run_independent(tmp_path, metrics=["bpd"])
    run_dir = Path(frame.attrs["run_dir"])
    for path in [run_dir / "run.json", run_dir / "results.csv", *(run_dir / "checkpoints").iterdir()]:
        assert path.stat().st_mode & 0o044, path
