"""Weights that travel: a trained cell exported as a safetensors file, and a user's file checked and loaded.

    genbench export RUN_DIR --cell ID --out vae.safetensors    writes vae.safetensors and vae.json (the sidecar)
    genbench run --models vae --checkpoint vae=vae.safetensors  evaluates those weights without training

Only safetensors is read, never a pickle: a pickle (``torch.save``'s .pt/.pth/.ckpt) can run code when it is
loaded. A file is checked before anything runs: its header (names, shapes) is read without loading a tensor and
compared with the state of the model built from its config, and the first tensor that does not fit is named.

The sidecar (``PATH`` with ``.json`` for ``.safetensors``) says which model and config made the weights, on which
data and seed, and from which run and cell. Where there is one, its config is the one the model is built with:
the weights mean something only under the config they were trained with. An option that the run sets to another
value than the sidecar's is an error rather than silently ignored. Without a sidecar, the run's config is used.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genbench.config import NAME_PATTERN
from genbench.contract import CellRecord, GenbenchError
from genbench.store.layout import RunDirectory
from genbench.toolkit.files import file_sha256, write_atomic, write_json_atomic

SAFETENSORS_SUFFIX = ".safetensors"
#: Suffixes of pickled PyTorch files; named in the error so that the user knows why such a file is refused.
PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar"})
CONVERT_HINT = 'convert it once where you trust it: safetensors.torch.save_file(model.state_dict(), "x.safetensors")'
#: What a genbench sidecar says it is, so that another JSON file beside the weights is not misread as one.
SIDECAR_FORMAT = "genbench checkpoint"


@dataclass(frozen=True)
class WeightsFile:
    """A checked safetensors file: where it is, its SHA-256, the shapes its header declares, and its sidecar."""

    path: Path
    sha256: str
    shapes: dict[str, tuple[int, ...]]
    sidecar: dict[str, Any] | None

    def origin(self, config_from: str) -> dict[str, Any]:
        """How the record describes where the model came from (the leaderboard's protocol shows it)."""
        origin: dict[str, Any] = {
            "kind": "checkpoint",
            "file": self.path.name,
            "path": str(self.path.resolve()),
            "sha256": self.sha256,
            "config_from": config_from,
        }
        if self.sidecar is not None:
            origin["source"] = self.sidecar.get("source")
            origin["trained_on"] = (self.sidecar.get("dataset") or {}).get("fingerprint")
        return origin


def sidecar_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def read_weights_file(path: Path, flag: str) -> WeightsFile:
    """The header of a safetensors file (no tensor is loaded) and its sidecar; a one-line error otherwise."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise GenbenchError(
            f"{flag}={path} is a pickle ({path.suffix}); genbench reads only safetensors: {CONVERT_HINT}"
        )
    if not path.is_file():
        raise GenbenchError(f"{flag}={path} does not exist or is not a file")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}  # noqa: SIM118
    except Exception as error:  # a pickle under another name, a truncated file, a text file
        raise GenbenchError(
            f"{flag}={path} is not a safetensors file ({type(error).__name__}: {str(error)[:120]}); {CONVERT_HINT}"
        ) from error
    return WeightsFile(path, file_sha256(path), shapes, read_sidecar(path, flag))


def read_sidecar(weights: Path, flag: str) -> dict[str, Any] | None:
    path = sidecar_path(weights)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GenbenchError(f"{flag}: the sidecar {path} is not readable JSON ({error}); fix or remove it") from error
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT or not isinstance(data.get("config"), dict):
        raise GenbenchError(
            f"{flag}: {path} beside the weights is not a genbench sidecar (no format {SIDECAR_FORMAT!r} and config); "
            "rename or remove it"
        )
    return data


def sidecar_options(weights: WeightsFile, model: str, asked: Mapping[str, Any], flag: str) -> dict[str, Any] | None:
    """The config options to build ``model`` with from the sidecar, or None where there is no sidecar.

    An option the run sets explicitly to another value than the sidecar's is an error: either would be wrong
    to ignore, the sidecar's because the weights need it, the user's because they asked for it.
    """
    if weights.sidecar is None:
        return None
    made_by = weights.sidecar.get("model")
    if made_by != model:
        raise GenbenchError(
            f"{flag}: {weights.path.name} holds weights of model {made_by!r} (says {sidecar_path(weights.path).name}),"
            f" not {model!r}; give it as --checkpoint {made_by}=PATH"
        )
    config: dict[str, Any] = dict(weights.sidecar["config"])
    for key, value in asked.items():
        if key in config and config[key] != value:
            raise GenbenchError(
                f"{flag}: the run sets {model} option {key}={value!r}, but the weights were made with "
                f"{key}={config[key]!r} (says {sidecar_path(weights.path).name}); drop the option or the sidecar"
            )
    return config


def check_fits(expected: Mapping[str, Any], weights: WeightsFile, model: str, flag: str) -> None:
    """The first tensor that the model's state and the file disagree on, as a one-line error."""
    for name, tensor in expected.items():
        want = tuple(tensor.shape)
        if name not in weights.shapes:
            raise GenbenchError(
                f"{flag}={weights.path} does not fit model {model!r} with its config: the file has no tensor "
                f"{name!r} (shape {list(want)}); were the weights made with other options or another model?"
            )
        if weights.shapes[name] != want:
            raise GenbenchError(
                f"{flag}={weights.path} does not fit model {model!r} with its config: tensor {name!r} is "
                f"{list(weights.shapes[name])} in the file and {list(want)} in the model; set the options the "
                "weights were made with ([model.NAME] in a suite file)"
            )
    extra = [name for name in weights.shapes if name not in expected]
    if extra:
        raise GenbenchError(
            f"{flag}={weights.path} does not fit model {model!r}: the file has tensor {extra[0]!r}, which the "
            f"model does not (and {len(extra) - 1} more); is it another model's?"
        )


def load_weights(weights: WeightsFile) -> dict[str, torch.Tensor]:
    """The tensors, read from the same bytes whose SHA-256 is checked, so the record names what was loaded."""
    from safetensors.torch import load

    data = weights.path.read_bytes()
    if hashlib.sha256(data).hexdigest() != weights.sha256:
        raise GenbenchError(f"{weights.path} changed while the run was going; run again")
    tensors: dict[str, torch.Tensor] = load(data)
    return tensors


# -------------------------------------------------------------------------------------------- export


def export_cell(run_dir: Path, cell_id: str, out: Path, *, force: bool = False) -> tuple[Path, Path]:
    """Copy a trained cell's weights to ``out`` (safetensors) and write its sidecar beside it."""
    if out.suffix != SAFETENSORS_SUFFIX:
        raise GenbenchError(f"--out {out} must end in {SAFETENSORS_SUFFIX} (its sidecar is written beside it as .json)")
    directory = RunDirectory(run_dir)
    info = directory.read_run()
    # Names are checked before they become paths, so that neither the user nor a record leads outside the run.
    record = directory.read_cell(cell_id) if NAME_PATTERN.match(cell_id) else None
    if record is None:
        cells = ", ".join(info.get("cells", [])) or "none"
        raise GenbenchError(f"run {run_dir} has no cell {cell_id!r}; its cells: {cells}")
    if not NAME_PATTERN.match(record.checkpoint_key):
        raise GenbenchError(f"cell {cell_id} of {run_dir} names a malformed checkpoint {record.checkpoint_key!r}")
    tensors_path, meta_path = directory.checkpoint_paths(record.checkpoint_key)
    if not (tensors_path.is_file() and meta_path.is_file()):
        origin = record.provenance.get("origin")
        why = f"its model came from {origin.get('file')}" if isinstance(origin, dict) else "its checkpoint is missing"
        raise GenbenchError(f"cell {cell_id} of {run_dir} has no trained weights to export: {why}")
    sidecar = sidecar_path(out)
    existing = [str(path) for path in (out, sidecar) if path.exists()]
    if existing and not force:
        raise GenbenchError(f"{' and '.join(existing)} already exist; choose another --out, or --force to overwrite")
    write_atomic(out, lambda temporary: _copy(tensors_path, temporary))
    write_json_atomic(sidecar, export_sidecar(record, json.loads(meta_path.read_text()), run_dir, file_sha256(out)))
    return out, sidecar


def _copy(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)  # byte for byte: the exported file has the checkpoint's exact tensors


def export_sidecar(record: CellRecord, meta: Mapping[str, Any], run_dir: Path, sha256: str) -> dict[str, Any]:
    """Everything needed to rebuild the model and to say where its weights came from."""
    return {
        "format": SIDECAR_FORMAT,
        "model": record.model,
        "config": record.config,
        "dataset": record.dataset_provenance,
        "seed": record.seed,
        "sha256": sha256,
        "train_time": meta.get("train_time"),
        "device": meta.get("device"),
        "source": {"run": str(run_dir.resolve()), "cell": record.cell_id, "checkpoint_key": record.checkpoint_key},
    }
