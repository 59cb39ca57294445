"""The ``samples`` model: images from an .npz or a PNG folder, checked, served without replacement, measured by FID."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import genbench
from genbench import DataInfo, Dataset, GenbenchError, NotApplicable
from genbench.cli import build_parser, main, request_from_args
from genbench.contract.request import RunRequest
from genbench.registry import DATASET, Registry
from genbench.runner.prepare import prepare
from genbench_samples import SamplesConfig, StoredSamples, to_levels

DIGITS = DataInfo((1, 8, 8), 17)


def save_npz(path: Path, images: torch.Tensor) -> Path:
    np.savez(path, images=images.numpy())
    return path


def save_png_folder(folder: Path, images: torch.Tensor, levels: int) -> Path:
    """Gray images stretched to 0..255 as image tools save them: round(v 255 / (levels - 1))."""
    folder.mkdir(parents=True)
    scaled = (images.double() * 255 / (levels - 1)).round().to(torch.uint8)
    for index, image in enumerate(scaled):
        Image.fromarray(image[0].numpy(), mode="L").save(folder / f"{index:05d}.png")
    return folder


def served(path: Path | None, info: DataInfo = DIGITS, **options: Any) -> StoredSamples:
    config = SamplesConfig(**options) if path is None else SamplesConfig(path=str(path), **options)
    return StoredSamples(config, info)


# ------------------------------------------------------------------------------------------ reading files


def test_npz_in_either_layout_and_png_folder_give_back_the_images(tmp_path: Path, digits: Dataset) -> None:
    images = digits.test.images[:50]
    nchw = served(save_npz(tmp_path / "nchw.npz", images))
    nhwc = served(save_npz(tmp_path / "nhwc.npz", images.permute(0, 2, 3, 1).contiguous()))
    pngs = served(save_png_folder(tmp_path / "pngs", images, digits.test.levels))
    for model in (nchw, nhwc, pngs):
        assert torch.equal(model.sample(50, torch.Generator()), images)
    assert nchw.origin["sha256"] == hashlib.sha256((tmp_path / "nchw.npz").read_bytes()).hexdigest()
    assert pngs.origin["file_levels"] == 256 and nchw.origin["file_levels"] == 17


@pytest.mark.parametrize(
    ("file_levels", "levels", "stored", "expected"),
    [
        (256, 2, [0, 127, 128, 255], [0, 0, 1, 1]),  # halfway, 127.5, rounds up
        (256, 17, [0, 8, 24, 255], [0, 1, 2, 16]),  # 8 * 16/255 = 0.502 -> 1; 24 * 16/255 = 1.506 -> 2
        (17, 17, [0, 16], [0, 16]),
        (2, 256, [0, 1], [0, 255]),
    ],
)
def test_levels_map_by_rounding_half_up(file_levels: int, levels: int, stored: list[int], expected: list[int]) -> None:
    images = torch.tensor(stored, dtype=torch.uint8).reshape(-1, 1, 1, 1)
    assert to_levels(images, file_levels, levels, Path("x")).flatten().tolist() == expected


def test_every_digit_value_survives_a_round_trip_through_8_bit() -> None:
    values = torch.arange(17, dtype=torch.uint8).reshape(-1, 1, 1, 1)
    stretched = (values.double() * 255 / 16).round().to(torch.uint8)
    assert torch.equal(to_levels(stretched, 256, 17, Path("x")), values)


def write_bad_files(folder: Path) -> dict[str, tuple[Path | None, dict[str, Any], str]]:
    """(path, options, what the error says) for files the samples model refuses."""
    digits = torch.randint(0, 17, (4, 1, 8, 8), dtype=torch.uint8)
    np.savez(folder / "two.npz", a=digits.numpy(), b=digits.numpy())
    np.savez(folder / "objects.npz", images=np.array([{"x": 1}], dtype=object))
    np.savez(folder / "floats.npz", images=digits.float().numpy())
    rgb = folder / "rgb"
    rgb.mkdir()
    Image.new("RGB", (8, 8)).save(rgb / "0.png")
    big = folder / "big"
    big.mkdir()
    Image.new("L", (9, 8)).save(big / "0.png")
    return {
        "8-bit values in an npz of digits": (
            save_npz(folder / "eight_bit.npz", digits * 15),
            {},
            "holds values up to 240, above the 17 levels (0..16)",
        ),
        "channels": (save_npz(folder / "rgb.npz", digits.repeat(1, 3, 1, 1)), {}, "the data set's are (C, H, W)"),
        "size": (save_npz(folder / "size.npz", digits[:, :, :7]), {}, "(1, 7, 8)"),
        "two arrays": (folder / "two.npz", {}, "holds 2 arrays"),
        "object array": (folder / "objects.npz", {}, "without pickle"),
        "float array": (folder / "floats.npz", {}, "holds float32"),
        "rgb images of gray data": (rgb, {}, "has mode RGB"),
        "image size": (big, {}, "is 9x8; the data set's images are 8x8"),
        "not npz": (save_npz(folder / "x.npz", digits).rename(folder / "x.npy"), {}, "neither an .npz"),
        "no path": (None, {}, "needs a file"),
        "file levels": (save_npz(folder / "good.npz", digits), {"file_levels": 1}, "file_levels must be in [2, 256]"),
    }


def test_files_that_do_not_fit_the_data_are_refused(tmp_path: Path) -> None:
    for case, (path, options, message) in write_bad_files(tmp_path).items():
        with pytest.raises(GenbenchError) as raised:
            served(path, **options)
        assert message in str(raised.value), case
        assert "\n" not in str(raised.value)


def test_a_bad_file_stops_the_run_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    save_npz(tmp_path / "bright.npz", torch.full((4, 1, 8, 8), 255, dtype=torch.uint8))
    assert main(["run", "--sample-set", "mine=bright.npz"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "holds values up to 255" in line and "file_levels = 256" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bright.npz"]


# ---------------------------------------------------------------------------------------------- serving


def test_images_come_in_file_order_without_repeats_per_generator(tmp_path: Path) -> None:
    images = torch.arange(10, dtype=torch.uint8).reshape(10, 1, 1, 1).expand(10, 1, 8, 8).contiguous()
    model = served(save_npz(tmp_path / "ten.npz", images))
    first, second = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert model.sample(4, first)[:, 0, 0, 0].tolist() == [0, 1, 2, 3]
    assert model.sample(4, first)[:, 0, 0, 0].tolist() == [4, 5, 6, 7]  # the same stream goes on
    assert model.sample(3, second)[:, 0, 0, 0].tolist() == [0, 1, 2]  # another stream starts again
    assert model.sample(1, first)[:, 0, 0, 0].tolist() == [8]  # and the first goes on where it stopped
    with pytest.raises(NotApplicable) as raised:
        model.sample(4, first)
    assert "ten.npz holds 10 images, fewer than this draw asks for (13 so far)" in str(raised.value)


# ----------------------------------------------------------------------------------- through the runner


@pytest.fixture(scope="module")
def fid_run(tmp_path_factory: pytest.TempPathFactory, registry: Registry, shared_cache: Path) -> pd.DataFrame:
    """One run: the independent baseline and three sample sets, measured by FID with the classifier features."""
    folder = tmp_path_factory.mktemp("samples")
    # The runner caches beside the results: link that to the session's cache, so the classifier is trained once.
    (folder / "results").mkdir()
    (folder / "results" / ".cache").symlink_to(shared_cache, target_is_directory=True)
    digits = registry.get(DATASET, "digits").load(genbench.DatasetOptions())
    sets = {
        "test_split": save_npz(folder / "test.npz", digits.test.images),
        "train_split": save_png_folder(folder / "train_png", digits.train.images, digits.train.levels),
        "too_few": save_npz(folder / "few.npz", digits.test.images[:100]),
    }
    return genbench.run(
        ["independent"], metrics=["fid", "sample_time"], results_dir=folder / "results", sample_sets=sets
    )


def record_of(frame: pd.DataFrame, model: str) -> dict[str, Any]:
    cell = frame.loc[frame["model"] == model, "cell_id"].item()
    record: dict[str, Any] = json.loads((Path(frame.attrs["run_dir"]) / "cells" / f"{cell}.json").read_text())
    return record


def test_the_test_split_as_samples_has_fid_zero(fid_run: pd.DataFrame) -> None:
    record = record_of(fid_run, "test_split")
    assert record["status"] == "ok"
    assert record["metrics"]["fd_classifier"] == pytest.approx(0.0, abs=1e-6)
    assert "fid" not in fid_run.columns  # a Fréchet distance of classifier features is no FID
    assert record["provenance"]["fid"]["n_fake"] == record["provenance"]["fid"]["n_real"] == 359


def test_the_training_split_as_png_beats_the_independent_baseline(fid_run: pd.DataFrame) -> None:
    fid = dict(zip(fid_run["model"], fid_run["fd_classifier"], strict=True))
    assert math.isfinite(fid["independent"]) and fid["train_split"] < fid["independent"]


def test_more_images_asked_than_stored_is_not_applicable_with_both_counts(fid_run: pd.DataFrame) -> None:
    record = record_of(fid_run, "too_few")
    assert record["status"] == "ok" and "fd_classifier" not in record["metrics"]
    assert record["not_applicable"]["fd_classifier"].startswith("asked for 359 images; few.npz holds 100 images")


def test_a_sample_set_is_a_row_of_its_own_that_was_never_trained(fid_run: pd.DataFrame) -> None:
    assert list(fid_run["model"]) == ["independent", "test_split", "train_split", "too_few"]
    record = record_of(fid_run, "train_split")
    origin = record["provenance"]["origin"]
    assert origin["plugin"] == "samples" and origin["file"] == "train_png" and origin["images"] == 1438
    assert record["trained"] is False and record["train_time"] is None
    assert "nothing is trained" in record["not_applicable"]["train_time"]
    assert "read from a file" in record["not_applicable"]["sample_time"]
    assert record["cell_id"].startswith("train_split-digits-seed0-")
    leaderboard = (Path(fid_run.attrs["run_dir"]) / "leaderboard.md").read_text()
    assert f"origin: samples train_png, sha256 {origin['sha256']}" in leaderboard
    assert "| fd_classifier (distance²) ↓ |" in leaderboard


def test_the_samples_model_by_name_with_its_path_option(tmp_path: Path, digits: Dataset) -> None:
    path = save_npz(tmp_path / "test.npz", digits.test.images)
    request = RunRequest(models=["samples"], model_options={"samples": {"path": str(path)}})
    origin = prepare(request).origins["samples"]
    assert origin.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert request.run_name() == "digits-samples"


def test_sample_sets_alone_make_a_run_of_their_own_unless_models_are_named(registry: Registry) -> None:
    parser, dests = build_parser(registry)
    alone = request_from_args(parser.parse_args(["run", "--sample-set", "a=x.npz", "--sample-set", "b=pngs"]), dests)
    assert alone.models == [] and alone.sample_sets == {"a": Path("x.npz"), "b": Path("pngs")}
    beside = request_from_args(parser.parse_args(["run", "--models", "vae", "--sample-set", "a=x.npz"]), dests)
    assert beside.models == ["vae"] and beside.run_name() == "digits-vae+a"
