"""Precomputed FID reference statistics in the ``.npz`` layout of pytorch-fid, so they travel between tools.

pytorch-fid's ``--save-stats`` writes ``np.savez_compressed(path, mu=mu, sigma=sigma)``: the features' mean (d,)
and unbiased covariance (d, d) in float64, and reads them back as ``f["mu"]``, ``f["sigma"]``. ``genbench stats``
writes the same two arrays, plus one extra array ``genbench`` (a JSON string, not a pickle) that says what they are:
the extractor's identity, the data set, the split and the image count. Other tools ignore the extra key; genbench
uses it to refuse statistics from another extractor, since an FID against them would mean nothing. A file from
another tool has no such record, and the FID's provenance says that the match could not be checked.

Files are read with ``allow_pickle=False``: an ``.npz`` can hold pickled objects, which would run code on loading.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from genbench.contract import GenbenchError

if TYPE_CHECKING:
    pass

MU, SIGMA, META = "mu", "sigma", "genbench"
#: Identity keys that must agree between the file's extractor and the FID's; other keys (a library's version in
#: a description) may change without changing a single feature.
MATCHING_IDENTITY_KEYS = ("name", "weights_sha256")


@dataclass(frozen=True)
class ReferenceStatistics:
    """A reference Gaussian read from a file, and what is known about where it came from."""

    mu: npt.NDArray[np.float64]
    sigma: npt.NDArray[np.float64]
    path: Path
    sha256: str
    #: What genbench recorded when it wrote the file; None for a file written by another tool.
    meta: dict[str, Any] | None


def read_reference_statistics(path: Path) -> ReferenceStatistics:
    """``mu`` and ``sigma`` of an .npz file of any tool; a one-line GenbenchError if it is not such a file."""
    if not path.is_file():
        raise GenbenchError(f"FID reference statistics {path} do not exist; write them with genbench stats")
    raw = path.read_bytes()
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise GenbenchError(
            f"{path} is not an .npz file of plain arrays ({type(error).__name__}: {str(error)[:200]}); "
            "give one written by genbench stats or pytorch-fid --save-stats"
        ) from None
    if MU not in arrays or SIGMA not in arrays:
        raise GenbenchError(
            f"{path} holds arrays {sorted(arrays)}, not 'mu' and 'sigma'; give statistics in pytorch-fid's layout"
        )
    mu, sigma = arrays[MU], arrays[SIGMA]
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise GenbenchError(f"{path}: mu must have shape (d,) and sigma (d, d), got {mu.shape} and {sigma.shape}")
    if not (np.issubdtype(mu.dtype, np.floating) and np.issubdtype(sigma.dtype, np.floating)):
        raise GenbenchError(f"{path}: mu and sigma must be floating point, got {mu.dtype} and {sigma.dtype}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise GenbenchError(f"{path}: mu or sigma contains NaN or infinite values")
    meta = _meta(arrays.get(META), path)
    sha256 = hashlib.sha256(raw).hexdigest()
    return ReferenceStatistics(mu.astype(np.float64), sigma.astype(np.float64), path, sha256, meta)


def _meta(value: npt.NDArray[Any] | None, path: Path) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        meta = json.loads(str(value))
    except json.JSONDecodeError:
        raise GenbenchError(
            f"{path}: its '{META}' record is not JSON; write the file again with genbench stats"
        ) from None
    if not isinstance(meta, dict):
        raise GenbenchError(f"{path}: its '{META}' record is not a JSON object")
    return meta


def extractor_mismatch(file_identity: dict[str, Any], identity: dict[str, Any]) -> list[str]:
    """The identity keys on which a file's extractor and the FID's differ (empty: they are the same network)."""
    return [key for key in MATCHING_IDENTITY_KEYS if file_identity.get(key) != identity.get(key)]


def write_reference_statistics(
    path: Path, mu: npt.NDArray[np.float64], sigma: npt.NDArray[np.float64], meta: dict[str, Any]
) -> None:
    """An .npz in pytorch-fid's layout (float64 ``mu``, ``sigma``) plus genbench's record; never over a file."""
    from genbench.toolkit.files import write_atomic  # here: store imports pandas, which `genbench --help` need not load

    if path.exists():
        raise GenbenchError(f"--out {path} exists; genbench stats never overwrites a file: choose another --out")
    if path.suffix != ".npz":
        raise GenbenchError(f"--out {path} must end in .npz (the layout of pytorch-fid's statistics)")
    arrays = {MU: np.asarray(mu, np.float64), SIGMA: np.asarray(sigma, np.float64), META: np.array(json.dumps(meta))}

    def write(temporary: Path) -> None:
        with temporary.open("wb") as stream:
            np.savez_compressed(stream, **arrays)  # type: ignore[arg-type]

    write_atomic(path, write)
