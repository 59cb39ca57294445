"""``genbench stats``: FID reference statistics of a data set's split, written in pytorch-fid's .npz layout."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from genbench.contract import DatasetOptions, EvalContext, GenbenchError
from genbench.registry import DATASET
from genbench.toolkit.reference import write_reference_statistics

if TYPE_CHECKING:
    from genbench.registry import Registry


@dataclass(frozen=True)
class StatsRequest:
    """What ``genbench stats`` was asked for."""

    dataset: str
    split: str
    out: Path
    #: None: the fid metric's default (classifier on a labelled data set, inception otherwise).
    extractor: str | None = None
    data_root: Path | None = None
    download: bool = False
    binarize: bool = False
    device: str = "auto"
    batch_size: int = 100  # images per extractor pass, as the fid metric's default
    #: Where the feature cache lives: <results_dir>/.cache, shared with runs, so statistics are computed once.
    results_dir: Path = Path("results")
    #: Values of the options plugins added (--inception-weights), as a run's metrics receive them.
    plugin_options: dict[str, Any] = dataclasses.field(default_factory=dict)


def write_stats(request: StatsRequest, registry: Registry) -> dict[str, Any]:
    """Compute the reference statistics of a data set's split and write them; returns the record written."""
    from genbench.runner.prepare import resolve_device
    from genbench.store.layout import cache_dir
    from genbench.toolkit.features import load_extractor, reference_statistics

    if request.split not in ("train", "test"):
        raise GenbenchError(f"--split {request.split!r} must be 'train' or 'test'")
    if request.out.exists():
        raise GenbenchError(f"--out {request.out} exists; genbench stats never overwrites a file: choose another --out")
    spec = registry.get(DATASET, request.dataset)
    dataset = spec.load(DatasetOptions(root=request.data_root, download=request.download, binarize=request.binarize))
    name = request.extractor or registry.default_extractor(dataset)
    registry.extractor(name)  # an unknown name is a one-line error before anything is computed
    device = resolve_device(request.device)
    cache = cache_dir(request.results_dir)
    ctx = EvalContext(
        dataset, device, 0, torch.Generator().manual_seed(0), None, registry, cache, options=request.plugin_options
    )
    extractor = load_extractor(name, ctx)
    mu, sigma, info = reference_statistics(extractor, dataset, request.split, request.batch_size, cache)
    meta = {
        "extractor": extractor.identity,
        "dataset": dataset.name,
        "split": request.split,
        "count": info["count"],
        "fingerprint": info["fingerprint"],
        "written_by": "genbench stats",
    }
    write_reference_statistics(request.out, mu.numpy(), sigma.numpy(), meta)
    return meta
