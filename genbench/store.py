"""The results directory: atomic per-cell records, checkpoints (safetensors + JSON), run.json, results.csv.

    <run>/run.json              command, settings, package versions, git revision, device, times, cell ids
    <run>/cells/<cell>.json     one CellRecord per cell
    <run>/checkpoints/<key>.*   safetensors tensors + a JSON sidecar, loaded without unpickling
    <run>/samples/<cell>.png    a grid of samples
    <run>/results.csv           one row per cell of the latest invocation

Every write goes to a temporary file that is then renamed over the target, so a crash leaves either the old
file or the new one, never half of one; temporary files that a killed run left behind are removed when the
next run starts (``remove_stale_temporaries``).

Every cell record, checkpoint and cached file carries its SHA-256: a JSON file in its own ``sha256`` field (of
its canonical JSON without that field), a safetensors file in the ``tensors_sha256`` field of its JSON sidecar.
Reading verifies it. A file that fails its check, does not parse or does not fit its schema is never used: it
is reported in one warning line (``DamagedFileWarning``), moved aside to ``<name>.corrupt`` (never deleted)
and computed again (``read_checked_json``, ``load_checked_tensors``, ``set_aside``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from genbench.text import warn
from genbench.types import CellRecord, Column, GenbenchError
from genbench.validation import check_fields, check_value, non_finite_paths

if TYPE_CHECKING:
    import pandas as pd

#: The leading columns of every results table; metric columns follow in the order the metrics were asked for.
BASE_COLUMNS = ["model", "dataset", "seed", "status", "error", "train_time"]
NOT_APPLICABLE_COLUMN = "not_applicable"
#: The status ``show`` gives a cell whose record is damaged (a record on disk has "ok" or "failed").
DAMAGED = "damaged"


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
    # The writer's process id in the name tells a later run whether the file is half-made by a dead process.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
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
    refuse_non_finite(path, data)
    text = json.dumps(data, indent=2, sort_keys=False, default=str, allow_nan=False)
    write_atomic(path, lambda temporary: _write_text(temporary, text + "\n"))


def refuse_non_finite(path: Path, data: Any) -> None:
    unwritable = non_finite_paths(data)
    if unwritable:
        raise ValueError(f"refusing to write NaN or infinity into {path} (at {', '.join(unwritable)})")


def _write_text(path: Path, text: str) -> None:
    path.write_text(text)


# ------------------------------------------------------------------------------------ half-made files

#: write_atomic's temporary files: ".<target>.<pid>.<mkstemp's 8 characters>.tmp" (the pid is optional: files
#: of genbench versions before it was added).
TEMPORARY_NAME = re.compile(r"^\.(?P<target>.+?)\.(?:(?P<pid>\d+)\.)?[a-z0-9_]{8}\.tmp$")


def remove_stale_temporaries(folders: Iterable[Path]) -> list[Path]:
    """Delete write_atomic's temporary files under ``folders`` whose writer is no longer running; return them.

    Only genbench's own pattern is touched. A file whose writer still runs (another genbench process sharing the
    cache) is left alone; so is one of another machine sharing the folder, if its process id is alive here.
    """
    removed = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob(".*.tmp")):
            match = TEMPORARY_NAME.match(path.name)
            if match is None or not path.is_file() or _process_alive(match["pid"]):
                continue
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _process_alive(pid: str | None) -> bool:
    if pid is None or int(pid) == os.getpid():
        return False  # an old-style name, or this process, which is not writing yet
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:
        return True  # another user's process (PermissionError): alive
    return True


# --------------------------------------------------------------------------------------- checksums

CHECKSUM_FIELD = "sha256"
TENSORS_CHECKSUM_FIELD = "tensors_sha256"
CORRUPT_SUFFIX = ".corrupt"


class DamagedFileWarning(UserWarning):
    """A result or cache file failed its checksum, did not parse or did not fit its schema; it was not used."""


class DamagedFile(Exception):
    """Raised by the checked readers: the file is unusable, for the reason given."""


def json_checksum(data: Any) -> str:
    """SHA-256 of the canonical JSON of ``data`` (sorted keys, no spaces): independent of indentation."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def write_checked_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` atomically with its checksum in the field ``sha256``."""
    refuse_non_finite(path, data)
    # The checksum is of the data as it reads back (tuples as lists, paths as strings), so that it verifies.
    plain = json.loads(json.dumps(dict(data), default=str, allow_nan=False))
    plain.pop(CHECKSUM_FIELD, None)
    write_json_atomic(path, {**plain, CHECKSUM_FIELD: json_checksum(plain)})


def read_checked_json(
    path: Path, schema: Callable[[dict[str, Any]], str | None] | None = None, *, unchecked_ok: bool = False
) -> dict[str, Any]:
    """The JSON object in ``path`` without its checksum; DamagedFile if it is not what was written.

    ``schema`` returns what is wrong with the object, or None. ``unchecked_ok`` accepts an object without a
    checksum field (written by a genbench before checksums), still checked against ``schema``.
    """
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DamagedFile(f"not valid JSON ({type(error).__name__}: {error})") from None
    if not isinstance(data, dict):
        raise DamagedFile(f"a JSON {type(data).__name__} where an object was expected")
    checksum = data.pop(CHECKSUM_FIELD, None)
    if checksum is None and not unchecked_ok:
        raise DamagedFile(f"no {CHECKSUM_FIELD} field")
    if checksum is not None and checksum != json_checksum(data):
        raise DamagedFile("SHA-256 mismatch: its content changed after it was written")
    problem = schema(data) if schema is not None else None
    if problem:
        raise DamagedFile(problem)
    return data


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks (checkpoints and sample files may be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checked_tensors(
    tensors_path: Path, sidecar_path: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> None:
    """Tensors as safetensors, then the JSON sidecar with their SHA-256: a sidecar on disk means a whole entry."""
    from safetensors.torch import save_file

    checksum = []

    def write(temporary: Path) -> None:
        save_file({name: value.contiguous() for name, value in tensors.items()}, str(temporary))
        checksum.append(file_sha256(temporary))

    write_atomic(tensors_path, write)
    write_checked_json(sidecar_path, {**meta, TENSORS_CHECKSUM_FIELD: checksum[0]})


def load_checked_tensors(
    tensors_path: Path, sidecar_path: Path, schema: Callable[[dict[str, Any]], str | None] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The tensors and sidecar written by ``save_checked_tensors``, verified; None when there is no entry.

    A damaged entry (either file) is set aside with a warning and None is returned, so the caller computes it
    again. Tensors without a sidecar are an entry whose writer was killed: None, and the next save replaces it.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not sidecar_path.is_file():
        return None
    try:
        meta = read_checked_json(sidecar_path, _with_tensors_checksum(schema))
    except DamagedFile as damage:
        set_aside([sidecar_path, tensors_path], str(damage))
        return None
    try:
        if not tensors_path.is_file():
            raise DamagedFile("the file is missing while its sidecar exists")
        if file_sha256(tensors_path) != meta[TENSORS_CHECKSUM_FIELD]:
            raise DamagedFile("SHA-256 mismatch: its content changed after it was written")
        tensors = load_file(str(tensors_path), device="cpu")
    except (DamagedFile, SafetensorError) as damage:
        set_aside([tensors_path, sidecar_path], str(damage))
        return None
    meta.pop(TENSORS_CHECKSUM_FIELD)
    return tensors, meta


def _with_tensors_checksum(
    schema: Callable[[dict[str, Any]], str | None] | None,
) -> Callable[[dict[str, Any]], str | None]:
    def check(meta: dict[str, Any]) -> str | None:
        if not isinstance(meta.get(TENSORS_CHECKSUM_FIELD), str):
            return f"the sidecar has no {TENSORS_CHECKSUM_FIELD}"
        return schema(meta) if schema is not None else None

    return check


def set_aside(paths: Sequence[Path], reason: str) -> list[Path]:
    """Rename the existing ``paths`` (the damaged file first, then files that belong with it) to
    ``<name>.corrupt`` (``.corrupt.1``, ... if taken), and warn in one line."""
    moved = []
    for path in paths:
        if not path.exists():
            continue
        target = path.with_name(path.name + CORRUPT_SUFFIX)
        number = 0
        while target.exists():
            number += 1
            target = path.with_name(f"{path.name}{CORRUPT_SUFFIX}.{number}")
        os.replace(path, target)
        moved.append(target)
    where = ", ".join(str(target) for target in moved) or "nothing left to move"
    # One line, after the move: even where warnings are errors, the damaged file is out of the way.
    warnings.warn(
        f"damaged file {paths[0]}: {' '.join(reason.split())}; moved aside to {where}; it is computed again",
        DamagedFileWarning,
        stacklevel=3,
    )
    return moved


# ----------------------------------------------------------------------------------- run directory


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
        return load_checked_tensors(*self.checkpoint_paths(key), schema=_checkpoint_problem)

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


#: The JSON types of CellRecord's fields (a record of another shape is damaged).
_RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "cell_id": (str,),
    "model": (str,),
    "dataset": (str,),
    "seed": (int,),
    "status": (str,),
    "config": (dict,),
    "checkpoint_key": (str,),
    "error": (str, type(None)),
    "traceback": (str, type(None)),
    "train_time": (int, float, type(None)),
    "metrics": (dict,),
    "not_applicable": (dict,),
    "provenance": (dict,),
    "dataset_provenance": (dict,),
    "device": (str,),
    "curve": (list,),
    "trained": (bool,),
    "started": (str,),
    "finished": (str,),
}
_REQUIRED_RECORD_FIELDS = [f.name for f in dataclasses.fields(CellRecord) if f.default is dataclasses.MISSING]


def record_problem(data: Mapping[str, Any], cell_id: str) -> str | None:
    """What makes ``data`` not a CellRecord of cell ``cell_id``, or None."""
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(CellRecord)})
    missing = [name for name in _REQUIRED_RECORD_FIELDS if name not in data]
    if unknown or missing:
        return f"not a cell record: fields {unknown} unknown, {missing} missing"
    for name, value in data.items():
        types = _RECORD_TYPES.get(name, (object,))  # a field added later is checked by its presence only
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return f"not a cell record: {name} is a {type(value).__name__}"
    if data["cell_id"] != cell_id:
        return f"the record of cell {data['cell_id']!r} in the file of cell {cell_id!r}"
    values = data["metrics"].values()
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        return "not a cell record: a metric value is not a finite number"
    return None


def _checkpoint_problem(meta: Mapping[str, Any]) -> str | None:
    train_time = meta.get("train_time")
    if train_time is not None and not isinstance(train_time, int | float):
        return f"train_time is a {type(train_time).__name__}"
    if not isinstance(meta.get("curve", []), list):
        return "curve is not a list"
    return None


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
    """The results of a run directory (or of its results.csv) as the DataFrame ``genbench.run`` returned.

    A damaged cell record is skipped with a warning and shown as a row of status "damaged"."""
    path = Path(path)
    run_dir = RunDirectory(path.parent if path.name == "results.csv" else path)
    if not run_dir.root.exists():
        raise GenbenchError(f"{run_dir.root} does not exist; give a run directory such as results/<run>")
    run = run_dir.read_run()
    stored = read_records(run_dir, run.get("cells", []))
    dataset = str((run.get("request") or {}).get("dataset", ""))
    records = [*stored.records, *(damaged_row(cell_id, dataset, why) for cell_id, why in stored.damaged.items())]
    order = {cell_id: index for index, cell_id in enumerate(run.get("cells", []))}
    records.sort(key=lambda record: order[record.cell_id])
    frame = records_frame(records, list(run.get("columns", [])))
    frame.attrs["run_dir"] = str(run_dir.root)
    return frame


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


#: config.cell_id's names: "<model>-<dataset>-seed<seed>-<hash>".
CELL_ID = re.compile(r"^(?P<head>.+)-seed(?P<seed>\d+)-[0-9a-f]+$")


def damaged_row(cell_id: str, dataset: str, reason: str) -> CellRecord:
    """A stand-in record for a table row that says the cell's record is damaged (model and seed from its id)."""
    match = CELL_ID.match(cell_id)
    model = match["head"].removesuffix(f"-{dataset}") if match else cell_id
    seed = int(match["seed"]) if match else -1
    error = f"damaged record: {reason}"
    return CellRecord(cell_id, model, dataset, seed, DAMAGED, {}, "", error=error)


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
        f"{status}: {m} seed {s}: {error}" for m, s, status, error in _rows(frame, "status", "error") if status != "ok"
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
