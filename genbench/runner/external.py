"""Models that were made elsewhere: weights from a file (``--checkpoint``), images from a file (``--sample-set``).

Such a model is never fitted. Its record says ``trained: false``; ``train_time`` is N/A with the reason; the
SHA-256 of its file is part of the cell's key (another file is another cell) and of its provenance, under
``provenance["origin"]``, which the leaderboard's protocol section shows.

A model plugin can serve things made elsewhere itself (the built-in ``samples`` does): its model then has an
attribute ``origin``, a dict with at least ``file`` and ``sha256``, and a ``fit`` that is never called. Every
check here runs in ``prepare``, so a file that does not fit stops the run before anything is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from genbench.config import resolve_config
from genbench.contract import CellRecord, Dataset, GenbenchError, GenerativeModel, ModelSpec, PluginError
from genbench.contract.request import RunRequest
from genbench.registry import MODEL, Registry
from genbench.runner.checkpoints import WeightsFile, check_fits, load_weights, read_weights_file, sidecar_options

TRAIN_TIME = "train_time"


@dataclass
class Origin:
    """A model built once in ``prepare`` from a file, with what the record says about the file."""

    model: GenerativeModel
    #: file, sha256 and whatever else says where the model came from; recorded as provenance["origin"].
    description: dict[str, Any]
    #: Why train_time is N/A.
    reason: str
    #: What the run prints when the cell starts: where the model and its config come from.
    note: str
    #: The weights to load into ``model`` (None for a model that serves its own file, like ``samples``).
    weights: WeightsFile | None = None

    @property
    def sha256(self) -> str:
        return str(self.description["sha256"])


def sample_set_specs(request: RunRequest, registry: Registry) -> list[ModelSpec]:
    """One ``samples`` model per ``--sample-set NAME=PATH``, renamed NAME, so that each is a row of its own."""
    if not request.sample_sets:
        return []
    samples = registry.sample_set_model()
    taken = set(request.models) | set(registry.names(MODEL))
    for name in request.sample_sets:
        if name in taken:
            raise GenbenchError(
                f"--sample-set {name}=...: {name!r} is already a model of this run or an installed model; "
                "give the sample set another name"
            )
    return [dataclasses.replace(samples, name=name) for name in request.sample_sets]


def model_options(request: RunRequest, name: str) -> dict[str, Any]:
    """The options of model ``name``: its [model.NAME] table, plus the path of a sample set."""
    options = dict(request.model_options.get(name, {}))
    if name in request.sample_sets:
        options["path"] = str(request.sample_sets[name])
    return options


def read_checkpoints(request: RunRequest, names: Sequence[str]) -> dict[str, WeightsFile]:
    """Every --checkpoint file's header and sidecar, checked before the data is loaded."""
    files = {}
    for name, path in request.checkpoints.items():
        flag = f"--checkpoint {name}"
        if name not in names:
            raise GenbenchError(f"{flag}={path}: {name!r} is not a model of this run ({', '.join(names)}); add it")
        if name in request.sample_sets:
            raise GenbenchError(f"{flag}={path}: {name!r} is a sample set, which has no weights")
        files[name] = read_weights_file(path, flag)
    return files


def apply_sidecar_configs(
    request: RunRequest, models: Sequence[ModelSpec], configs: dict[str, Any], weights: Mapping[str, WeightsFile]
) -> None:
    """A --checkpoint file's sidecar config replaces the run's in ``configs``: the weights fit only the config they
    were trained with."""
    for spec in models:
        if spec.name not in weights:
            continue
        flag = f"--checkpoint {spec.name}"
        from_sidecar = sidecar_options(weights[spec.name], spec.name, request.model_options.get(spec.name, {}), flag)
        if from_sidecar is not None:
            # No --epochs here: the sidecar's epochs are how the weights were trained, which is what the record says.
            configs[spec.name] = resolve_config(
                spec.config_class, from_sidecar, f"{flag}: the sidecar's model {spec.name}"
            )


def find_origins(
    built: Mapping[str, GenerativeModel], dataset: Dataset, weights: Mapping[str, WeightsFile]
) -> dict[str, Origin]:
    """Of the models ``prepare`` built, those made elsewhere: weights from a file, or a plugin serving a file."""
    origins = {}
    for name, model in built.items():
        if name in weights:
            origins[name] = checkpoint_origin(name, model, dataset, weights[name])
            continue
        description = getattr(model, "origin", None)
        if description is not None:
            origins[name] = plugin_origin(name, model, description)
    return origins


def checkpoint_origin(name: str, model: GenerativeModel, dataset: Dataset, weights: WeightsFile) -> Origin:
    check_fits(model.state_dict(), weights, name, f"--checkpoint {name}")
    config_from = "the sidecar " + weights.path.with_suffix(".json").name if weights.sidecar is not None else "the run"
    description = weights.origin(config_from)
    if weights.sidecar is not None:
        description["same_data"] = description.get("trained_on") == dataset.provenance.get("fingerprint")
    reason = f"weights loaded from {weights.path.name} (sha256 {weights.sha256[:12]}), not trained in this run"
    return Origin(model, description, reason, f"weights from {weights.path}, config from {config_from}", weights)


def plugin_origin(name: str, model: GenerativeModel, description: Any) -> Origin:
    if not isinstance(description, Mapping) or not {"file", "sha256"} <= set(description):
        raise PluginError(f"model {name!r}: its origin must be a dict with 'file' and 'sha256', got {description!r}")
    file = description["file"]
    reason = f"{name} serves images from {file} (sha256 {str(description['sha256'])[:12]}); nothing is trained"
    return Origin(model, dict(description), reason, f"images from {description.get('path', file)}")


def use_origin(origin: Origin, record: CellRecord) -> GenerativeModel:
    """The model made elsewhere, its weights loaded if it has a file of them; the record says so."""
    if origin.weights is not None:
        origin.model.load_state_dict(load_weights(origin.weights))
    record.trained = False
    record.train_time = None
    record.not_applicable[TRAIN_TIME] = origin.reason
    record.provenance["origin"] = origin.description
    return origin.model
