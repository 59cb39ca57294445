"""The run folder's layout, in one place: where each file of a run lives, and reading and writing them.

<run>/run.json              command, settings, package versions, git revision, device, times, cell ids
<run>/cells/<cell>.json     one CellRecord per cell
<run>/checkpoints/<key>.*   safetensors tensors + a JSON sidecar, loaded without unpickling
<run>/samples/<cell>.png    a grid of samples; real-<dataset>.png, real test images beside them
<run>/results.csv           one row per cell of the latest invocation
<run>/leaderboard.md|html   written by genbench.report
<results-dir>/.cache/       features, reference statistics and trained extractors, shared by every run
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from genbench.contract import CellRecord, GenbenchError
from genbench.toolkit.text import warn

if TYPE_CHECKING:
    import pandas as pd

from genbench.store.records import checkpoint_problem, is_safe_cell_id, record_problem, run_json_problem
from genbench.toolkit.files import (
    DamagedFile,
    DamagedFileWarning,
    load_checked_tensors,
    read_checked_json,
    save_checked_tensors,
    set_aside,
    write_atomic,
    write_checked_json,
    write_json_atomic,
)


def check_writable_folder(folder: Path, flag: str) -> None:
    """``folder`` is a directory we may write in, or can be made one: checked before anything is written."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise GenbenchError(f"{flag} {folder}: {existing} is a file, not a folder; give a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise GenbenchError(f"{flag} {folder}: {existing} is not writable; give a folder you may write in")


class RunDirectory:
    """One run's directory; creating it is left to ``create`` so that validation can finish first."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.run_json = root / "run.json"
        self.results_csv = root / "results.csv"
        self.cells = root / "cells"
        self.checkpoints = root / "checkpoints"
        self.samples = root / "samples"

    def create(self) -> None:
        for folder in (self.cells, self.checkpoints, self.samples):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise GenbenchError(f"cannot create {folder}: {error.strerror or error}") from error

    def inside(self, path: Path) -> bool:
        """Whether ``path`` stays inside the run folder once symlinks and ``..`` are resolved."""
        return path.resolve().is_relative_to(self.root.resolve())

    # ---------------------------------------------------------------------------------------- cells

    def cell_path(self, cell_id: str) -> Path:
        return self.cells / f"{cell_id}.json"

    def sample_grid_path(self, cell_id: str) -> Path:
        """The cell's grid of samples (written by the runner for a model that samples)."""
        return self.samples / f"{cell_id}.png"

    def real_grid_path(self, dataset: str) -> Path:
        """A grid of the data set's real test images, shown beside every model's samples."""
        return self.samples / f"real-{dataset}.png"

    def read_cell(self, cell_id: str) -> CellRecord | None:
        """The cell's record; None when there is none or when it is damaged (then it is set aside, with a warning)."""
        try:
            return self.check_cell(cell_id)
        except DamagedFile as damage:
            set_aside([self.cell_path(cell_id)], str(damage))
            return None

    def check_cell(self, cell_id: str) -> CellRecord | None:
        """The cell's record, verified; None when there is none; DamagedFile (nothing moved) when it is damaged.

        Records written before genbench kept checksums are accepted if they fit the schema."""
        path = self.cell_path(cell_id)
        if not is_safe_cell_id(cell_id) or not self.inside(path):
            warn(f"{self.run_json} lists cell {cell_id!r}, which is not a file inside {self.cells}; skipped")
            return None
        if not path.is_file():
            return None
        data = read_checked_json(path, lambda data: record_problem(data, cell_id), unchecked_ok=True)
        return CellRecord.from_dict(data)

    def write_cell(self, record: CellRecord) -> None:
        write_checked_json(self.cell_path(record.cell_id), record.to_dict())

    # ---------------------------------------------------------------------------------- checkpoints

    def checkpoint_paths(self, key: str) -> tuple[Path, Path]:
        return self.checkpoints / f"{key}.safetensors", self.checkpoints / f"{key}.json"

    def save_checkpoint(self, key: str, state: Mapping[str, Any], meta: Mapping[str, Any]) -> None:

        tensors_path, meta_path = self.checkpoint_paths(key)
        non_tensors = sorted(name for name, value in state.items() if not isinstance(value, torch.Tensor))
        if non_tensors:
            raise TypeError(f"state_dict entries must be tensors for safetensors, not {non_tensors}")
        # Cloned to plain contiguous CPU tensors: safetensors refuses shared storage (tied weights).
        tensors = {name: value.detach().cpu().contiguous().clone() for name, value in state.items()}
        save_checked_tensors(tensors_path, meta_path, tensors, meta)

    def load_checkpoint(self, key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The tensors and the JSON sidecar of checkpoint ``key``, verified; None when there is none or it was
        damaged (then it is set aside with a warning, and the model is trained again)."""
        return load_checked_tensors(*self.checkpoint_paths(key), schema=checkpoint_problem)

    # ------------------------------------------------------------------------------------ run-level

    def write_run(self, data: Mapping[str, Any]) -> None:
        write_json_atomic(self.run_json, dict(data))

    def read_run(self) -> dict[str, Any]:
        """run.json, checked enough that what reads it cannot crash: a dict whose ``cells`` are strings."""
        if not self.run_json.is_file():
            raise GenbenchError(f"{self.root} is not a genbench run directory: it has no run.json")
        if not self.inside(self.run_json):
            raise GenbenchError(f"{self.run_json} is a link to a file outside {self.root}; refusing to read it")
        try:
            data = json.loads(self.run_json.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise GenbenchError(f"{self.run_json} is damaged ({error}); rerun the run to rewrite it") from None
        problem = run_json_problem(data)
        if problem:
            raise GenbenchError(f"{self.run_json} is damaged ({problem}); rerun the run to rewrite it")
        return dict(data)

    def write_csv(self, frame: pd.DataFrame) -> None:
        write_atomic(self.results_csv, lambda temporary: frame.to_csv(temporary, index=False))


@dataclasses.dataclass
class StoredRecords:
    """The records of a run's cells as ``show`` and ``report`` read them, without changing anything on disk."""

    records: list[CellRecord]
    #: Cells without a record yet (an interrupted or running run).
    missing: list[str]
    #: Cell id -> why its record is unusable.
    damaged: dict[str, str]


def read_records(run_dir: RunDirectory, cell_ids: Iterable[str]) -> StoredRecords:
    """Every cell's verified record; a damaged one is skipped with a warning line (and left where it is)."""
    stored = StoredRecords([], [], {})
    for cell_id in cell_ids:
        try:
            record = run_dir.check_cell(cell_id)
        except DamagedFile as damage:
            reason = " ".join(str(damage).split())
            stored.damaged[cell_id] = reason
            warnings.warn(
                f"damaged cell record {run_dir.cell_path(cell_id)}: {reason}; skipped (run the run's command "
                "again to recompute it)",
                DamagedFileWarning,
                stacklevel=2,
            )
            continue
        if record is None:
            stored.missing.append(cell_id)
        else:
            stored.records.append(record)
    return stored


def cache_dir(results_dir: Path) -> Path:
    """Caches that outlive a run (features, reference statistics, trained feature extractors) live beside the
    runs, in ``<results-dir>/.cache``."""
    return results_dir / ".cache"
