"""The results table: cell records as a pandas frame (results.csv), and that frame printed for a terminal."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genbench.contract import CellRecord, GenbenchError

if TYPE_CHECKING:
    import pandas as pd

from genbench.store.layout import RunDirectory, read_records
from genbench.store.records import BASE_COLUMNS, NOT_APPLICABLE_COLUMN, damaged_row

#: The column that names each cell's evaluation-time options, where a run swept some.
SAMPLE_OPTIONS_COLUMN = "sample_options"


def records_frame(records: Iterable[CellRecord], metric_columns: list[str]) -> pd.DataFrame:
    """One row per cell; a metric that does not apply is NaN here and explained in ``not_applicable``.

    A cell that did not finish ("failed", "damaged") shows no metric value: what it measured before it failed stays
    in its record, for debugging, and never reaches a table. ``eval_time`` is the seconds its metrics took in all."""
    import pandas as pd

    records = list(records)
    # A sweep of evaluation-time options (--sample-option) evaluates one model several times: say which time.
    swept = any(record.sample_options for record in records)
    rows = []
    for record in records:
        row: dict[str, Any] = {
            "model": record.model,
            "dataset": record.dataset,
            "seed": record.seed,
            "status": record.status,
            "error": record.error or "",
            "train_time": record.train_time,
            "eval_time": math.fsum(record.metric_times.values()) if record.metric_times else math.nan,
        }
        measured = record.metrics if record.status == "ok" else {}
        for column in metric_columns:
            row[column] = measured.get(column, math.nan)
        row[NOT_APPLICABLE_COLUMN] = "; ".join(f"{c}: {why}" for c, why in record.not_applicable.items())
        row["cell_id"] = record.cell_id
        if swept:
            row[SAMPLE_OPTIONS_COLUMN] = ", ".join(f"{key}={value}" for key, value in record.sample_options.items())
        rows.append(row)
    options = [SAMPLE_OPTIONS_COLUMN] if swept else []
    columns = [*BASE_COLUMNS[:3], *options, *BASE_COLUMNS[3:], *metric_columns, NOT_APPLICABLE_COLUMN, "cell_id"]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ["train_time", "eval_time", *metric_columns]:
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


def format_table(frame: pd.DataFrame) -> str:
    """The results as a fixed-width table for a terminal: N/A where a metric does not apply, failures named."""
    shown = frame.drop(columns=["cell_id", NOT_APPLICABLE_COLUMN, "error"], errors="ignore").copy()
    for column in shown.columns:
        if shown[column].dtype.kind == "f":
            shown[column] = [
                _format_number(value, column, row) for row, value in zip(frame.itertuples(), shown[column], strict=True)
            ]
    # A column no row wrote (an optional one: evaluation repeats, FD-infinity, when not asked for) is no column here.
    unwritten = [column for column in shown.columns if (shown[column].astype(str) == "-").all()]
    text = shown.drop(columns=unwritten).to_string(index=False)
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
