"""``prepare`` finds every mistake before any cell runs: models are built for the data, metric options checked.

And a run of three built-ins on 32x32 RGB images from a folder finishes with every cell ok.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import genbench
from conftest import genbench_cli
from genbench import GenbenchError
from genbench.api import run_request
from genbench.contract.request import RunRequest
from genbench.runner.prepare import prepare
from genbench_fid.feature_extractor_inception import WEIGHTS_VARIABLE


def write_pngs(root: Path, n: int, size: int, *, classes: tuple[str, ...] = ()) -> Path:
    """``n`` random RGB PNGs of size x size (in one sub-folder per class, if classes are given)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / classes[i % len(classes)] if classes else root
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), mode="RGB").save(folder / f"{i}.png")
    return root


def assert_one_line_error_and_nothing_written(result: object, message: str, cwd: Path) -> None:
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert result.returncode == 2, result.stderr  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("genbench: error: ") and message in lines[0], lines
    assert not (cwd / "results").exists()


@pytest.mark.slow
def test_a_model_that_cannot_take_the_data_stops_the_run_before_anything_trains(tmp_path: Path) -> None:
    args = ["-p", "shape_plugins", "--models", "independent,at_least", "--metrics", "nll"]
    result = genbench_cli("run", *args, cwd=tmp_path)
    message = "model 'at_least' cannot be built for data set 'digits' (1x8x8, 17 levels) with its config: ValueError"
    assert_one_line_error_and_nothing_written(result, message, tmp_path)
    assert "needs images of at least 16x16, got" in result.stderr


def test_a_bad_pixelcnn_config_is_found_before_the_vae_trains(tmp_path: Path) -> None:
    request = RunRequest(
        models=["vae", "pixelcnn"], metrics=["nll"], model_options={"pixelcnn": {"kernel": 4}}, results_dir=tmp_path
    )
    with pytest.raises(GenbenchError, match="pixelcnn: kernels must be odd"):
        prepare(request)
    assert list(tmp_path.iterdir()) == []


def test_one_config_file_serves_two_runs_with_one_warning_for_what_a_run_leaves_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from genbench.cli import main

    config = tmp_path / "shared.toml"
    config.write_text('metrics = ["bpd"]\n[model.independent]\npseudocount = 2.0\n[model.vae]\nepochs = 1\n')
    argv = ["run", "--config", str(config), "--results-dir", str(tmp_path / "results")]
    assert main([*argv, "--models", "independent"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [
        "genbench: warning: options given for model 'vae' are ignored: this run does not use them "
        "(models: independent; metrics: bpd)"
    ]


@pytest.mark.parametrize(
    ("metric", "options", "message"),
    [
        ("nll", {"k": 0}, "metric 'nll': k must be at least 1, got 0"),
        ("sample_time", {"repeats": 0}, "metric 'sample_time': repeats must be at least 1, got 0"),
        ("kid", {"subset_size": 1}, "metric 'kid': subset_size must be at least 2, got 1"),
        ("fid", {"n_samples": 1}, "metric 'fid': n_samples must be at least 2, got 1"),
        ("fid", {"extractor": "inceptoin"}, "unknown feature extractor 'inceptoin'"),
    ],
)
def test_metric_options_are_checked_before_any_cell(
    tmp_path: Path, metric: str, options: dict[str, object], message: str
) -> None:
    request = RunRequest(
        models=["independent"], metrics=[metric], metric_options={metric: options}, results_dir=tmp_path
    )
    with pytest.raises(GenbenchError, match=message):
        prepare(request)
    assert list(tmp_path.iterdir()) == []


def test_classifier_features_on_a_folder_without_labels_fail_at_prepare(tmp_path: Path) -> None:
    # The default extractor of an unlabelled data set is inception: naming classifier must fail, before training.
    data = write_pngs(tmp_path / "pngs", 6, 8)
    results = tmp_path / "results"
    request = RunRequest(
        ["gan"],
        metrics=["fid"],
        dataset="folder",
        data_root=data,
        results_dir=results,
        metric_options={"fid": {"extractor": "classifier"}},
    )
    with pytest.raises(GenbenchError, match="the classifier feature extractor trains on labels"):
        prepare(request)
    assert not results.exists()


def test_fid_on_labelled_rgb_folders_uses_the_classifier_and_passes_prepare(tmp_path: Path) -> None:
    """Sub-folders are labels, so FID's default extractor is the classifier, which takes RGB as well as gray.

    (Measured by hand, `genbench run --models gan --dataset folder --epochs 1 --metrics fid,kid` on 200 labelled
    32x32 RGB PNGs finishes ok; the classifier's training makes it too slow for the test suite.)
    """
    data = write_pngs(tmp_path / "pngs", 6, 32, classes=("cats", "dogs"))
    request = RunRequest(["gan"], metrics=["fid", "kid"], dataset="folder", data_root=data, results_dir=tmp_path / "r")
    prepared = prepare(request)
    assert prepared.dataset.train.labels is not None and prepared.dataset.info.shape == (3, 32, 32)
    assert not (tmp_path / "r").exists()


def test_a_frechet_distance_of_classifier_features_is_named_fd_classifier_never_fid(tmp_path: Path) -> None:
    """FID is a Fréchet distance of InceptionV3 features (Heusel et al. 2017): on the digits, whose default
    extractor is a classifier trained on their labels, the run writes the distance as fd_classifier, ranked as
    fid was, and declares no fid column; the metric and its options are still called fid."""
    request = RunRequest(
        ["gan"], metrics=["fid"], dataset="digits", results_dir=tmp_path, metric_options={"fid": {"n_samples": 50}}
    )
    prepared = prepare(request)
    assert prepared.metric_columns == [
        "fd_classifier",
        "fd_classifier_eval_std",
        "fd_classifier_eval_n",
        "fd_classifier_infinity",
    ]
    column = prepared.metrics[0].columns[0]
    assert prepared.metrics[0].name == "fid" and prepared.metric_configs["fid"].n_samples == 50
    assert (column.rank, column.higher_is_better, column.description) == (0, False, "FD (classifier features)")


@pytest.mark.parametrize("labelled", [False, True])
def test_a_frechet_distance_of_inception_features_is_named_fid(
    labelled: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, random_inception_weights: Path
) -> None:
    """Unlabelled images default to InceptionV3; labelled ones get it when it is named: either way, fid."""
    monkeypatch.setenv(WEIGHTS_VARIABLE, str(random_inception_weights))
    data = write_pngs(tmp_path / "pngs", 6, 8, classes=("a", "b") if labelled else ())
    options = {"fid": {"extractor": "inception"}} if labelled else {}
    request = RunRequest(
        ["gan"], metrics=["fid"], dataset="folder", data_root=data, results_dir=tmp_path / "r", metric_options=options
    )
    prepared = prepare(request)
    assert (prepared.dataset.train.labels is not None) is labelled
    assert prepared.metric_columns == ["fid", "fid_eval_std", "fid_eval_n", "fid_infinity"]
    assert prepared.metrics[0].columns[0].description == "FID (InceptionV3 features)"


@pytest.mark.slow
def test_missing_inception_weights_fail_at_prepare(tmp_path: Path) -> None:
    data = write_pngs(tmp_path / "pngs", 6, 8)
    args = ["--models", "gan", "--dataset", "folder", "--data-root", str(data), "--metrics", "fid,kid"]
    result = genbench_cli("run", *args, "--inception-weights", "missing.pth", cwd=tmp_path)
    assert_one_line_error_and_nothing_written(result, "inception_weights='missing.pth' is not a file", tmp_path)


def test_inception_weights_that_cannot_be_downloaded_fail_at_prepare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(WEIGHTS_VARIABLE, raising=False)

    def offline(target: Path) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr("genbench_fid.feature_extractor_inception.download_weights", offline)
    data = write_pngs(tmp_path / "pngs", 6, 8)
    results = tmp_path / "results"
    request = RunRequest(["vae"], metrics=["fid"], dataset="folder", data_root=data, results_dir=results)
    with pytest.raises(GenbenchError, match="cannot download the InceptionV3 FID weights"):
        prepare(request)
    assert not results.exists()


def test_a_metric_that_applies_to_no_model_needs_nothing_at_prepare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FID of a likelihood-only model is N/A: the run must not ask for Inception weights it will never use."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(WEIGHTS_VARIABLE, raising=False)
    monkeypatch.setattr("genbench_fid.feature_extractor_inception.download_weights", lambda target: 1 / 0)
    data = write_pngs(tmp_path / "pngs", 6, 8)
    results = tmp_path / "results"
    request = RunRequest(
        ["uniform"], metrics=["fid", "bpd"], dataset="folder", data_root=data, plugins=["shape_plugins"]
    )
    request.results_dir = results
    frame = run_request(request)
    assert frame["status"].tolist() == ["ok"] and frame["bpd"].tolist() == pytest.approx([8.0])
    assert frame["fid"].isna().all()


@pytest.mark.slow
def test_vae_gan_and_pixelcnn_on_32x32_rgb_pngs_finish_with_every_cell_ok(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three built-ins on RGB images from a folder: PixelCNN once refused 3-channel data after the others trained.

    The plain PixelCNN sampler costs 3,072 network passes per 32x32 RGB batch: the 64-image grid of the default
    width takes hours on one CPU core (6.6 s a pass here). So this test keeps the run's code path and shrinks
    what is sampled: a 2-image grid, one timed image, and PixelCNN widths that still need rounding for RGB
    (4 -> 6); the default configs are built for this data by prepare and tested on every shape elsewhere.
    """
    monkeypatch.setattr("genbench.runner.grids.SAMPLE_GRID_SIZE", 2)
    data = write_pngs(tmp_path / "pngs", 10, 32)
    frame = genbench.run(
        ["vae", "gan", "pixelcnn"],
        dataset="folder",
        data_root=data,
        epochs=1,
        metrics=["nll", "bpd", "sample_time"],
        results_dir=tmp_path / "results",
        model_options={"pixelcnn": {"channels": 4, "head_channels": 4, "layers": 1}},
        metric_options={"sample_time": {"batch_size": 1, "repeats": 1, "warmup": 0}},
    )
    assert list(frame["model"]) == ["vae", "gan", "pixelcnn"]
    assert (frame["status"] == "ok").all(), frame["error"].tolist()
    likelihood_models = frame[frame["model"] != "gan"]
    assert likelihood_models["bpd"].notna().all() and (likelihood_models["bpd"] > 0).all()
    assert frame["sample_time"].notna().all()
