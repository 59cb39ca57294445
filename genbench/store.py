"""The results directory: atomic per-cell records, checkpoints (safetensors + JSON), run.json, results.csv.

    <run>/run.json              command, settings, package versions, git revision, device, times, cell ids
    <run>/cells/<cell>.json     one CellRecord per cell
    <run>/checkpoints/<key>.*   safetensors tensors + a JSON sidecar, loaded without unpickling
    <run>/samples/<cell>.png    a grid of samples
    <run>/results.csv           one row per cell of the latest invocation

Every write goes to a temporary file that is then renamed over the target, so a crash leaves either the old
file or the new one, never half of one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from genbench.text import warn
from genbench.types import CellRecord, Column, GenbenchError
from genbench.validation import check_fields, check_value, non_finite_paths

#: The leading columns of every results table; metric columns follow in the order the metrics were asked for.
BASE_COLUMNS = ["model", "dataset", "seed", "status", "error", "train_time"]
NOT_APPLICABLE_COLUMN = "not_applicable"


def check_writable_folder(folder: Path, flag: str) -> None:
    """``folder`` is a directory we may write in, or can be made one: checked before anything is written."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise GenbenchError(f"{flag} {folder}: {existing} is a file, not a folder; give a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise GenbenchError(f"{flag} {folder}: {existing} is not writable; give a folder you may write in")


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, then rename the result over ``path``.

    A file-system fault (a read-only or full disk, a file where a folder should be) is a GenbenchError that
    names the path: the user can act on it, and nothing half-written is left behind.
    """
    try:
        _write_atomic(path, write)
    except OSError as error:
        file_in_the_way = next((p for p in path.parents if p.is_file()), None)
        reason = f"{file_in_the_way} is a file, not a folder" if file_in_the_way else error.strerror or str(error)
        raise GenbenchError(f"cannot write {path}: {reason}") from error


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        # mkstemp (and some writers) make the file owner-only; results are meant to be shared: the usual mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Strict JSON: a NaN or infinity is a bug of whatever produced it, named here rather than written."""
    unwritable = non_finite_paths(data)
    if unwritable:
        raise ValueError(f"refusing to write NaN or infinity into {path} (at {', '.join(unwritable)})")
    text = json.dumps(data, indent=2, sort_keys=False, default=str, allow_nan=False)
    write_atomic(path, lambda temporary: _write_text(temporary, text + "\n"))


def _write_text(path: Path, text: str) -> None:
    path.write_text(text)


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

    def read_cell(self, cell_id: str) -> CellRecord | None:
        path = self.cell_path(cell_id)
        if not is_safe_cell_id(cell_id) or not self.inside(path):
            warn(f"{self.run_json} lists cell {cell_id!r}, which is not a file inside {self.cells}; skipped")
            return None
        if not path.is_file():
            return None
        return CellRecord.from_dict(json.loads(path.read_text()))

    def write_cell(self, record: CellRecord) -> None:
        write_json_atomic(self.cell_path(record.cell_id), record.to_dict())

    # ---------------------------------------------------------------------------------- checkpoints

    def checkpoint_paths(self, key: str) -> tuple[Path, Path]:
        return self.checkpoints / f"{key}.safetensors", self.checkpoints / f"{key}.json"

    def save_checkpoint(self, key: str, state: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        tensors_path, meta_path = self.checkpoint_paths(key)
        # Cloned to plain contiguous CPU tensors: safetensors refuses shared storage (tied weights).
        tensors = {name: value.detach().cpu().contiguous().clone() for name, value in state.items()}
        non_tensors = sorted(name for name, value in state.items() if not isinstance(value, torch.Tensor))
        if non_tensors:
            raise TypeError(f"state_dict entries must be tensors for safetensors, not {non_tensors}")
        write_atomic(tensors_path, lambda temporary: save_file(tensors, str(temporary)))
        write_json_atomic(meta_path, dict(meta))

    def load_checkpoint(self, key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The tensors and the JSON sidecar of checkpoint ``key``, or None when there is none."""
        tensors_path, meta_path = self.checkpoint_paths(key)
        if not (tensors_path.is_file() and meta_path.is_file()):
            return None
        return load_file(str(tensors_path), device="cpu"), json.loads(meta_path.read_text())

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


#: Cell ids are file names made by ``config.cell_id``: the name, data set, seed and a hash.
_CELL_ID = re.compile(r"^[A-Za-z0-9_.+\-]+$")


def is_safe_cell_id(cell_id: Any) -> bool:
    """A cell id read from a run.json names a file in ``cells/``: not a path, and nothing hidden."""
    return isinstance(cell_id, str) and bool(_CELL_ID.match(cell_id)) and not cell_id.startswith(".")


#: The run.json fields that show and report read, with their types; any may be absent (older runs).
RUN_JSON_FIELDS: dict[str, Any] = {
    "cells": list[str],
    "columns": list[str],
    "column_specs": dict[str, dict[str, Any]],
    "column_metrics": dict[str, str],
    "device": dict[str, Any],
    "packages": dict[str, str],
    "command": list[str],
    "git_revision": str | None,
    "python": str,
    "started": str,
}


def run_json_problem(data: Any) -> str | None:
    """What makes ``data`` unusable as a run.json, or None: readers may then trust the fields' types."""
    if not isinstance(data, dict):
        return "not a run description"
    try:
        for key, hint in RUN_JSON_FIELDS.items():
            if key in data:
                check_value(data[key], hint, key)
        for name, spec in data.get("column_specs", {}).items():
            check_value(spec, dict[str, Any], f"column_specs.{name}")
            known = {f.name for f in dataclasses.fields(Column)}
            check_fields(Column(**{k: v for k, v in spec.items() if k in known}), f"column_specs.{name}")
    except GenbenchError as error:
        return str(error)
    except TypeError:  # a column spec without a unit or direction
        return "column_specs are not column descriptions"
    return None


def records_frame(records: Iterable[CellRecord], metric_columns: list[str]) -> pd.DataFrame:
    """One row per cell; a metric that does not apply is NaN here and explained in ``not_applicable``."""
    rows = []
    for record in records:
        row: dict[str, Any] = {
            "model": record.model,
            "dataset": record.dataset,
            "seed": record.seed,
            "status": record.status,
            "error": record.error or "",
            "train_time": record.train_time,
        }
        for column in metric_columns:
            row[column] = record.metrics.get(column, math.nan)
        row[NOT_APPLICABLE_COLUMN] = "; ".join(f"{c}: {why}" for c, why in record.not_applicable.items())
        row["cell_id"] = record.cell_id
        rows.append(row)
    columns = [*BASE_COLUMNS, *metric_columns, NOT_APPLICABLE_COLUMN, "cell_id"]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ["train_time", *metric_columns]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["seed"] = frame["seed"].astype("int64")
    return frame


def load_results(path: Path | str) -> pd.DataFrame:
    """The results of a run directory (or of its results.csv) as the DataFrame ``genbench.run`` returned."""
    path = Path(path)
    run_dir = RunDirectory(path.parent if path.name == "results.csv" else path)
    if not run_dir.root.exists():
        raise GenbenchError(f"{run_dir.root} does not exist; give a run directory such as results/<run>")
    run = run_dir.read_run()
    records = []
    for cell_id in run.get("cells", []):
        record = run_dir.read_cell(cell_id)
        if record is not None:
            records.append(record)
    frame = records_frame(records, list(run.get("columns", [])))
    frame.attrs["run_dir"] = str(run_dir.root)
    return frame


def format_table(frame: pd.DataFrame) -> str:
    """The results as a fixed-width table for a terminal: N/A where a metric does not apply, failures named."""
    shown = frame.drop(columns=["cell_id", NOT_APPLICABLE_COLUMN, "error"], errors="ignore").copy()
    for column in shown.columns:
        if shown[column].dtype.kind == "f":
            shown[column] = [
                _format_number(value, column, row) for row, value in zip(frame.itertuples(), shown[column], strict=True)
            ]
    text = shown.to_string(index=False)
    notes = [
        f"failed: {m} seed {s}: {error}" for m, s, status, error in _rows(frame, "status", "error") if status != "ok"
    ]
    notes += dict.fromkeys(f"N/A for {m}: {why}" for m, _, why in _rows(frame, NOT_APPLICABLE_COLUMN) if why)
    return text + ("\n" + "\n".join(notes) if notes else "")


def _rows(frame: pd.DataFrame, *columns: str) -> list[tuple[str, ...]]:
    """(model, seed, *columns) of every row, as strings."""
    picked = frame[["model", "seed", *columns]].astype(str)
    return [tuple(row) for row in picked.itertuples(index=False, name=None)]


def _format_number(value: float, column: str, row: Any) -> str:
    if not math.isnan(value):
        return f"{value:.4g}"
    return "N/A" if f"{column}:" in str(getattr(row, NOT_APPLICABLE_COLUMN, "")) else "-"
