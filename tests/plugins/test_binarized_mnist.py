"""Binarized MNIST as the papers had it: Larochelle & Murray's .amat files (stand-ins written here), and the
dynamic binarization of Burda et al. (every training minibatch redrawn, the test set drawn once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from plugins.test_mnist_split import idx_bytes

from data_files import write_amat
from genbench import DataInfo, DatasetOptions, FitContext, GenbenchError, ImageData
from genbench.registry import MODEL, Registry
from genbench.toolkit.data import INCOMPLETE, dynamic_binarization
from genbench.toolkit.training import iterate_minibatches
from genbench_datasets import binarized_mnist
from genbench_datasets.binarized_mnist import load_binarized_mnist
from genbench_datasets.mnist import load_mnist_dynamic


def test_amat_files_load_with_their_counts_and_values(tmp_path: Path) -> None:
    arrays = write_amat(tmp_path / "binarized_mnist")
    data = load_binarized_mnist(DatasetOptions(root=tmp_path))
    assert (len(data.train), len(data.test), data.provenance["n_valid"]) == (7, 5, 3)
    assert data.train.levels == 2 and data.train.shape == (1, 28, 28)
    assert np.array_equal(data.train.images.reshape(7, 784).numpy(), arrays["train"])
    assert np.array_equal(data.test.images.reshape(5, 784).numpy(), arrays["test"])
    assert data.provenance["binarization"] == "fixed file: Larochelle & Murray (2011)"
    # Stand-ins smaller than the published files are marked, so that no suite takes them for the real data.
    assert data.provenance[INCOMPLETE][0] == "binarized_mnist_train.amat: 7 of 50,000 images"


def test_a_damaged_or_missing_amat_file_is_named(tmp_path: Path) -> None:
    write_amat(tmp_path)
    (tmp_path / "binarized_mnist_valid.amat").write_text("0 1 0\n")
    with pytest.raises(GenbenchError, match=r"binarized_mnist_valid\.amat line 1 has 3 values, not 784"):
        load_binarized_mnist(DatasetOptions(root=tmp_path))
    (tmp_path / "binarized_mnist_valid.amat").unlink()
    with pytest.raises(GenbenchError, match=r"needs binarized_mnist_valid\.amat .*--download"):
        load_binarized_mnist(DatasetOptions(root=tmp_path))


def test_download_fetches_and_checks_each_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "server"
    write_amat(source, {"train": 2, "valid": 1, "test": 1})  # the train file is one image short: refused
    fetched: list[str] = []

    def fake_fetch(url: str, target: Path) -> None:
        fetched.append(url)
        target.write_bytes((source / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(binarized_mnist, "fetch", fake_fetch)
    monkeypatch.setattr(binarized_mnist, "COUNTS", {"train": 3, "valid": 1, "test": 1})
    (tmp_path / "data").mkdir()
    with pytest.raises(GenbenchError, match="holds 2 images, not 3"):
        load_binarized_mnist(DatasetOptions(root=tmp_path / "data", download=True))
    assert fetched == [binarized_mnist.URL.format(split="train")]
    assert not list((tmp_path / "data" / "binarized_mnist").iterdir())  # nothing half-written kept


def grey(n: int = 40) -> ImageData:
    generator = torch.Generator().manual_seed(3)
    return ImageData(torch.randint(0, 256, (n, 1, 4, 4), generator=generator, dtype=torch.uint8), 256)


def epoch(data: ImageData, seed: int) -> list[torch.Tensor]:
    return list(iterate_minibatches(data, 8, torch.Generator().manual_seed(seed), shuffle=False))


def test_dynamic_binarization_redraws_every_minibatch_reproducibly() -> None:
    data = dynamic_binarization(grey(), seed=0)
    generator = torch.Generator().manual_seed(1)
    first = list(iterate_minibatches(data, 8, generator, shuffle=False))
    second = list(iterate_minibatches(data, 8, generator, shuffle=False))
    assert all(set(batch.unique().tolist()) <= {0, 1} for batch in first)
    # The same images (no shuffle), drawn afresh each epoch; and neither epoch is the fixed draw.
    assert not torch.equal(torch.cat(first), torch.cat(second))
    assert not torch.equal(torch.cat(first), data.images)
    assert all(torch.equal(a, b) for a, b in zip(epoch(data, 5), epoch(data, 5), strict=True))
    # The draws follow the probabilities: over many epochs each pixel's mean nears grey / 255.
    means = torch.stack([torch.cat(epoch(data, s)).double() for s in range(200)]).mean(0)
    assert torch.allclose(means, data.binarize_from.images.double() / 255, atol=0.15)  # type: ignore[union-attr]
    # A static data set's batches are its fixed images.
    static = ImageData(data.images, 2)
    assert torch.equal(torch.cat(epoch(static, 5)), data.images)


def test_the_dynamic_mnist_test_set_is_fixed_and_the_split_is_burdas(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 410), ("t10k", 6)):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(rng.integers(0, 256, (n, 28, 28))))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(rng.integers(0, 10, (n,))))
    first, second = (load_mnist_dynamic(DatasetOptions(root=tmp_path)) for _ in range(2))
    assert (len(first.train), len(first.test)) == (10, 6)  # the last 400 training images are validation
    assert torch.equal(first.test.images, second.test.images) and first.test.binarize_from is None
    assert first.train.binarize_from is not None and first.train.levels == 2
    assert first.provenance["binarization"].startswith("dynamic")
    (raw / "train-images-idx3-ubyte").unlink()
    with pytest.raises(GenbenchError, match=r"missing under .*train-images-idx3-ubyte"):
        load_mnist_dynamic(DatasetOptions(root=tmp_path))


@pytest.mark.parametrize("family", ["vae", "pixelcnn"])
def test_the_built_in_models_train_on_fresh_binarizations(family: str, registry: Registry) -> None:
    """Fitted on dynamically binarized data, a model ends elsewhere than on the fixed draw alone (the fresh
    minibatches reach it), and exactly where it ended before for the same seed (the draws are seeded)."""
    spec = registry.get(MODEL, family)
    options = {"vae": {"hidden": 16, "latent_dim": 2}, "pixelcnn": {"channels": 4, "layers": 1, "head_channels": 4}}
    config = spec.config_class(**options[family], epochs=2, batch_size=10)
    dynamic = dynamic_binarization(grey(), seed=0)
    static = ImageData(dynamic.images, 2)

    def fitted(data: ImageData) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = spec.factory(config, DataInfo((1, 4, 4), 2))
        model.fit(data, FitContext(torch.device("cpu"), 0, torch.Generator().manual_seed(0)))
        return {k: v.clone() for k, v in model.state_dict().items()}

    first, again, fixed = fitted(dynamic), fitted(dynamic), fitted(static)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], fixed[k]) for k in first)
