"""Precomputed FID reference statistics: ``genbench stats`` writes pytorch-fid's .npz layout, ``fid`` reads any
tool's file (``reference_statistics`` / --fid-reference), checks it, and says which file it used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import genbench
from conftest import TESTS
from genbench import Dataset, EvalContext, GenbenchError
from genbench.cli import main
from genbench.registry import Registry
from genbench.runner.statistics import StatsRequest, write_stats
from genbench.toolkit.reference import read_reference_statistics, write_reference_statistics
from genbench_fid.metric_fid import FidConfig, compute_fid


class InOrder:
    """Returns given images in order, n at a time: with n = their count, the samples ARE those images."""

    capabilities = frozenset({genbench.SAMPLE})

    def __init__(self, images: torch.Tensor) -> None:
        self.images, self.position = images, 0

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        batch = self.images[self.position : self.position + n]
        self.position += n
        return batch


def fid(model: Any, dataset: Dataset, registry: Registry, cache: Path, **options: Any) -> genbench.MetricResult:
    ctx = EvalContext(
        dataset, torch.device("cpu"), 0, torch.Generator().manual_seed(0), FidConfig(**options), registry, cache
    )
    return compute_fid(model, ctx)


@pytest.fixture
def results_dir(tmp_path: Path, shared_cache: Path) -> Path:
    """A results folder whose .cache is the session's, so the digits classifier is trained once for all tests."""
    results = tmp_path / "results"
    results.mkdir()
    (results / ".cache").symlink_to(shared_cache, target_is_directory=True)
    return results


def stats(registry: Registry, results_dir: Path, out: Path, split: str) -> dict[str, Any]:
    return write_stats(StatsRequest("digits", split, out, results_dir=results_dir), registry)


# ------------------------------------------------------------------------------------------ the file format


def test_the_file_is_pytorch_fids_layout_in_float64(tmp_path: Path) -> None:
    mu, sigma = np.arange(3.0), np.eye(3)
    path = tmp_path / "stats.npz"
    write_reference_statistics(path, mu, sigma, {"extractor": {"name": "x"}})
    with np.load(path, allow_pickle=False) as archive:  # as pytorch-fid reads it: f["mu"][:], f["sigma"][:]
        assert archive["mu"].dtype == np.float64 and archive["sigma"].dtype == np.float64
        np.testing.assert_array_equal(archive["mu"][:], mu)
        np.testing.assert_array_equal(archive["sigma"][:], sigma)
        assert json.loads(str(archive["genbench"])) == {"extractor": {"name": "x"}}
    read = read_reference_statistics(path)
    assert read.meta == {"extractor": {"name": "x"}} and len(read.sha256) == 64


def test_a_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "stats.npz"
    path.write_bytes(b"mine")
    with pytest.raises(GenbenchError, match="exists; genbench stats never overwrites"):
        write_reference_statistics(path, np.zeros(2), np.eye(2), {})
    assert path.read_bytes() == b"mine"


def write_npz(path: Path, **arrays: Any) -> Path:
    np.savez_compressed(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"m": np.zeros(2), "s": np.eye(2)}, r"holds arrays \['m', 's'\], not 'mu' and 'sigma'"),
        ({"mu": np.zeros(2), "sigma": np.eye(3)}, r"mu must have shape \(d,\) and sigma \(d, d\)"),
        ({"mu": np.zeros((2, 2)), "sigma": np.eye(2)}, r"mu must have shape \(d,\)"),
        ({"mu": np.array(["a", "b"]), "sigma": np.eye(2)}, "must be floating point"),
        ({"mu": np.array([0.0, np.nan]), "sigma": np.eye(2)}, "NaN or infinite"),
        ({"mu": np.zeros(2), "sigma": np.eye(2), "genbench": np.array("{")}, "record is not JSON"),
        ({"mu": np.array([{"a": 1}, None], dtype=object), "sigma": np.eye(2)}, "not an .npz file of plain arrays"),
    ],
)
def test_bad_files_are_one_line_errors(arrays: dict[str, Any], message: str, tmp_path: Path) -> None:
    path = write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(GenbenchError, match=message) as error:
        read_reference_statistics(path)
    assert "\n" not in str(error.value)


def test_a_file_that_is_not_an_npz_or_missing_is_explained(tmp_path: Path) -> None:
    (tmp_path / "text.npz").write_text("mu, sigma")
    with pytest.raises(GenbenchError, match=r"not an \.npz file of plain arrays"):
        read_reference_statistics(tmp_path / "text.npz")
    with pytest.raises(GenbenchError, match="do not exist; write them with genbench stats"):
        read_reference_statistics(tmp_path / "missing.npz")


# ------------------------------------------------------------------------------------------ fid with a file


@pytest.mark.slow
def test_stats_written_then_read_give_the_fid_of_the_in_process_reference(
    digits: Dataset, registry: Registry, shared_cache: Path, results_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "digits-train.npz"
    meta = stats(registry, results_dir, path, "train")
    assert meta["count"] == len(digits.train) and meta["extractor"]["name"] == "classifier"
    model = InOrder(digits.train.images[::3])
    in_process = fid(model, digits, registry, shared_cache, n_samples=200, reference_split="train")
    model.position = 0
    from_file = fid(model, digits, registry, shared_cache, n_samples=200, reference_statistics=str(path))
    assert from_file.values["fd_classifier"] == in_process.values["fd_classifier"]
    provenance = from_file.provenance
    assert provenance["reference"] == f"file digits-train.npz, sha256 {read_reference_statistics(path).sha256}"
    assert provenance["extractor_match"].startswith("checked")
    assert provenance["n_real"] == len(digits.train)
    assert provenance["reference_file_record"]["split"] == "train"


def test_test_split_stats_against_the_test_images_themselves_give_fid_zero(
    digits: Dataset, registry: Registry, shared_cache: Path, results_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "digits-test.npz"
    stats(registry, results_dir, path, "test")
    result = fid(InOrder(digits.test.images), digits, registry, shared_cache, reference_statistics=str(path))
    assert result.provenance["n_fake"] == len(digits.test)
    assert abs(result.values["fd_classifier"]) < 1e-6


def test_a_file_from_another_tool_is_used_and_flagged_unchecked(
    digits: Dataset, registry: Registry, shared_cache: Path, results_dir: Path, tmp_path: Path
) -> None:
    ours = read_reference_statistics(_written(registry, results_dir, tmp_path / "ours.npz"))
    theirs = write_npz(tmp_path / "theirs.npz", mu=ours.mu.astype(np.float32), sigma=ours.sigma)
    result = fid(InOrder(digits.test.images), digits, registry, shared_cache, reference_statistics=str(theirs))
    assert result.provenance["extractor_match"].startswith("unchecked")
    assert abs(result.values["fd_classifier"]) < 1e-3  # mu was rounded to float32 on the way


def test_statistics_of_another_extractor_are_refused(
    digits: Dataset, registry: Registry, shared_cache: Path, results_dir: Path, tmp_path: Path
) -> None:
    ours = read_reference_statistics(_written(registry, results_dir, tmp_path / "ours.npz"))
    other = {"extractor": {"name": "inception", "weights_sha256": "0123456789abcdef"}}
    path = tmp_path / "other.npz"
    write_reference_statistics(path, ours.mu, ours.sigma, other)
    with pytest.raises(GenbenchError, match=r"holds statistics of extractor 'inception'.*they must match"):
        fid(InOrder(digits.test.images), digits, registry, shared_cache, reference_statistics=str(path))


def test_statistics_of_the_wrong_dimension_are_refused(
    digits: Dataset, registry: Registry, shared_cache: Path, tmp_path: Path
) -> None:
    path = write_npz(tmp_path / "small.npz", mu=np.zeros(5), sigma=np.eye(5))
    with pytest.raises(GenbenchError, match="reference statistics are 5-d but extractor 'classifier' gives 128-d"):
        fid(InOrder(digits.test.images), digits, registry, shared_cache, reference_statistics=str(path))


def _written(registry: Registry, results_dir: Path, path: Path) -> Path:
    stats(registry, results_dir, path, "test")
    return path


# ----------------------------------------------------------------------------------------- the command line


def genbench_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    return subprocess.run(
        [sys.executable, "-m", "genbench.cli", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.slow
def test_genbench_stats_then_run_with_fid_reference(
    results_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "digits-test.npz"
    first = genbench_cli("stats", "--dataset", "digits", "--split", "test", "--out", str(out), cwd=results_dir.parent)
    assert first.returncode == 0, first.stderr
    assert f"wrote {out}: mu, sigma of 359 digits test images (classifier)" in first.stdout

    monkeypatch.chdir(results_dir.parent)  # the rest in process: a subprocess start costs seconds here
    assert main(["stats", "--dataset", "digits", "--out", str(out)]) == 2
    assert "exists; genbench stats never overwrites" in capsys.readouterr().err
    assert main(["run", "--models", "independent", "--metrics", "fid", "--fid-reference", str(out)]) == 0
    records = list((results_dir / "digits-independent" / "cells").glob("*.json"))
    provenance = json.loads(records[0].read_text())["provenance"]["fid"]
    assert provenance["reference"].startswith("file digits-test.npz, sha256 ")
    assert provenance["extractor_match"].startswith("checked")


def test_genbench_stats_rejects_a_bad_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["stats", "--dataset", "digits", "--split", "valid", "--out", "x.npz"]) == 2
    assert "invalid choice: 'valid'" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()
