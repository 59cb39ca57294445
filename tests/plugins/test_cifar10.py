"""CIFAR-10 from small files the tests write in the binary version's format: folder, archive, download, damage."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import genbench_datasets.cifar10 as cifar10
from conftest import genbench_cli
from data_files import RECORDS, batch_files, write_folder
from genbench import DatasetOptions, GenbenchError
from genbench_datasets.cifar10 import FOLDER, RECORD_BYTES, TEST_FILE, TRAIN_FILES, load_cifar10


def write_archive(path: Path, files: dict[str, bytes] | None = None, extra: dict[str, bytes] | None = None) -> Path:
    """A .tar.gz laid out as the official one (cifar-10-batches-bin/...), plus any ``extra`` members as named."""
    members = {f"{FOLDER}/{name}": raw for name, raw in (files or batch_files()).items()} | (extra or {})
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def test_reads_the_official_split_and_the_record_layout(tmp_path: Path) -> None:
    files = batch_files()
    write_folder(tmp_path / FOLDER, files)
    data = load_cifar10(DatasetOptions(root=tmp_path))
    assert (len(data.train), len(data.test)) == (5 * RECORDS, RECORDS)
    assert data.train.shape == (3, 32, 32) and data.train.levels == 256 and data.train.images.dtype == torch.uint8
    # Record 0 of batch 2 is training image 20: label byte, then 1,024 red, green and blue bytes, row-major.
    record = np.frombuffer(files["data_batch_2.bin"], dtype=np.uint8)[:RECORD_BYTES]
    image = data.train.images[RECORDS]
    assert int(data.train.labels[RECORDS]) == record[0]  # type: ignore[index]
    assert image[0, 0, :].tolist() == record[1:33].tolist()  # the first row of red
    assert image[1, 31, 31] == record[2 * 1024] and image[2, 0, 1] == record[2 * 1024 + 2]
    last_test = np.frombuffer(files[TEST_FILE], dtype=np.uint8)[-RECORD_BYTES:]
    assert data.test.images[-1].flatten().tolist() == last_test[1:].tolist()
    provenance = data.provenance
    assert provenance["dataset"] == "cifar10" and provenance["n_train"] == 100 and provenance["n_test"] == 20
    assert provenance["split"].startswith("official") and provenance["classes"] == 10
    assert provenance["shape"] == [3, 32, 32] and len(provenance["fingerprint"]) == 16


def test_folder_files_directly_under_the_root_and_the_archive_give_the_same_data(tmp_path: Path) -> None:
    files = batch_files()
    from_folder = load_cifar10(DatasetOptions(root=write_folder(tmp_path / "flat", files)))
    (tmp_path / "archived").mkdir()
    write_archive(tmp_path / "archived" / cifar10.ARCHIVE, files)
    from_archive = load_cifar10(DatasetOptions(root=tmp_path / "archived"))
    assert from_archive.provenance["fingerprint"] == from_folder.provenance["fingerprint"]
    assert torch.equal(from_archive.train.images, from_folder.train.images)
    assert not (tmp_path / "archived" / FOLDER).exists(), "reading the archive must not unpack it"
    files[TEST_FILE] = bytes([files[TEST_FILE][0]]) + bytes([files[TEST_FILE][1] ^ 1]) + files[TEST_FILE][2:]
    changed = load_cifar10(DatasetOptions(root=write_folder(tmp_path / "changed", files)))
    assert changed.provenance["fingerprint"] != from_folder.provenance["fingerprint"]


def test_binarize_gives_two_levels(tmp_path: Path) -> None:
    data = load_cifar10(DatasetOptions(root=write_folder(tmp_path / FOLDER).parent, binarize=True))
    assert data.train.levels == 2 and data.provenance["binarized"] is True


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("short", r"data_batch_3\.bin holds 61459 bytes, not a whole number of 3073-byte CIFAR-10 records"),
        ("empty", r"test_batch\.bin holds 0 bytes"),
        ("label", r"data_batch_1\.bin has label 10 where CIFAR-10 has 0-9"),
        ("missing", r"data_batch_5\.bin is missing"),
    ],
)
def test_damaged_files_are_one_line_errors_naming_the_file(tmp_path: Path, damage: str, message: str) -> None:
    files = batch_files()
    if damage == "short":
        files["data_batch_3.bin"] = files["data_batch_3.bin"][:-1]
    elif damage == "empty":
        files[TEST_FILE] = b""
    elif damage == "label":
        files["data_batch_1.bin"] = bytes([10]) + files["data_batch_1.bin"][1:]
    else:
        del files["data_batch_5.bin"]
    write_folder(tmp_path / FOLDER, files)
    with pytest.raises(GenbenchError, match=message) as raised:
        load_cifar10(DatasetOptions(root=tmp_path))
    assert "\n" not in str(raised.value)


def test_damaged_archives_are_errors(tmp_path: Path) -> None:
    (tmp_path / cifar10.ARCHIVE).write_bytes(b"not a gzip file")
    with pytest.raises(GenbenchError, match=r"is not a readable \.tar\.gz"):
        load_cifar10(DatasetOptions(root=tmp_path))
    files = batch_files()
    del files[TEST_FILE]
    write_archive(tmp_path / cifar10.ARCHIVE, files)
    with pytest.raises(GenbenchError, match=r"lacks cifar-10-batches-bin/test_batch\.bin"):
        load_cifar10(DatasetOptions(root=tmp_path))


@pytest.mark.parametrize("python_version", ["cifar-10-python.tar.gz", "cifar-10-batches-py", "data_batch_1"])
def test_the_pickled_python_version_is_refused_with_the_reason(tmp_path: Path, python_version: str) -> None:
    path = tmp_path / python_version
    if python_version == "cifar-10-batches-py":
        path.mkdir()
    else:
        path.write_bytes(b"a pickle")
    with pytest.raises(GenbenchError, match=r"pickled Python version.*runs whatever code.*cifar-10-binary\.tar\.gz"):
        load_cifar10(DatasetOptions(root=tmp_path))


def test_without_files_says_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(GenbenchError, match="pass --download"):
        load_cifar10(DatasetOptions(root=tmp_path))


@pytest.fixture
def fetched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A stand-in for the real archive, "downloaded" by copying, with its MD5 as the published one; the fetched URLs.

    The archive also holds members whose names point outside the data root, as a hostile archive's might.
    """
    escapes = {"../escaped.bin": b"x", str(tmp_path / "absolute.bin"): b"x", f"{FOLDER}/../up.bin": b"x"}
    served = write_archive(tmp_path / "server.tar.gz", extra=escapes)
    urls: list[str] = []

    def fake_fetch(url: str, target: Path) -> None:
        urls.append(url)
        target.write_bytes(served.read_bytes())

    monkeypatch.setattr(cifar10, "fetch", fake_fetch)
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", hashlib.md5(served.read_bytes()).hexdigest())
    return urls


def test_download_checks_the_md5_and_unpacks_only_the_six_batches(fetched: list[str], tmp_path: Path) -> None:
    root = tmp_path / "data" / "root"
    root.mkdir(parents=True)
    data = load_cifar10(DatasetOptions(root=root, download=True))
    assert fetched == [cifar10.URL]
    assert (len(data.train), len(data.test)) == (100, 20)
    assert sorted(p.name for p in (root / FOLDER).iterdir()) == sorted((*TRAIN_FILES, TEST_FILE))
    assert sorted(p.name for p in root.iterdir()) == sorted([FOLDER, cifar10.ARCHIVE])
    assert not (root.parent / "escaped.bin").exists() and not (root / "up.bin").exists()
    assert not (tmp_path / "absolute.bin").exists()
    again = load_cifar10(DatasetOptions(root=root, download=True))  # found on disk: not fetched again
    assert fetched == [cifar10.URL]
    assert again.provenance["fingerprint"] == data.provenance["fingerprint"]


def test_download_with_the_wrong_checksum_keeps_nothing(
    fetched: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", "0" * 32)
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(GenbenchError, match="not the published 0000"):
        load_cifar10(DatasetOptions(root=root, download=True))
    assert fetched == [cifar10.URL] and list(root.iterdir()) == []


def test_a_failed_download_says_what_to_do_and_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, target: Path) -> None:
        target.write_bytes(b"half")
        raise OSError("network is unreachable")

    monkeypatch.setattr(cifar10, "fetch", offline)
    with pytest.raises(GenbenchError, match=r"could not download .*network is unreachable.*fetch it yourself"):
        load_cifar10(DatasetOptions(root=tmp_path, download=True))
    assert list(tmp_path.iterdir()) == []


def test_the_published_checksum_is_the_binary_versions() -> None:
    # https://www.cs.toronto.edu/~kriz/cifar.html lists c32a1d4ab5d03f1284b67883e8d87530 for the binary version.
    assert cifar10.ARCHIVE_MD5 == "c32a1d4ab5d03f1284b67883e8d87530"
    assert cifar10.URL == "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"


@pytest.mark.slow
def test_cli_runs_on_cifar10_files_and_refuses_damaged_ones_in_one_line(tmp_path: Path) -> None:
    good = write_folder(tmp_path / "good" / FOLDER).parent
    args = ["--models", "independent", "--dataset", "cifar10", "--metrics", "bpd", "--results-dir", "out"]
    result = genbench_cli("run", *args, "--data-root", str(good), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[:2]
    assert "bpd" in header.split() and "cifar10" in row
    files = batch_files()
    files["data_batch_2.bin"] += b"\x00"
    bad = write_folder(tmp_path / "bad" / FOLDER, files).parent
    result = genbench_cli("run", *args, "--data-root", str(bad), "--name", "bad", cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "data_batch_2.bin holds 61461 bytes" in lines[0]
    assert not (tmp_path / "out" / "bad").exists()
