"""Trackers (--log tensorboard,mlflow) and the training-curve event: what they write is read back with each
library's own reader (TensorBoard's EventAccumulator, MLflow's client) and compared with the run's own records."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import typing
from pathlib import Path
from typing import Any

import pytest

import curve_recorder
import genbench
from genbench.cli import main
from genbench.contract import GenbenchError

#: Two models: one whose curve has one point (independent), one trained for a few epochs (vae).
MODELS = ["independent", "vae"]
EPOCHS = 3


def records(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Model -> its cell's record, as written in cells/<cell>.json."""
    found = [json.loads(path.read_text()) for path in sorted((run_dir / "cells").glob("*.json"))]
    return {record["model"]: record for record in found}


def curve_losses(record: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """Loss name -> [(step, value)] of a record's curve."""
    losses: dict[str, list[tuple[int, float]]] = {}
    for point in record["curve"]:
        for name, value in point.items():
            if name != "step":
                losses.setdefault(name, []).append((int(point["step"]), value))
    return losses


# ---------------------------------------------------------------------------------------------- TensorBoard


def tensorboard_events(folder: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


@pytest.mark.slow
def test_tensorboard_from_a_suite_file_holds_each_cells_curve_metrics_and_samples(tmp_path: Path) -> None:
    config = tmp_path / "suite.toml"
    config.write_text(f'models = {json.dumps(MODELS)}\nmetrics = ["bpd"]\nepochs = {EPOCHS}\nlog = ["tensorboard"]\n')
    argv = ["run", "--config", str(config), "--results-dir", str(tmp_path / "results"), "--name", "tb"]
    assert main(argv) == 0
    run_dir = tmp_path / "results" / "tb"
    for model, record in records(run_dir).items():
        events = tensorboard_events(run_dir / "tensorboard" / record["cell_id"])
        for name, points in curve_losses(record).items():
            written = events.Scalars(f"curve/{name}")
            assert [event.step for event in written] == [step for step, _ in points]
            # TensorBoard keeps a scalar as float32.
            assert [event.value for event in written] == pytest.approx([v for _, v in points], rel=1e-6)
        last_step = int(record["curve"][-1]["step"])
        (bpd,) = events.Scalars("metrics/bpd")
        assert (bpd.step, bpd.value) == (last_step, pytest.approx(record["metrics"]["bpd"], rel=1e-6))
        assert events.Scalars("metrics/train_time")[0].value == pytest.approx(record["train_time"], rel=1e-6)
        (image,) = events.Images("samples")
        grid = run_dir / "samples" / f"{record['cell_id']}.png"
        from PIL import Image

        with Image.open(grid) as png:
            assert (image.width, image.height) == png.size, model
        config_text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
        assert json.loads(config_text.replace("\n    ", "\n")) == record["config"]
    assert len(curve_losses(records(run_dir)["vae"])["negative_elbo"]) == EPOCHS


@pytest.mark.slow
def test_a_cell_loaded_from_its_checkpoint_logs_the_stored_curve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cell whose record is gone is evaluated again with its model loaded from the checkpoint: nothing trains,
    so no curve event comes; the trackers take the stored curve from the record instead, once."""
    args = {"metrics": ["bpd"], "epochs": EPOCHS, "results_dir": tmp_path, "name": "again"}
    genbench.run(["vae"], **args)  # type: ignore[arg-type]
    (cell,) = (tmp_path / "again" / "cells").glob("*.json")
    trained = json.loads(cell.read_text())
    cell.unlink()
    argv = ["run", "--models", "vae", "--metrics", "bpd", "--epochs", str(EPOCHS), "--results-dir", str(tmp_path)]
    assert main([*argv, "--name", "again", "--log", "tensorboard,mlflow"]) == 0
    loaded = json.loads(cell.read_text())
    assert loaded["trained"] is False and loaded["curve"] == trained["curve"]
    events = tensorboard_events(tmp_path / "again" / "tensorboard" / loaded["cell_id"])
    stored = curve_losses(loaded)["negative_elbo"]
    written = [(event.step, event.value) for event in events.Scalars("curve/negative_elbo")]
    assert written == [(step, pytest.approx(value)) for step, value in stored]
    client = mlflow_client(tmp_path / "again", monkeypatch)
    (mlflow_run,) = mlflow_runs(tmp_path / "again", client)
    history = client.get_metric_history(mlflow_run.info.run_id, "curve/negative_elbo")
    assert sorted((m.step, m.value) for m in history) == stored


# --------------------------------------------------------------------------------------------------- MLflow


def mlflow_client(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # to read the folder store that genbench chose
    return MlflowClient(tracking_uri=(run_dir / "mlruns").resolve().as_uri())


def mlflow_runs(run_dir: Path, client: Any) -> list[Any]:
    experiment = client.get_experiment_by_name(run_dir.name)
    return list(client.search_runs([experiment.experiment_id]))


@pytest.mark.slow
def test_mlflow_logs_each_cell_as_a_run_in_the_run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    frame = genbench.run(MODELS, metrics=["bpd"], epochs=EPOCHS, results_dir="results", log=["mlflow"])
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # genbench opted in for its own calls only
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results"]  # no mlruns/ or mlflow.db here
    run_dir = Path(frame.attrs["run_dir"])
    client = mlflow_client(run_dir, monkeypatch)
    logged = {run.data.tags["genbench.model"]: run for run in mlflow_runs(run_dir, client)}
    assert sorted(logged) == sorted(MODELS)
    for model, record in records(run_dir).items():
        run = logged[model]
        assert run.info.status == "FINISHED" and run.info.run_name == record["cell_id"]
        assert run.data.tags["genbench.cell_id"] == record["cell_id"]
        assert run.data.params == {key: str(value) for key, value in record["config"].items()}
        assert run.data.metrics["bpd"] == record["metrics"]["bpd"]
        assert run.data.metrics["train_time"] == record["train_time"]
        for name, points in curve_losses(record).items():
            history = client.get_metric_history(run.info.run_id, f"curve/{name}")
            assert sorted((m.step, m.value) for m in history) == points
        artifacts = sorted(artifact.path for artifact in client.list_artifacts(run.info.run_id))
        assert artifacts == sorted([f"{record['cell_id']}.json", f"{record['cell_id']}.png"])
        copy = client.download_artifacts(run.info.run_id, f"{record['cell_id']}.json", str(tmp_path / model))
        assert Path(copy).read_bytes() == (run_dir / "cells" / f"{record['cell_id']}.json").read_bytes()


def test_mlflow_follows_the_tracking_uri_and_marks_failed_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "elsewhere"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    frame = genbench.run(["failing"], plugins=["fake_plugins"], metrics=["bpd"], results_dir=tmp_path, log=["mlflow"])
    run_dir = Path(frame.attrs["run_dir"])
    assert not (run_dir / "mlruns").exists()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.as_uri())
    (run,) = mlflow_runs(run_dir, client)
    assert run.info.status == "FAILED"
    assert run.data.tags["genbench.error"] == frame["error"][0] == "RuntimeError: this model always fails"


@pytest.mark.parametrize(
    ("tracker", "module"), [("tensorboard", "torch.utils.tensorboard"), ("mlflow", "mlflow.tracking")]
)
def test_a_tracker_that_fails_to_import_stops_the_run_before_training(
    tracker: str, module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # installed (found), but its import breaks
    argv = ["run", "--models", "independent", "--log", tracker, "--results-dir", str(tmp_path / "results")]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert f"--log {tracker}: the {tracker} package fails to import" in error
    assert f"pip install --force-reinstall 'genbench[{tracker}]'" in error
    assert not (tmp_path / "results").exists()


def test_a_tracker_that_cannot_write_warns_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://nowhere")  # a store MLflow cannot open
    run_dir = tmp_path / "results" / "blocked"
    run_dir.mkdir(parents=True)
    (run_dir / "tensorboard").write_text("a file where the tracker's folder would go")
    argv = ["run", "--models", "vae", "--metrics", "bpd", "--epochs", "2", "--results-dir", str(tmp_path / "results")]
    assert main([*argv, "--name", "blocked", "--log", "tensorboard,mlflow"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("genbench: warning: --log")]
    record = records(run_dir)["vae"]
    assert record["status"] == "ok" and "bpd" in record["metrics"]
    for tracker in ("tensorboard", "mlflow"):
        # One warning for the curve (its later points are not tried again), one for the finished cell.
        assert sum(f"--log {tracker} could not log cell {record['cell_id']}" in line for line in warnings) == 2


# ------------------------------------------------------------------------- interrupted runs, reused cells


@pytest.mark.parametrize("stop", ["KeyboardInterrupt", "SIGTERM"])
def test_an_interrupted_cells_mlflow_run_ends_killed(
    stop: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or SIGTERM) while a cell trains: its MLflow run, opened by the first curve point, ends KILLED rather
    than RUNNING; its TensorBoard events reach the file; the cells not started open nothing."""
    import fake_plugins

    if stop == "SIGTERM" and signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        pytest.skip("SIGTERM has a handler in this process: the driver leaves it in place")

    def interrupted_fit(self: Any, train: Any, ctx: genbench.FitContext) -> None:
        ctx.on_curve(1, {"loss": 0.5})
        if stop == "SIGTERM":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises at once; this is never slept to its end
        raise KeyboardInterrupt

    monkeypatch.setattr(fake_plugins.ConstantModel, "fit", interrupted_fit)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args: dict[str, Any] = {"plugins": ["fake_plugins"], "metrics": ["sample_time"], "seeds": [0, 1]}
    before = signal.getsignal(signal.SIGTERM)  # an earlier test (Ray) may have left a handler of its own
    with pytest.raises(KeyboardInterrupt):
        genbench.run(["constant"], results_dir=tmp_path, name="stopped", log=["mlflow", "tensorboard"], **args)
    assert signal.getsignal(signal.SIGTERM) == before  # the driver's handler is gone with the run
    run_dir = tmp_path / "stopped"
    client = mlflow_client(run_dir, monkeypatch)
    (killed,) = mlflow_runs(run_dir, client)  # seed 1 never started
    assert killed.info.status == "KILLED" and killed.data.tags["genbench.seed"] == "0"
    assert [m.value for m in client.get_metric_history(killed.info.run_id, "curve/loss")] == [0.5]
    events = tensorboard_events(run_dir / "tensorboard" / killed.data.tags["genbench.cell_id"])
    assert [(event.step, event.value) for event in events.Scalars("curve/loss")] == [(1, 0.5)]


def test_reused_cells_are_logged_when_log_is_added_later_and_only_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args: dict[str, Any] = {"metrics": ["bpd"], "results_dir": tmp_path, "name": "later"}
    genbench.run(["independent"], **args)  # no trackers
    run_dir = tmp_path / "later"
    record = records(run_dir)["independent"]
    assert not (run_dir / "mlruns").exists() and not (run_dir / "tensorboard").exists()
    for _ in range(2):  # --log added later, then the same command again: logged once
        lines: list[str] = []
        genbench.run(["independent"], log=["mlflow", "tensorboard"], echo=lines.append, **args)
        assert "finished before, reusing" in lines[0]
    assert records(run_dir)["independent"] == record  # reused, not run again
    client = mlflow_client(run_dir, monkeypatch)
    (logged,) = mlflow_runs(run_dir, client)
    assert logged.info.status == "FINISHED" and logged.data.tags["genbench.cell_id"] == record["cell_id"]
    assert logged.data.metrics["bpd"] == record["metrics"]["bpd"]
    for name, points in curve_losses(record).items():
        history = client.get_metric_history(logged.info.run_id, f"curve/{name}")
        assert sorted((m.step, m.value) for m in history) == points
    events = tensorboard_events(run_dir / "tensorboard" / record["cell_id"])
    assert [event.value for event in events.Scalars("metrics/bpd")] == [pytest.approx(record["metrics"]["bpd"])]
    for name, points in curve_losses(record).items():
        assert [event.step for event in events.Scalars(f"curve/{name}")] == [step for step, _ in points]


def test_log_empty_in_a_config_file_switches_off_a_suites_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import genbench.suites as suites

    logged_suite = (
        'name = "logged"\nversion = 1\ndescription = "a suite that logs"\nmodels = ["independent"]\n'
        'metrics = ["bpd"]\nlog = ["tensorboard"]\n'
    )
    packaged = suites.suite_files()
    monkeypatch.setattr(suites, "suite_files", lambda: {**packaged, "logged": logged_suite})
    quiet = tmp_path / "quiet.toml"
    quiet.write_text("log = []\n")
    assert suites.layered_request("logged", None).log == ["tensorboard"]
    assert suites.layered_request("logged", quiet).log == []
    argv = ["run", "--suite", "logged", "--config", str(quiet), "--results-dir", str(tmp_path), "--name", "quiet"]
    assert main(argv) == 0
    assert json.loads((tmp_path / "quiet" / "run.json").read_text())["request"]["log"] == []
    assert not (tmp_path / "quiet" / "tensorboard").exists()


# ------------------------------------------------------------------------------ the training-curve event


@pytest.mark.slow
def test_curve_event_comes_once_per_epoch_and_its_time_is_not_training_time(tmp_path: Path) -> None:
    curve_recorder.points.clear()
    curve_recorder.finished.clear()
    sleep = 0.3
    frame = genbench.run(
        MODELS,
        metrics=["bpd"],
        epochs=EPOCHS,
        results_dir=tmp_path,
        plugins=["curve_recorder"],
        plugin_options={"recorder_sleep": sleep},
    )
    run_dir = Path(frame.attrs["run_dir"])
    for model, record in records(run_dir).items():
        sent = [point for point, _ in curve_recorder.points if point.cell_id == record["cell_id"]]
        assert [{"step": float(p.step), **p.values} for p in sent] == record["curve"]
        assert {(p.model, p.dataset, p.seed) for p in sent} == {(model, "digits", 0)}
        # Each point slept `sleep` seconds in the hook; training the independent model takes milliseconds.
        if model == "independent":
            assert record["train_time"] < sleep
    assert {run.root for _, run in curve_recorder.points} == {run_dir}
    assert [record.model for record in curve_recorder.finished] == MODELS


# --------------------------------------------------------------------------------- genbench.run() options


def test_plugin_options_of_the_api_name_the_same_cell_as_the_flag(tmp_path: Path) -> None:
    argv = ["run", "--models", "constant", "--metrics", "option_echo", "-p", "fake_plugins", "--fake-scale", "2"]
    assert main([*argv, "--results-dir", str(tmp_path), "--name", "same"]) == 0
    # The flag's type is float: 2.0, the integer 2 and the text "2" are all what --fake-scale 2 parses to.
    for value in (2.0, 2, "2"):
        frame = genbench.run(
            ["constant"],
            metrics=["option_echo"],
            plugins=["fake_plugins"],
            plugin_options={"fake_scale": value},
            results_dir=tmp_path,
            name="same",
        )
        assert frame["option_echo"][0] == 2.0
        assert len(list((tmp_path / "same" / "cells").glob("*.json"))) == 1  # the CLI's cell, reused
    with pytest.raises(GenbenchError, match=r"plugin_options\['fake_scale'\] 'two' is not valid for --fake-scale"):
        genbench.run(["constant"], plugins=["fake_plugins"], plugin_options={"fake_scale": "two"}, results_dir=tmp_path)


def test_unknown_plugin_option_is_one_line_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(GenbenchError, match=r"\['fake_scael'\] are not options.*known: (\w+, )*fake_scale, "):
        genbench.run(["constant"], plugins=["fake_plugins"], plugin_options={"fake_scael": 2.0}, results_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_api_takes_a_suite_and_rerun(tmp_path: Path) -> None:
    args: dict[str, Any] = {"models": ["independent"], "metrics": ["bpd"], "results_dir": tmp_path}
    first = genbench.run(suite="digits", **args)
    run_dir = Path(first.attrs["run_dir"])
    assert json.loads((run_dir / "run.json").read_text())["request"]["suite"]["name"] == "digits"
    started = records(run_dir)["independent"]["started"]
    genbench.run(suite="digits", **args)
    assert records(run_dir)["independent"]["started"] == started  # reused
    for rerun in (True, ["independent"]):
        genbench.run(suite="digits", rerun=rerun, **args)
        assert records(run_dir)["independent"]["trained"] is True
    with pytest.raises(GenbenchError, match="--rerun vae: not a model of this run"):
        genbench.run(suite="digits", rerun=["vae"], **args)


def test_option_group_wraps_any_public_add_argument() -> None:
    """Plugins get an OptionGroup typed with a public protocol, not argparse's private _ArgumentGroup."""
    hints = typing.get_type_hints(genbench.OptionGroup.__init__)
    assert hints["adder"] is genbench.ArgumentAdder
    for adder in (argparse.ArgumentParser(), argparse.ArgumentParser().add_argument_group("plugins")):
        options = genbench.OptionGroup(adder)
        options.addoption("--fake-scale", dest="fake_scale", type=float)
        options.addoption("--steps", type=int)
        assert options.dests == ["fake_scale", "steps"]


# ------------------------------------------------------------------------------------------ python -m genbench


@pytest.mark.slow
def test_python_m_genbench_is_the_command_and_starts_light(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import HEAVY

    probe = (
        "import runpy, sys\n"
        "sys.argv = ['genbench', 'plugins']\n"
        "try:\n"
        "    runpy.run_module('genbench', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-2:] == ["exit 0", "[]"]
    trackers = {line.split()[0] for line in lines if line.split()[1:2] == ["tracker"]}
    assert trackers == {"tensorboard", "mlflow"}
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--log TRACKERS" in capsys.readouterr().out
