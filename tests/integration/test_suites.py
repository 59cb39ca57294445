"""Named suites: every packaged suite is well formed and listed; suite < config file < flags; and each suite runs
end to end on a small stand-in of its data set (a few hundred images the test writes, --epochs 1, small counts)."""

from __future__ import annotations

import dataclasses
import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from genbench import GenbenchError
from genbench.api import run_request
from genbench.cli import build_parser, main, request_from_args
from genbench.registry import DATASET, Registry, load_plugins
from genbench.suites import load_suite, parse_suite, suite_names

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------------------- the packaged files


def test_the_required_suites_are_packaged() -> None:
    assert {"digits", "binarized-mnist", "cifar10"} <= set(suite_names())


@pytest.mark.parametrize("name", suite_names())
def test_every_suite_is_well_formed_and_its_references_are_cited(name: str, registry: Registry) -> None:
    suite = load_suite(name)
    assert suite.name == name and suite.version >= 1 and suite.description
    request = request_from_args(build_parser(registry)[0].parse_args(["run", "--suite", name]))
    assert request.suite == {
        "name": name,
        "version": suite.version,
        "sha256": suite.sha256[:16],
        "reference": suite.reference,  # the published rows, as run.json records them for the report
    }
    for key, reference in suite.reference.items():
        assert {"model", "metric", "value", "unit", "source"} <= set(reference), key
        assert reference["metric"] in (request.metrics or registry.names("metric")), key
    for model in request.model_options:
        assert model in request.models  # no options for a model the suite does not run


def test_the_docs_give_every_published_number_of_every_suite() -> None:
    page = (REPO / "docs" / "suites.md").read_text()
    for name in suite_names():
        assert f"`{name}`" in page
        for reference in load_suite(name).reference.values():
            assert f"{reference['value']:.2f}" in page, (name, reference)


def test_the_digits_suite_is_the_default_run(registry: Registry) -> None:
    parser = build_parser(registry)[0]
    default = request_from_args(parser.parse_args(["run"]))
    suite = request_from_args(parser.parse_args(["run", "--suite", "digits"]))
    assert default.models == []  # none named: prepare takes those the plugins offer as defaults
    assert (suite.models, suite.dataset, suite.seeds, suite.metrics) == (
        registry.default_models(),
        default.dataset,
        default.seeds,
        default.metrics,
    )
    resolved = dataclasses.replace(default, models=registry.default_models())
    assert suite.run_name() == resolved.run_name()  # so --suite digits resumes the default run


def test_metadata_mistakes_in_a_suite_file_are_explained() -> None:
    with pytest.raises(GenbenchError, match="says name = 'other'"):
        parse_suite("mine", 'name = "other"\nversion = 1\ndescription = "d"\n')
    with pytest.raises(GenbenchError, match="needs an integer version"):
        parse_suite("mine", 'name = "mine"\nversion = "1"\ndescription = "d"\n')
    with pytest.raises(GenbenchError, match=r"unknown settings \['modles'\]"):
        parse_suite("mine", 'name = "mine"\nversion = 1\ndescription = "d"\nmodles = ["vae"]\n')


# ---------------------------------------------------------------------------------------------- the layers


def test_suite_then_config_file_then_flags(tmp_path: Path, registry: Registry) -> None:
    config = tmp_path / "mine.toml"
    config.write_text("seeds = [5]\n[metric.fid]\nn_samples = 500\n[model.gan]\nwidth = 16\n")
    args = ["run", "--suite", "cifar10", "--config", str(config), "--models", "gan,vae", "--epochs", "2"]
    request = request_from_args(build_parser(registry)[0].parse_args(args))
    assert request.dataset == "cifar10"  # from the suite
    assert request.seeds == [5]  # the config file over the suite
    assert request.models == ["gan", "vae"] and request.epochs == 2  # flags over both
    # Option tables merge option by option: the config changes n_samples and keeps the suite's other fid options.
    assert request.metric_options["fid"] == {
        "extractor": "inception",
        "n_samples": 500,
        "n_real": 10000,
        "repeats": 3,
        "batch_size": 500,
        "reference_split": "train",
    }
    assert request.model_options["gan"]["width"] == 16 and request.model_options["gan"]["latent_dim"] == 128


def test_flags_that_narrow_a_suite_drop_its_options_for_what_is_left_out(tmp_path: Path, registry: Registry) -> None:
    parser = build_parser(registry)[0]
    request = request_from_args(parser.parse_args(["run", "--suite", "cifar10", "--models", "gan", "--metrics", "fid"]))
    assert set(request.model_options) == {"gan"} and set(request.metric_options) == {"fid"}
    config = tmp_path / "mine.toml"
    config.write_text("[model.vae]\nhidden = 8\n")
    args = ["run", "--suite", "cifar10", "--config", str(config), "--models", "gan"]
    request = request_from_args(parser.parse_args(args))
    assert set(request.model_options) == {"gan", "vae"}  # the config file's table stays, for prepare to report


def test_an_unknown_suite_is_one_line_with_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--suite", "binarised-mnist"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert "unknown suite 'binarised-mnist'. Did you mean 'binarized-mnist' or 'binarized-mnist-dynamic'?" in error
    assert "Available: binarized-mnist, binarized-mnist-dynamic, cifar10, digits" in error


def test_genbench_suites_lists_name_version_description(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suites"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "version", "description"]
    for name in suite_names():
        row = next(line for line in lines if line.startswith(name + " "))
        assert f"v{load_suite(name).version}" in row.split() and load_suite(name).description in row
    assert main(["suites", "cifar10"]) == 0
    assert capsys.readouterr().out == load_suite("cifar10").text


# ------------------------------------------------------------------------------------------- the stand-ins


def run_suite(args: list[str], registry: Registry | None = None) -> tuple[object, dict[str, object]]:
    request = request_from_args(build_parser(registry)[0].parse_args(["run", *args]))
    frame = run_request(request, registry=registry)
    run_info = json.loads((Path(frame.attrs["run_dir"]) / "run.json").read_text())
    return frame, run_info


def cells(run_dir: Path) -> dict[str, dict[str, object]]:
    records = [json.loads(path.read_text()) for path in (run_dir / "cells").glob("*.json")]
    return {record["model"]: record for record in records}


#: Sampling a PixelCNN takes one forward pass per pixel (64 images for every run's sample grid): a narrow one keeps
#: the suite tests to seconds on one CPU core.
TINY_PIXELCNN = "[model.pixelcnn]\nchannels = 12\nlayers = 1\nhead_channels = 12\nfirst_kernel = 3\n"


@pytest.fixture
def results_dir(tmp_path: Path, shared_cache: Path) -> Path:
    results = tmp_path / "results"
    results.mkdir()
    (results / ".cache").symlink_to(shared_cache, target_is_directory=True)  # the session's trained classifiers
    return results


@pytest.mark.slow
def test_the_digits_suite_runs(results_dir: Path, tmp_path: Path, registry: Registry) -> None:
    small = tmp_path / "small.toml"
    small.write_text(
        f"{TINY_PIXELCNN}[metric.nll]\nk = 4\n[metric.bpd]\nk = 4\n"
        + "".join(f"[metric.{m}]\nn_samples = 100\n" for m in ("fid", "is", "precision_recall"))
        + "[metric.kid]\nn_samples = 100\nsubset_size = 40\nsubsets = 4\n"
        + "[metric.sample_time]\nbatch_size = 4\nrepeats = 1\n"
    )
    args = ["--suite", "digits", "--config", str(small), "--epochs", "1", "--results-dir", str(results_dir)]
    frame, run_info = run_suite(args, registry)
    assert list(frame["status"]) == ["ok", "ok", "ok"], frame["error"].tolist()
    assert run_info["request"]["suite"]["name"] == "digits"
    for column in ("fd_classifier", "kid", "is", "precision", "recall", "nll", "bpd", "sample_time"):
        assert column in frame.columns
    assert frame.set_index("model").loc["gan", "is"] > 1.0


def write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST's IDX format: two zero bytes, type 0x08 (unsigned byte), the rank, big-endian sizes, the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def strokes(count: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gray images of one bright bar each (its position the label): data with structure, written in a moment."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count)
    images = rng.integers(0, 40, (count, size, size))
    rows = np.linspace(1, size - 3, 10).astype(int)
    for image, label in zip(images, labels, strict=True):
        image[rows[label] : rows[label] + 2, 3 : size - 3] = 250
    return images, labels


@pytest.mark.slow  # a VAE fitted and its IWAE bound, about 20 s on a loaded CPU
def test_the_dynamic_binarized_mnist_suite_runs_on_a_stand_in(
    results_dir: Path, tmp_path: Path, registry: Registry
) -> None:
    root = tmp_path / "mnist"
    root.mkdir()
    for stem, count, seed in (("train", 300, 0), ("t10k", 100, 1)):
        # 16x16, not 28x28: the PixelCNN samples its grid pixel by pixel, and the IDX format holds any size.
        images, labels = strokes(count, 16, seed)
        write_idx(root / f"{stem}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{stem}-labels-idx1-ubyte.gz", labels)
    small = tmp_path / "small.toml"
    small.write_text("[model.vae]\nbatch_size = 100\n[metric.nll]\nk = 8\n[metric.bpd]\nk = 8\n")
    args = ["--suite", "binarized-mnist-dynamic", "--config", str(small), "--data-root", str(root), "--epochs", "1"]
    args += ["--seeds", "0", "--results-dir", str(results_dir), "--allow-incomplete-data"]  # a 300-image stand-in
    frame, run_info = run_suite(args, registry)
    assert list(frame["status"]) == ["ok"], frame["error"].tolist()
    assert set(frame.columns) >= {"nll", "bpd"} and not {"fid", "fd_classifier"} & set(frame.columns)
    assert run_info["request"]["suite"]["name"] == "binarized-mnist-dynamic"
    assert run_info["dataset"]["binarized"] is True and run_info["dataset"]["levels"] == 2
    assert run_info["dataset"]["binarization"].startswith("dynamic")
    assert run_info["dataset"]["incomplete_data_missing"]  # recorded: every number is marked not comparable
    records = cells(Path(frame.attrs["run_dir"]))
    assert records["vae"]["config"]["latent_dim"] == 50 and records["vae"]["config"]["hidden"] == 200  # the suite's
    assert records["vae"]["provenance"]["nll"]["settings"]["k"] == 8  # the config file's, over the suite's 5000


CIFAR_RECORD = 1 + 3 * 32 * 32  # one label byte, then the R, G and B planes of 32x32, row-major


def write_cifar10_batches(root: Path, per_batch: int, test: int) -> None:
    """The official binary version's files, with few records: data_batch_1..5.bin and test_batch.bin."""
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    names = [*(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin"]
    for seed, name in enumerate(names):
        count = test if name == "test_batch.bin" else per_batch
        images, labels = strokes(count, 32, seed)
        planes = np.stack([images, 255 - images, images // 2], axis=1)  # (n, 3, 32, 32): R, G, B planes
        records = np.concatenate([labels[:, None], planes.reshape(count, -1)], axis=1).astype(np.uint8)
        assert records.shape[1] == CIFAR_RECORD
        (folder / name).write_bytes(records.tobytes())


@pytest.mark.slow
def test_the_cifar10_suite_runs_on_a_stand_in(results_dir: Path, tmp_path: Path) -> None:
    registry = load_plugins(["suite_stand_ins"])
    if "cifar10" not in registry.names(DATASET):
        pytest.skip("no cifar10 data set is registered in this build")
    root = tmp_path / "data"
    write_cifar10_batches(root, per_batch=20, test=40)
    shared = "extractor = 'pixels'\nn_samples = 40\nbatch_size = 20\n"
    small = tmp_path / "small.toml"
    small.write_text(
        "[model.vae]\nhidden = 64\nlatent_dim = 8\n[model.gan]\nwidth = 8\nd_width = 8\nlatent_dim = 16\n"
        "[model.pixelcnn]\nchannels = 12\nlayers = 1\nhead_channels = 12\n"
        "[metric.nll]\nk = 2\n[metric.bpd]\nk = 2\n[metric.sample_time]\nbatch_size = 2\nrepeats = 1\n"
        + "".join(f"[metric.{m}]\n{shared}n_real = 50\n" for m in ("fid", "precision_recall"))
        + f"[metric.is]\n{shared}"
        + f"[metric.kid]\n{shared}n_real = 50\nsubset_size = 10\nsubsets = 3\n"
    )
    args = ["--suite", "cifar10", "--config", str(small), "--data-root", str(root), "--epochs", "1"]
    args += ["--allow-incomplete-data"]  # 100 training images, not 50,000
    args += ["-p", "suite_stand_ins", "--results-dir", str(results_dir)]
    frame, run_info = run_suite(args, registry)
    assert list(frame["model"]) == ["vae", "gan", "pixelcnn"]
    assert list(frame["status"]) == ["ok", "ok", "ok"], frame["error"].tolist()
    assert run_info["request"]["suite"]["name"] == "cifar10"
    assert run_info["dataset"]["shape"] == [3, 32, 32]
    records = cells(Path(frame.attrs["run_dir"]))
    fid = records["gan"]["provenance"]["fid"]
    assert fid["reference_split"] == "train" and fid["n_real"] == 50 and fid["n_fake"] == 40
    assert fid["repeats"] == 3 and len(fid["evaluations"]["fd_pixels"]) == 3  # Mimicry's three evaluations
    assert (
        records["gan"]["metrics"]["fd_pixels_eval_n"] == 3
        and records["gan"]["config"]["architecture"] == "resnet_mimicry"
    )
    assert records["gan"]["provenance"]["is"]["splits"] == 10
    assert {"fd_pixels", "kid", "is", "precision", "recall", "bpd"} <= set(frame.columns)  # a stand-in's FD
