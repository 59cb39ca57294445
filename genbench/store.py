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

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from genbench.types import CellRecord, GenbenchError

if TYPE_CHECKING:
    import pandas as pd

#: The leading columns of every results table; metric columns follow in the order the metrics were asked for.
BASE_COLUMNS = ["model", "dataset", "seed", "status", "error", "train_time"]
NOT_APPLICABLE_COLUMN = "not_applicable"


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, then rename the result over ``path``."""
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
            folder.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------------------------------- cells

    def cell_path(self, cell_id: str) -> Path:
        return self.cells / f"{cell_id}.json"

    def read_cell(self, cell_id: str) -> CellRecord | None:
        path = self.cell_path(cell_id)
        if not path.is_file():
            return None
        return CellRecord.from_dict(json.loads(path.read_text()))

    def write_cell(self, record: CellRecord) -> None:
        write_json_atomic(self.cell_path(record.cell_id), _finite_or_none(record.to_dict()))

    # ---------------------------------------------------------------------------------- checkpoints

    def checkpoint_paths(self, key: str) -> tuple[Path, Path]:
        return self.checkpoints / f"{key}.safetensors", self.checkpoints / f"{key}.json"

    def save_checkpoint(self, key: str, state: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        from safetensors.torch import save_file

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
        from safetensors.torch import load_file

        tensors_path, meta_path = self.checkpoint_paths(key)
        if not (tensors_path.is_file() and meta_path.is_file()):
            return None
        return load_file(str(tensors_path), device="cpu"), json.loads(meta_path.read_text())

    # ------------------------------------------------------------------------------------ run-level

    def write_run(self, data: Mapping[str, Any]) -> None:
        write_json_atomic(self.run_json, _finite_or_none(dict(data)))

    def read_run(self) -> dict[str, Any]:
        if not self.run_json.is_file():
            raise GenbenchError(f"{self.root} is not a genbench run directory: it has no run.json")
        data: dict[str, Any] = json.loads(self.run_json.read_text())
        return data

    def write_csv(self, frame: pd.DataFrame) -> None:
        write_atomic(self.results_csv, lambda temporary: frame.to_csv(temporary, index=False))


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN or infinity: store them as null rather than write an unreadable file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(item) for item in value]
    return value


def records_frame(records: Iterable[CellRecord], metric_columns: list[str]) -> pd.DataFrame:
    """One row per cell; a metric that does not apply is NaN here and explained in ``not_applicable``."""
    import pandas as pd

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
