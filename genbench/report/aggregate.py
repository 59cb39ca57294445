"""Statistics over seeds: the mean, standard deviation and confidence half-width of every (data set, model, column).

Every number is the mean over seeds ± the half-width of its 95% confidence interval (Student t with n - 1
degrees of freedom, see ``genbench.toolkit.stats.confidence_interval``). Failed cells are left out of the statistics and
counted, with their errors; a column that does not apply keeps the reason the metric gave.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genbench.contract import CellRecord, Column
from genbench.report.runs import dataset_label, model_labels
from genbench.store.records import BASE_COLUMNS, NOT_APPLICABLE_COLUMN
from genbench.toolkit.stats import confidence_interval

if TYPE_CHECKING:
    import pandas as pd

CONFIDENCE = 0.95
TRAIN_TIME = "train_time"
TRAIN_TIME_COLUMN = Column(TRAIN_TIME, "s", higher_is_better=False, description="wall-clock seconds to fit the model")
#: The columns of ``aggregate``'s result, one row per (data set, model, column).
SUMMARY_COLUMNS = [
    "dataset",
    "model",
    "column",
    "n",
    "mean",
    "std",
    "half_width",
    "seeds",
    "failed",
    "failures",
    "not_applicable",
]


@dataclass(frozen=True)
class SeedCell:
    """What aggregation needs of one cell, whether it came from a CellRecord or a results table row."""

    dataset: str
    model: str
    seed: int
    ok: bool
    error: str
    values: Mapping[str, float]
    not_applicable: Mapping[str, str]


def aggregate(
    data: pd.DataFrame | Iterable[pd.DataFrame] | Iterable[CellRecord], confidence: float = CONFIDENCE
) -> pd.DataFrame:
    """Mean, standard deviation, n and confidence half-width per (data set, model, column), over seeds.

    ``data`` is a results table (``genbench.run``'s or ``load_results``'s), several of them, or cell records.
    One row per (dataset, model, column), with ``SUMMARY_COLUMNS``: ``n`` counts the seeds that measured the
    column (failed cells are excluded from the statistics and counted in ``failed``, their errors in
    ``failures``); ``std`` and ``half_width`` are NaN where n < 2; ``not_applicable`` holds the metric's reason.
    """
    import pandas as pd  # here, not at the top: the CLI starts without pandas

    items = [data] if isinstance(data, pd.DataFrame) else list(data)
    if all(isinstance(item, CellRecord) for item in items):
        records = [item for item in items if isinstance(item, CellRecord)]
        cells = cells_of_records(records, [dataset_label(r) for r in records], model_labels(records))
        return summarize(cells, _record_columns(records), confidence)
    frames = [item for item in items if isinstance(item, pd.DataFrame)]
    if len(frames) != len(items):
        raise TypeError("aggregate takes results tables (pandas DataFrames) or CellRecords, not a mix")
    frame = pd.concat(frames, ignore_index=True)
    columns = _frame_columns(frame)
    return summarize(_cells_of_frame(frame, columns), columns, confidence)


def summarize(cells: Sequence[SeedCell], columns: Sequence[str], confidence: float = CONFIDENCE) -> pd.DataFrame:
    """The statistics of ``aggregate`` for cells already labelled with their rows."""
    import pandas as pd

    rows: dict[tuple[str, str], list[SeedCell]] = defaultdict(list)
    for cell in cells:
        rows[(cell.dataset, cell.model)].append(cell)
    summary = [
        _summary_row(dataset, model, column, group, confidence)
        for (dataset, model), group in rows.items()
        for column in columns
    ]
    frame = pd.DataFrame(summary, columns=SUMMARY_COLUMNS)
    frame.attrs["confidence"] = confidence
    return frame


def _summary_row(dataset: str, model: str, column: str, cells: list[SeedCell], confidence: float) -> dict[str, Any]:
    ok = [cell for cell in cells if cell.ok]
    values = [cell.values[column] for cell in ok if column in cell.values]
    mean, std, n, half_width = confidence_interval(values, confidence) if values else (math.nan, math.nan, 0, math.nan)
    reasons = dict.fromkeys(cell.not_applicable[column] for cell in ok if column in cell.not_applicable)
    return {
        "dataset": dataset,
        "model": model,
        "column": column,
        "n": n,
        "mean": mean,
        "std": std,
        "half_width": half_width,
        "seeds": len(cells),
        "failed": len(cells) - len(ok),
        "failures": _failures([cell for cell in cells if not cell.ok]),
        "not_applicable": "; ".join(reasons),
    }


def _failures(failed: list[SeedCell]) -> str:
    """'seeds 0, 2: RuntimeError: boom; seed 1: NaN loss': each error once, with the seeds it hit."""
    seeds: dict[str, list[int]] = defaultdict(list)
    for cell in failed:
        seeds[cell.error or "no error recorded"].append(cell.seed)
    parts = []
    for error, hit in seeds.items():
        label = "seed" if len(hit) == 1 else "seeds"
        parts.append(f"{label} {', '.join(map(str, sorted(hit)))}: {error}")
    return "; ".join(parts)


def cells_of_records(records: Sequence[CellRecord], datasets: Sequence[str], models: Sequence[str]) -> list[SeedCell]:
    return [
        SeedCell(
            dataset,
            model,
            record.seed,
            record.status == "ok",
            record.error or "",
            _finite({**record.metrics, TRAIN_TIME: record.train_time}),
            dict(record.not_applicable),
        )
        for record, dataset, model in zip(records, datasets, models, strict=True)
    ]


def _finite(values: Mapping[str, float | None]) -> dict[str, float]:
    return {key: float(v) for key, v in values.items() if v is not None and math.isfinite(v)}


def _record_columns(records: Sequence[CellRecord]) -> list[str]:
    """Metric columns in the order records name them, then train_time."""
    named = dict.fromkeys(c for r in records for c in [*r.metrics, *r.not_applicable] if c != TRAIN_TIME)
    return [*named, TRAIN_TIME]


def _frame_columns(frame: pd.DataFrame) -> list[str]:
    """The metric columns of a results table: everything but the fixed ones, then train_time."""
    fixed = {*BASE_COLUMNS, NOT_APPLICABLE_COLUMN, "cell_id"}
    return [str(column) for column in frame.columns if column not in fixed] + [TRAIN_TIME]


def _cells_of_frame(frame: pd.DataFrame, columns: Sequence[str]) -> list[SeedCell]:
    cells = []
    for row in frame.to_dict("records"):
        values = _finite({column: _number(row.get(column)) for column in columns})
        cells.append(
            SeedCell(
                str(row["dataset"]),
                str(row["model"]),
                int(row["seed"]),
                row["status"] == "ok",
                _text(row.get("error")),
                values,
                parse_not_applicable(_text(row.get(NOT_APPLICABLE_COLUMN)), columns),
            )
        )
    return cells


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    """A text cell of a results table; read back from CSV an empty one is NaN."""
    return value if isinstance(value, str) else ""


def parse_not_applicable(text: str, columns: Sequence[str]) -> dict[str, str]:
    """Invert the results table's 'nll: reason; bpd: reason' (a reason may itself contain '; ')."""
    if not text or not columns:
        return {}
    names = "|".join(re.escape(column) for column in sorted(columns, key=len, reverse=True))
    starts = list(re.finditer(rf"(?:^|; )({names}): ", text))
    ends = [match.start() for match in starts[1:]] + [len(text)]
    return {match.group(1): text[match.end() : end] for match, end in zip(starts, ends, strict=True)}
