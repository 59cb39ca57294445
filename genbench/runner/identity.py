"""Every key and id of a run in one place: what names a checkpoint, and what names a cell.

A checkpoint key hashes what was trained (model, config, data fingerprint, seed, the code of the plugins
involved); a cell id adds how it was evaluated (the metrics' settings and code, and the files options name).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genbench.contract import (
    ModelSpec,
)
from genbench.contract.request import CHECKPOINT_FORMAT
from genbench.registry import DATASET, EXTRACTOR, METRIC, MODEL
from genbench.registry.code import genbench_version
from genbench.runner.prepare import PreparedRun
from genbench.runner.provenance import plain_data
from genbench.toolkit.files import file_sha256, stable_hash

if TYPE_CHECKING:
    pass


def model_key(run: PreparedRun, spec: ModelSpec, seed: int) -> str:
    """What determines a cell's model: its checkpoint key (model, config, data, seed and the code of the model's
    and the data set's plugins), and the SHA-256 of the file it came from, if any."""
    config = run.model_configs[spec.name]
    key = checkpoint_key(spec.name, config, dict(run.dataset.provenance), seed, code=model_code(run, spec))
    origin = run.origins.get(spec.name)
    return key if origin is None else stable_hash({"checkpoint": key, "origin_sha256": origin.sha256})


def cell_identity(run: PreparedRun, spec: ModelSpec, seed: int) -> dict[str, Any]:
    """What a cell id stands for beyond the settings in it: the checkpoint key (which holds the model's and the
    data set's code and the data's fingerprint) and the metrics' code. A worker compares its own with the
    driver's before it runs the cell."""
    return {"checkpoint_key": model_key(run, spec, seed), "evaluation_code": evaluation_code(run)}


def model_code(run: PreparedRun, spec: ModelSpec) -> dict[str, Any]:
    """The code a checkpoint depends on: genbench, the model's plugin and the data set's plugin."""
    # A sample set is a named instance of the samples model: its code is that plugin's.
    plugin_model = run.registry.sample_set_model().name if spec.name in run.request.sample_sets else spec.name
    return {
        "genbench": genbench_version(),
        "model": run.registry.plugin_of(MODEL, plugin_model).code,
        "dataset": run.registry.plugin_of(DATASET, run.request.dataset).code,
    }


def evaluation_code(run: PreparedRun) -> dict[str, Any]:
    """The code evaluation depends on beyond the checkpoint: each metric's plugin, and the plugins of the feature
    extractors that metric options name (a metric's default extractor is its own plugin's code)."""
    options = [value for config in run.metric_configs.values() for value in (plain_data(config) or {}).values()]
    named = sorted({value for value in options if isinstance(value, str)} & set(run.registry.names(EXTRACTOR)))
    return {
        "genbench": genbench_version(),
        "metrics": {spec.name: run.registry.plugin_of(METRIC, spec.name).code for spec in run.metrics},
        "extractors": {name: run.registry.plugin_of(EXTRACTOR, name).code for name in named},
    }


def files_named_by(options: Any) -> dict[str, str]:
    """Path -> SHA-256 of every existing file that an option names (reference statistics, weights): a file
    replaced in place changes what is measured, so it must change the cell's id, as its path alone would not."""
    found: dict[str, str] = {}
    if isinstance(options, dict):
        options = list(options.values())
    if isinstance(options, list | tuple):
        for item in options:
            found.update(files_named_by(item))
    elif isinstance(options, str) and options:
        path = Path(options).expanduser()
        if path.is_file():
            found[options] = file_sha256(path)
    return found


def checkpoint_key(
    model: str, config: Any, data_provenance: dict[str, Any], seed: int, *, code: Mapping[str, Any]
) -> str:
    """What determines a trained model: the model, its config, the exact data, the seed (not the device), and
    the code that trains it and loads the data (genbench's version, the model's and data set's plugin sources)."""
    data = {k: data_provenance.get(k) for k in ("dataset", "fingerprint", "levels", "shape", "split")}
    return stable_hash(
        {
            "format": CHECKPOINT_FORMAT,
            "model": model,
            "config": dataclasses.asdict(config),
            "data": data,
            "seed": seed,
            "code": dict(code),
        }
    )


def cell_id(model: str, dataset: str, seed: int, checkpoint: str, evaluation: dict[str, Any]) -> str:
    """A cell is its checkpoint plus how it is evaluated (metrics, their options and their plugins' code), hashed
    into its name."""
    suffix = stable_hash({"checkpoint": checkpoint, "evaluation": evaluation}, length=10)
    return f"{model}-{dataset}-seed{seed}-{suffix}"
