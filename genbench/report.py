"""Leaderboards: the cells of one or many runs aggregated over seeds, as Markdown, self-contained HTML and text.

Every number is the mean over seeds ± the half-width of its 95% confidence interval (Student t with n - 1
degrees of freedom, see ``genbench.stats.confidence_interval``); one seed shows its value and says that it has
no interval. Failed cells are counted and their errors shown beside the model; a column that does not apply
shows N/A with the reason the metric gave.

Rows are (data set, model). A data set is its name plus its binarization: binarized digits are another data
set, with other levels and other numbers, so they get a table of their own. A model that appears with several
configs (runs with other hyperparameters) gets one row per config, labelled by the fields that differ.

Protocol. Numbers are only ranked side by side when they were measured the same way; otherwise
``build_leaderboard`` raises GenbenchError naming the column, the runs and cells, and the fields that differ:

- the data set: every field of its provenance (source, split, sizes, levels, shape, content fingerprint,
  binarization) must agree among the cells of one data set;
- a metric column: every field of the metric's provenance in the cell record (e.g. ``k`` of ``nll``,
  ``extractor``, ``n_real`` and ``n_fake`` of ``fid``, ``split``, ``n_images``, ``batch_size``, ``repeats``
  and ``device`` of ``sample_time``) must agree among the cells of one data set that record it, except
  - ``MEASUREMENT_FIELDS``: what a measurement found or where it cached things, not how it measured;
  - ``PER_MODEL_FIELDS`` (``method``): how a model gives its likelihood (exact, or an importance-weighted
    bound) is a property of the model class, so it must agree among the cells of one model, may differ
    between models, and is listed per model in the protocol section;
- a column whose provenance records a ``device`` is a timing, so the hardware that ran it (run.json's
  device type and name) is protocol too: sample times on a GPU and on a CPU are never ranked together;
- ``train_time`` comes from the cell record, not a metric: its protocol is the device and hardware.

Where several cells measure the same (data set, model, seed) (the same run copied, or a run repeated under
another name), the one that finished last is used and the leaderboard notes it.

This module reads run directories only; it imports no plugin.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import html
import io
import json
import math
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from genbench.stats import confidence_interval
from genbench.store import (
    BASE_COLUMNS,
    NOT_APPLICABLE_COLUMN,
    RunDirectory,
    check_writable_folder,
    read_records,
    write_atomic,
)
from genbench.text import markdown_safe, terminal_safe
from genbench.types import CellRecord, Column, GenbenchError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

CONFIDENCE = 0.95
TRAIN_TIME = "train_time"
TRAIN_TIME_COLUMN = Column(TRAIN_TIME, "s", higher_is_better=False, description="wall-clock seconds to fit the model")
#: Provenance fields that record what a measurement found or where it cached things, not how it measured.
MEASUREMENT_FIELDS = frozenset({"seconds", "elapsed", "duration", "wall_time", "cache", "cache_path", "cached"})
#: Provenance fields that describe the model's own estimator; compared per model, not across models.
PER_MODEL_FIELDS = frozenset({"method"})
#: The quality axis of the quality-versus-speed plot and the column rows are ranked by, in order of preference.
QUALITY_COLUMNS = ("fid", "bpd", "nll")
SPEED_COLUMN = "sample_time"
MARKDOWN_NAME, HTML_NAME = "leaderboard.md", "leaderboard.html"
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


# ---------------------------------------------------------------------------------------- reading runs


@dataclass(frozen=True)
class Run:
    """One run directory as read from disk: its run.json and the records of the cells it lists."""

    root: Path
    info: dict[str, Any]
    records: tuple[CellRecord, ...]
    #: Cells that run.json lists but that have no record (yet): an interrupted or running run.
    missing: tuple[str, ...] = ()
    #: (cell id, why its record is damaged: a failed checksum, not JSON, not a record): skipped.
    damaged: tuple[tuple[str, str], ...] = ()

    @property
    def hardware(self) -> str:
        device = self.info.get("device") or {}
        return " ".join(str(device[key]) for key in ("type", "name") if device.get(key)) or "unknown"


def find_run_dirs(paths: Sequence[Path]) -> list[Path]:
    """Each path is a run directory (holding run.json), its results.csv, or a folder of run directories."""
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise GenbenchError(f"{path} does not exist; give run directories (results/<run>) or a folder of them")
        if path.is_file():
            path = path.parent
        if (path / "run.json").is_file():
            found.append(path)
            continue
        children = sorted(child for child in path.iterdir() if (child / "run.json").is_file())
        if not children:
            raise GenbenchError(f"{path} holds no run directories (folders with a run.json), e.g. results/<run>")
        found.extend(children)
    return list(dict.fromkeys(found))


def read_run(root: Path) -> Run:
    directory = RunDirectory(root)
    info = directory.read_run()
    stored = read_records(directory, info.get("cells", []))
    return Run(root, info, tuple(stored.records), tuple(stored.missing), tuple(stored.damaged.items()))


# ----------------------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Entry:
    """One cell as the leaderboard sees it: its record, its run, and the row (data set, model) it counts in."""

    record: CellRecord
    run: Run
    dataset: str
    model: str


def dataset_label(record: CellRecord) -> str:
    """Binarized data are another data set (other levels, other numbers), so they get a table of their own."""
    return f"{record.dataset} (binarized)" if record.dataset_provenance.get("binarized") else record.dataset


def model_labels(records: Sequence[CellRecord]) -> list[str]:
    """The model's name, plus the config fields that differ where one model appears with several configs."""
    configs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if _label_fields(record) not in configs[record.model]:
            configs[record.model].append(_label_fields(record))
    labels = []
    for record in records:
        variants = configs[record.model]
        differing = sorted({key for config in variants for key in config if _differs(variants, key)})
        details = ", ".join(f"{key}={_label_fields(record).get(key)}" for key in differing)
        labels.append(f"{record.model} ({details})" if details else record.model)
    return labels


def _label_fields(record: CellRecord) -> dict[str, Any]:
    """The config, and where the model came from: weights from two files are two rows, as two configs are."""
    origin = record.provenance.get("origin")
    made = f"{origin.get('file')} ({str(origin.get('sha256'))[:8]})" if isinstance(origin, dict) else "training"
    return {**record.config, "from": made}


def _differs(configs: list[dict[str, Any]], key: str) -> bool:
    return len({_canonical(config.get(key)) for config in configs}) > 1


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def label_entries(runs: Sequence[Run]) -> list[Entry]:
    """Every cell of every run, with the row (data set, model) it counts in."""
    pairs = [(record, run) for run in runs for record in run.records]
    labels = model_labels([record for record, _ in pairs])
    return [
        Entry(record, run, dataset_label(record), model) for (record, run), model in zip(pairs, labels, strict=True)
    ]


def latest_per_seed(entries: Sequence[Entry]) -> tuple[list[Entry], list[str]]:
    """One cell per (data set, model, seed), the one that finished last, and a note for each cell left out."""
    latest: dict[tuple[str, str, int], Entry] = {}
    notes = []
    for entry in entries:
        key = (entry.dataset, entry.model, entry.record.seed)
        earlier = latest.get(key)
        if earlier is not None:
            entry, dropped = sorted([earlier, entry], key=lambda e: e.record.finished, reverse=True)
            notes.append(
                f"{entry.model} seed {entry.record.seed} on {entry.dataset} is in {dropped.run.root} and "
                f"{entry.run.root}: the later, from {entry.run.root}, is used"
            )
        latest[key] = entry
    return list(latest.values()), notes


def missing_notes(runs: Sequence[Run]) -> list[str]:
    notes = [f"{r.root}: {len(r.missing)} cells have no record yet (interrupted or running)" for r in runs if r.missing]
    return notes + [
        f"{run.root}: damaged record of cell {cell_id} skipped ({why}); rerun the run's command to recompute it"
        for run in runs
        for cell_id, why in run.damaged
    ]


# ------------------------------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class _Cell:
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
        cells = _cells_of_records(records, [dataset_label(r) for r in records], model_labels(records))
        return _summarize(cells, _record_columns(records), confidence)
    frames = [item for item in items if isinstance(item, pd.DataFrame)]
    if len(frames) != len(items):
        raise TypeError("aggregate takes results tables (pandas DataFrames) or CellRecords, not a mix")
    frame = pd.concat(frames, ignore_index=True)
    columns = _frame_columns(frame)
    return _summarize(_cells_of_frame(frame, columns), columns, confidence)


def _summarize(cells: Sequence[_Cell], columns: Sequence[str], confidence: float = CONFIDENCE) -> pd.DataFrame:
    """The statistics of ``aggregate`` for cells already labelled with their rows."""
    import pandas as pd

    rows: dict[tuple[str, str], list[_Cell]] = defaultdict(list)
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


def _summary_row(dataset: str, model: str, column: str, cells: list[_Cell], confidence: float) -> dict[str, Any]:
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


def _failures(failed: list[_Cell]) -> str:
    """'seeds 0, 2: RuntimeError: boom; seed 1: NaN loss': each error once, with the seeds it hit."""
    seeds: dict[str, list[int]] = defaultdict(list)
    for cell in failed:
        seeds[cell.error or "no error recorded"].append(cell.seed)
    parts = []
    for error, hit in seeds.items():
        label = "seed" if len(hit) == 1 else "seeds"
        parts.append(f"{label} {', '.join(map(str, sorted(hit)))}: {error}")
    return "; ".join(parts)


def _cells_of_records(records: Sequence[CellRecord], datasets: Sequence[str], models: Sequence[str]) -> list[_Cell]:
    return [
        _Cell(
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


def _cells_of_frame(frame: pd.DataFrame, columns: Sequence[str]) -> list[_Cell]:
    cells = []
    for row in frame.to_dict("records"):
        values = _finite({column: _number(row.get(column)) for column in columns})
        cells.append(
            _Cell(
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


# ----------------------------------------------------------------------------------------- protocol


def check_protocols(entries: Sequence[Entry], columns: Sequence[str]) -> dict[tuple[str, str], dict[str, str]]:
    """Refuse numbers measured differently; return, per (data set, column), its protocol for the report."""
    protocols: dict[tuple[str, str], dict[str, str]] = {}
    by_dataset: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_dataset[entry.dataset].append(entry)
    for dataset, group in by_dataset.items():
        protocols[(dataset, "data set")] = _agreed(
            "the data set", dataset, [(e, _protocol_fields(e.record.dataset_provenance)) for e in group]
        )
        for column in columns:
            measured = [(e, column_protocol(e, column)) for e in group if _measured(e.record, column)]
            if measured:
                protocols[(dataset, column)] = _agreed(f"column {column!r}", dataset, measured)
    return protocols


def _measured(record: CellRecord, column: str) -> bool:
    value = record.train_time if column == TRAIN_TIME else record.metrics.get(column)
    return record.status == "ok" and value is not None


def column_protocol(entry: Entry, column: str) -> dict[str, Any]:
    """How one cell measured one column (see the module docstring for which fields count)."""
    if column == TRAIN_TIME:
        return {"device": entry.record.device, "hardware": entry.run.hardware}
    metric = metric_of_column(column, entry)
    fields = _protocol_fields(entry.record.provenance.get(metric, {}) if metric else {})
    if "device" in fields:
        fields["hardware"] = entry.run.hardware
    return fields


def metric_of_column(column: str, entry: Entry) -> str | None:
    """The metric that wrote a column: run.json's column_metrics, else the metric named like the column or its
    longest prefix (kid -> kid_std)."""
    declared = entry.run.info.get("column_metrics", {}).get(column)
    if declared:
        return str(declared)
    candidates = [name for name in entry.record.provenance if column == name or column.startswith(f"{name}_")]
    return max(candidates, key=len) if candidates else None


def _protocol_fields(provenance: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in provenance.items() if key not in MEASUREMENT_FIELDS}


def _agreed(what: str, dataset: str, measured: list[tuple[Entry, dict[str, Any]]]) -> dict[str, str]:
    """The one value of each field (per model for PER_MODEL_FIELDS), or a GenbenchError naming what differs."""
    values: dict[str, dict[str, list[Entry]]] = defaultdict(lambda: defaultdict(list))
    shown: dict[str, Any] = {}
    for entry, fields in measured:
        for key, value in fields.items():
            scope = f"{key} of {entry.model}" if key in PER_MODEL_FIELDS else key
            values[scope][_canonical(value)].append(entry)
            shown[_canonical(value)] = value
    differing = {scope: found for scope, found in values.items() if len(found) > 1}
    if differing:
        _refuse(what, dataset, differing, shown)
    # field -> value -> the models it holds for ([] for a field that is one value across models)
    agreed: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for scope, found in sorted(values.items()):
        key, _, model = scope.partition(" of ")
        models = agreed[key][_plain(shown[next(iter(found))])]
        models += [model] if model else []
    return {
        key: "; ".join(f"{value} ({', '.join(models)})" if models else value for value, models in found.items())
        for key, found in agreed.items()
    }


def _refuse(what: str, dataset: str, differing: dict[str, dict[str, list[Entry]]], shown: dict[str, Any]) -> NoReturn:
    details = []
    for scope, found in differing.items():
        sides = [f"{scope}={_plain(shown[value])} in {_where(entries)}" for value, entries in found.items()]
        details.append(" vs ".join(sides))
    raise GenbenchError(
        f"refusing to rank {what} on {dataset} side by side: its protocol differs in "
        f"{', '.join(differing)}: {'; '.join(details)}. Rerun with the same settings, or report these runs separately"
    )


def _where(entries: list[Entry]) -> str:
    """'results/a (vae seeds 0, 1), results/b (gan seed 0)'."""
    seeds: dict[tuple[Path, str], list[int]] = defaultdict(list)
    for entry in entries:
        seeds[(entry.run.root, entry.model)].append(entry.record.seed)
    parts = []
    for (root, model), hit in seeds.items():
        label = "seed" if len(hit) == 1 else "seeds"
        parts.append(f"{root} ({model} {label} {', '.join(map(str, sorted(hit)))})")
    return ", ".join(parts)


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else _canonical(value)


# ------------------------------------------------------------------------------------- leaderboard


@dataclass
class Leaderboard:
    """Runs gathered into one table: the summary statistics, the protocol of every column, and the cells."""

    runs: list[Run]
    entries: list[Entry]
    columns: list[str]
    specs: dict[str, Column]
    #: ``aggregate``'s result: one row per (data set, model, column).
    table: pd.DataFrame
    #: (data set, column or "data set") -> field -> value, as the protocol section shows it.
    protocols: dict[tuple[str, str], dict[str, str]]
    notes: list[str] = field(default_factory=list)
    confidence: float = CONFIDENCE

    def __post_init__(self) -> None:
        # Renderers look up one (data set, model, column) at a time; a dict keeps that cheap and typed.
        self._summaries: dict[tuple[str, str, str], dict[str, Any]] = {}
        for row in self.table.to_dict("records"):
            summary = {str(key): value for key, value in row.items()}
            self._summaries[(summary["dataset"], summary["model"], summary["column"])] = summary

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(entry.dataset for entry in self.entries))

    def summary(self, dataset: str, model: str, column: str) -> dict[str, Any]:
        """One row of ``table``: n, mean, std, half_width, seeds, failed, failures, not_applicable."""
        return self._summaries[(dataset, model, column)]

    def summaries(self, dataset: str, column: str) -> list[dict[str, Any]]:
        return [s for (d, _, c), s in self._summaries.items() if d == dataset and c == column]

    def measured(self, dataset: str, column: str) -> bool:
        return any(summary["n"] > 0 for summary in self.summaries(dataset, column))

    def models(self, dataset: str) -> list[str]:
        """The rows of one data set's table, best first by its ranking column; unmeasured ones last."""
        order = [summary["model"] for summary in self.summaries(dataset, TRAIN_TIME)]
        ranking = self.ranking_column(dataset)
        if ranking is None:
            return order
        sign = -1.0 if self.specs[ranking].higher_is_better else 1.0
        keys = {}
        for model in order:
            mean = float(self.summary(dataset, model, ranking)["mean"])
            keys[model] = (1, 0.0) if math.isnan(mean) else (0, sign * mean)
        return sorted(order, key=keys.__getitem__)

    def ranking_column(self, dataset: str) -> str | None:
        """The quality column rows are ordered by: fid, else bpd, else nll, else the first measured column."""
        measured = [c for c in self.columns if c in self.specs and self.measured(dataset, c)]
        preferred = [c for c in QUALITY_COLUMNS if c in measured]
        return next(iter(preferred or measured), None)

    def best(self, dataset: str, column: str) -> set[str]:
        """The models with the best mean of a column (ties share it); none where the direction is unknown."""
        spec = self.specs.get(column)
        measured = [s for s in self.summaries(dataset, column) if s["n"] > 0]
        if spec is None or not measured:
            return set()
        pick = max if spec.higher_is_better else min
        target = pick(s["mean"] for s in measured)
        return {s["model"] for s in measured if s["mean"] == target}


def build_leaderboard(paths: Sequence[Path], confidence: float = CONFIDENCE) -> Leaderboard:
    """Gather run directories (or folders of them), check that their protocols agree, and aggregate over seeds."""
    runs = [read_run(root) for root in find_run_dirs([Path(p) for p in paths])]
    every = label_entries(runs)
    if not every:
        raise GenbenchError(f"no finished cells in {', '.join(str(run.root) for run in runs)}; run some first")
    columns = [*dict.fromkeys(c for run in runs for c in run.info.get("columns", []) if c != TRAIN_TIME), TRAIN_TIME]
    specs = column_specs(runs)
    # Checked before duplicates are dropped: a rerun with other settings is a conflict, not a replacement.
    protocols = check_protocols(every, columns)
    entries, notes = latest_per_seed(every)
    cells = _cells_of_records([e.record for e in entries], [e.dataset for e in entries], [e.model for e in entries])
    table = _summarize(cells, columns, confidence)
    return Leaderboard(runs, entries, columns, specs, table, protocols, notes + missing_notes(runs), confidence)


def column_specs(runs: Sequence[Run]) -> dict[str, Column]:
    """Unit and direction of every column; two runs that disagree on them measure different things."""
    specs: dict[str, tuple[Column, Path]] = {TRAIN_TIME: (TRAIN_TIME_COLUMN, Path("genbench"))}
    known = {f.name for f in dataclasses.fields(Column)}
    for run in runs:
        for name, raw in run.info.get("column_specs", {}).items():
            spec = Column(**{key: value for key, value in raw.items() if key in known})
            earlier = specs.setdefault(name, (spec, run.root))
            if (earlier[0].unit, earlier[0].higher_is_better) != (spec.unit, spec.higher_is_better):
                raise GenbenchError(
                    f"column {name!r} is {_direction(earlier[0])} in {earlier[1]} but {_direction(spec)} in "
                    f"{run.root}: different plugins wrote it; report these runs separately"
                )
    return {name: spec for name, (spec, _) in specs.items()}


def _direction(spec: Column) -> str:
    return f"{spec.unit or 'unitless'}, {'higher' if spec.higher_is_better else 'lower'} is better"


# --------------------------------------------------------------------------------- shared formatting


def format_estimate(summary: Mapping[str, Any]) -> str:
    """'2.42 ± 0.013', '2.42 (n=1, no interval)', 'N/A', 'failed' or '–' (not measured)."""
    n = int(summary["n"])
    if n >= 2:
        mean, half_width = float(summary["mean"]), float(summary["half_width"])
        # Seeds that agree to the last bits (a deterministic fit) leave only rounding noise: that is an interval of 0.
        spread = _significant(half_width, 2) if half_width > 1e-9 * abs(mean) else "0"
        return f"{_significant(mean, 4)} ± {spread}"
    if n == 1:
        return f"{_significant(summary['mean'], 4)} (n=1, no interval)"
    if summary["not_applicable"]:
        return "N/A"
    return "failed" if summary["failed"] == summary["seeds"] else "–"


def _significant(value: float, digits: int) -> str:
    """Round to ``digits`` significant digits, but write 100 rather than 1e+02 (as :g alone would)."""
    return f"{float(f'{value:.{digits}g}'):g}"


def format_failed(summary: Mapping[str, Any]) -> str:
    """'0', or '2 of 3 seeds failed: seeds 0, 2: RuntimeError: boom'."""
    if not summary["failed"]:
        return "0"
    return f"{summary['failed']} of {summary['seeds']} seeds failed: {summary['failures']}"


def column_header(column: str, spec: Column | None) -> str:
    """'bpd (bits/dim) ↓': ↓ lower is better, ↑ higher is better."""
    if spec is None:
        return column
    unit = f" ({spec.unit})" if spec.unit else ""
    return f"{column}{unit} {'↑' if spec.higher_is_better else '↓'}"


def interval_legend(leaderboard: Leaderboard) -> str:
    return (
        f"Each value is the mean over seeds ± the half-width of its {leaderboard.confidence:.0%} confidence "
        "interval (Student t, n - 1 degrees of freedom); a single seed has no interval. "
        "↓ lower is better, ↑ higher is better; the best value of each column is marked. "
        "Failed cells are left out of the statistics and counted under failed."
    )


@dataclass(frozen=True)
class TableCell:
    """One cell of a rendered table: its text, the value it sorts by, and whether it is its column's best."""

    text: str
    sort_value: float | str | None = None
    best: bool = False
    #: Why a metric does not apply, shown beside "N/A".
    reason: str = ""


def table_rows(leaderboard: Leaderboard, dataset: str) -> tuple[list[str], list[list[TableCell]]]:
    """Headers and rows of one data set's table, as every renderer shows them."""
    shown = [column for column in leaderboard.columns if _shown(leaderboard, dataset, column)]
    headers = ["model", "seeds", *(column_header(c, leaderboard.specs.get(c)) for c in shown), "failed"]
    best = {column: leaderboard.best(dataset, column) for column in shown}
    rows = []
    for model in leaderboard.models(dataset):
        # Seeds and failures are the same in every column of a row; train_time is always there.
        counts = leaderboard.summary(dataset, model, TRAIN_TIME)
        row = [TableCell(model, model), TableCell(str(counts["seeds"]), float(counts["seeds"]))]
        for column in shown:
            summary = leaderboard.summary(dataset, model, column)
            value = float(summary["mean"]) if summary["n"] else None
            row.append(TableCell(format_estimate(summary), value, model in best[column], summary["not_applicable"]))
        row.append(TableCell(format_failed(counts), float(counts["failed"])))
        rows.append(row)
    return headers, rows


def _shown(leaderboard: Leaderboard, dataset: str, column: str) -> bool:
    """A column is shown where a run of this data set asked for it, even if every cell of it failed."""
    return column == TRAIN_TIME or any(
        column in entry.run.info.get("columns", []) for entry in leaderboard.entries if entry.dataset == dataset
    )


def protocol_sections(leaderboard: Leaderboard) -> list[tuple[str, list[tuple[str, str]]]]:
    """The protocol of every number: (section title, [(subject, description)])."""
    datasets = [
        (dataset, _fields_text(leaderboard.protocols.get((dataset, "data set"), {})))
        for dataset in leaderboard.datasets
    ]
    columns = [
        (
            f"{dataset} · {column_header(column, leaderboard.specs.get(column))}",
            _column_text(leaderboard, dataset, column),
        )
        for dataset, column in leaderboard.protocols
        if column != "data set"
    ]
    runs = [(str(run.root), _run_text(run)) for run in leaderboard.runs]
    models = [(model, _fields_text(config)) for model, config in _model_configs(leaderboard).items()]
    plugins = plugin_lines(leaderboard.runs)
    return [("Data sets", datasets), ("Metrics", columns), ("Models", models), ("Plugins", plugins), ("Runs", runs)]


def plugin_lines(runs: Sequence[Run]) -> list[tuple[str, str]]:
    """Each plugin the runs loaded: its distribution (or module), version and source hash; once per distinct code."""
    lines: dict[tuple[str, str], None] = {}
    for run in runs:
        for plugin in run.info.get("plugins") or []:
            if not isinstance(plugin, dict):
                continue
            origin = plugin.get("distribution") or f"module {plugin.get('module')}"
            version = f" {plugin['version']}" if plugin.get("version") else ""
            source = plugin.get("source_hash") or "unknown"
            lines[(str(plugin.get("name")), f"{origin}{version}, source sha256 {source}")] = None
    return list(lines)


def _column_text(leaderboard: Leaderboard, dataset: str, column: str) -> str:
    spec = leaderboard.specs.get(column)
    description = f"{spec.description}. " if spec is not None and spec.description else ""
    return description + (_fields_text(leaderboard.protocols[(dataset, column)]) or "no protocol recorded")


def _fields_text(fields: Mapping[str, Any]) -> str:
    return "; ".join(f"{key}: {_plain(value)}" for key, value in fields.items())


def _run_text(run: Run) -> str:
    info = run.info
    device = info.get("device") or {}
    packages = ", ".join(f"{name} {version}" for name, version in (info.get("packages") or {}).items())
    parts = [
        f"git revision: {info.get('git_revision') or 'unknown'}",
        f"device: {run.hardware}" + (f", {device['torch_threads']} torch threads" if "torch_threads" in device else ""),
        f"python: {info.get('python', 'unknown')}",
        f"packages: {packages or 'unknown'}",
        f"started: {info.get('started', 'unknown')}",
        f"command: {' '.join(map(str, info.get('command', [])))}",
    ]
    return "; ".join(parts)


def _model_configs(leaderboard: Leaderboard) -> dict[str, dict[str, Any]]:
    return {entry.model: {**entry.record.config, **_origin_fields(entry.record)} for entry in leaderboard.entries}


def _origin_fields(record: CellRecord) -> dict[str, str]:
    """Where a model made elsewhere came from (genbench.origins): the kind, the file and its SHA-256."""
    origin = record.provenance.get("origin")
    if not isinstance(origin, dict):
        return {}
    return {"origin": f"{origin.get('kind', 'file')} {origin.get('file')}, sha256 {origin.get('sha256')}"}


# ------------------------------------------------------------------------------------------ text


def format_leaderboard(leaderboard: Leaderboard) -> str:
    """The leaderboard for a terminal: one fixed-width table per data set, then failures, N/A reasons, notes."""
    import pandas as pd

    blocks = []
    for dataset in leaderboard.datasets:
        headers, rows = table_rows(leaderboard, dataset)
        # The failed column shows its count here; the errors follow the table, where long lines do no harm.
        cells = [[*(_marked(cell) for cell in row[:-1]), str(row[-1].sort_value).removesuffix(".0")] for row in rows]
        # Names and errors come from files anyone could have written: each stays on its line, without escapes.
        frame = pd.DataFrame([[terminal_safe(cell) for cell in row] for row in cells], columns=headers)
        lines = [terminal_safe(f"== {dataset} =="), frame.to_string(index=False)]
        lines += [f"failed: {row[0].text}: {row[-1].text}" for row in rows if row[-1].text != "0"]
        lines += _na_notes(headers, rows)
        blocks.append("\n".join([lines[0], lines[1], *(terminal_safe(line) for line in lines[2:])]))
    notes = [terminal_safe(f"note: {note}") for note in leaderboard.notes]
    legend = f"mean ± {leaderboard.confidence:.0%} CI half-width over seeds; * best of its column"
    return "\n\n".join([*blocks, "\n".join([legend, *notes])])


def _marked(cell: TableCell) -> str:
    return f"{cell.text} *" if cell.best else cell.text


def _na_notes(headers: list[str], rows: list[list[TableCell]]) -> list[str]:
    """Each N/A reason once per column, with the models it concerns."""
    reasons: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        for header, cell in zip(headers, row, strict=True):
            if cell.reason and cell.text == "N/A":
                reasons[(header.split(" ")[0], cell.reason)].append(row[0].text)
    return [f"N/A {column} for {', '.join(models)}: {reason}" for (column, reason), models in reasons.items()]


# -------------------------------------------------------------------------------------- markdown


def render_markdown(leaderboard: Leaderboard) -> str:
    """leaderboard.md: the tables (mean ± half-width, failed counts, N/A reasons), notes and the protocol."""
    lines = ["# genbench leaderboard", "", _md(interval_legend(leaderboard)), ""]
    for dataset in leaderboard.datasets:
        headers, rows = table_rows(leaderboard, dataset)
        lines += [f"## {_md(dataset)}", "", _md_row(headers), _md_row(["---"] * len(headers))]
        lines += [_md_row([_md_cell(cell) for cell in row], escape=False) for row in rows]
        lines.append("")
    if leaderboard.notes:
        lines += ["## Notes", "", *(f"- {_md(note)}" for note in leaderboard.notes), ""]
    lines += ["## Protocol", ""]
    for title, items in protocol_sections(leaderboard):
        lines += [f"### {title}", "", *(f"- **{_md(subject)}**: {_md(text)}" for subject, text in items), ""]
    return "\n".join(lines)


def _md(text: str) -> str:
    """Plugin text as literal Markdown: no link, no HTML, no table break, one line."""
    return markdown_safe(text)


def _md_cell(cell: TableCell) -> str:
    text = f"N/A: {cell.reason}" if cell.text == "N/A" and cell.reason else cell.text
    return f"**{_md(text)}**" if cell.best else _md(text)


def _md_row(cells: list[str], escape: bool = True) -> str:
    return "| " + " | ".join(_md(cell) if escape else cell for cell in cells) + " |"


# ------------------------------------------------------------------------------------------ plots


@dataclass(frozen=True)
class Point:
    """One model on the quality-versus-speed plane, with the confidence half-width of its quality."""

    label: str
    speed: float
    quality: float
    quality_half_width: float


def pareto_front(points: Sequence[tuple[float, float]], higher_is_better: bool) -> list[bool]:
    """Which (time, quality) points no other point beats: at most as slow and at least as good, one strictly."""
    sign = -1.0 if higher_is_better else 1.0
    costs = [(time, sign * quality) for time, quality in points]
    return [
        not any(o[0] <= c[0] and o[1] <= c[1] and o != c for o in costs)  # o dominates c
        for c in costs
    ]


def quality_speed_points(leaderboard: Leaderboard, dataset: str) -> tuple[str, list[Point]] | None:
    """FID (else bpd) against sample time, per model that measured both; None where there is nothing to plot."""
    quality = next((c for c in QUALITY_COLUMNS[:2] if leaderboard.measured(dataset, c)), None)
    if quality is None or not leaderboard.measured(dataset, SPEED_COLUMN):
        return None
    points = []
    for model in leaderboard.models(dataset):
        speed, value = leaderboard.summary(dataset, model, SPEED_COLUMN), leaderboard.summary(dataset, model, quality)
        if speed["n"] and value["n"] and speed["mean"] > 0:
            points.append(Point(model, float(speed["mean"]), float(value["mean"]), float(value["half_width"])))
    return (quality, points) if points else None


def figure_png(draw: Callable[[Figure], None], size: tuple[float, float]) -> bytes:
    """Draw on a fresh Agg figure (no pyplot: no global state, no display) and return the PNG."""
    # Imported here: only HTML pages draw, and matplotlib takes a while to import.
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100, layout="constrained")
    draw(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def draw_quality_speed(figure: Figure, points: Sequence[Point], quality: Column, speed: Column) -> None:
    axes = figure.add_subplot()
    front = pareto_front([(p.speed, p.quality) for p in points], quality.higher_is_better)
    for index, (point, on_front) in enumerate(zip(points, front, strict=True)):
        color = f"C{index % 10}"
        error = point.quality_half_width if math.isfinite(point.quality_half_width) else None
        axes.errorbar(
            point.speed, point.quality, yerr=error, fmt="o", color=color, mfc=color if on_front else "white", ms=8
        )
        axes.annotate(_mpl(point.label), (point.speed, point.quality), xytext=(6, 4), textcoords="offset points")
    on = sorted((p.speed, p.quality) for p, f in zip(points, front, strict=True) if f)
    axes.step([x for x, _ in on], [y for _, y in on], where="post", ls="--", color="0.4", label="Pareto front")
    axes.set_xscale("log")
    axes.set_xlabel(_mpl(f"{speed.name} ({speed.unit}, log scale) — lower is better"))
    better = "higher" if quality.higher_is_better else "lower"
    axes.set_ylabel(_mpl(f"{quality.name} ({quality.unit}) — {better} is better"))
    axes.legend(loc="best", fontsize=8)
    axes.grid(alpha=0.3)


def draw_curves(figure: Figure, curves: Sequence[tuple[int, Sequence[Mapping[str, float]]]]) -> None:
    """Every recorded series of the training curve, one colour per series, one line per seed."""
    axes = figure.add_subplot()
    keys = list(dict.fromkeys(k for _, curve in curves for point in curve for k in point if k != "step"))
    for index, key in enumerate(keys):
        for position, (_, curve) in enumerate(curves):
            points = [(p["step"], p[key]) for p in curve if key in p and "step" in p and math.isfinite(p[key])]
            axes.plot(
                [x for x, _ in points],
                [y for _, y in points],
                color=f"C{index % 10}",
                marker="." if len(points) < 3 else None,
                alpha=0.8,
                label=_mpl(key) if position == 0 else None,
            )
    axes.set_xlabel("step")
    axes.set_title(f"{len(curves)} seed{'s' if len(curves) != 1 else ''}", fontsize=9)
    if axes.get_legend_handles_labels()[0]:  # matplotlib warns about a legend with nothing in it
        axes.legend(fontsize=8)
    axes.grid(alpha=0.3)


def _mpl(text: str) -> str:
    """Plugin text as literal matplotlib text: '$' would start mathtext."""
    return text.replace("$", r"\$")


def model_curves(leaderboard: Leaderboard, dataset: str, model: str) -> list[tuple[int, list[dict[str, float]]]]:
    entries = sorted(_entries_of(leaderboard, dataset, model), key=lambda e: e.record.seed)
    return [(e.record.seed, e.record.curve) for e in entries if e.record.curve]


def _entries_of(leaderboard: Leaderboard, dataset: str, model: str) -> list[Entry]:
    return [e for e in leaderboard.entries if e.dataset == dataset and e.model == model]


# ------------------------------------------------------------------------------------------- html


def render_html(leaderboard: Leaderboard) -> str:
    """leaderboard.html: one self-contained page (inline CSS and JS, images as data URIs, no network)."""
    body = [
        "<h1>genbench leaderboard</h1>",
        f'<p class="legend">{_h(interval_legend(leaderboard))} Click a column header to sort.</p>',
    ]
    body += [_html_dataset(leaderboard, dataset, index) for index, dataset in enumerate(leaderboard.datasets)]
    if leaderboard.notes:
        body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_h(n)}</li>" for n in leaderboard.notes) + "</ul>")
    body.append(_html_protocol(leaderboard))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>genbench leaderboard</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html_dataset(leaderboard: Leaderboard, dataset: str, index: int) -> str:
    headers, rows = table_rows(leaderboard, dataset)
    head = "".join(f'<th title="click to sort">{_h(header)}</th>' for header in headers)
    body = "".join("<tr>" + "".join(_html_cell(cell) for cell in row) + "</tr>" for row in rows)
    parts = [
        f'<section class="dataset" id="dataset-{index}"><h2>{_h(dataset)}</h2>',
        f'<table class="leaderboard sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>',
        _html_plot(leaderboard, dataset),
        _html_models(leaderboard, dataset),
        "</section>",
    ]
    return "\n".join(parts)


def _html_cell(cell: TableCell) -> str:
    sort = "" if cell.sort_value is None else f' data-sort="{_h(cell.sort_value)}"'
    best = ' class="best" title="best of its column"' if cell.best else ""
    reason = f'<br><small class="reason">{_h(cell.reason)}</small>' if cell.text == "N/A" and cell.reason else ""
    return f"<td{sort}{best}>{_h(cell.text)}{reason}</td>"


def _html_plot(leaderboard: Leaderboard, dataset: str) -> str:
    found = quality_speed_points(leaderboard, dataset)
    if found is None:
        return '<p class="no-plot">No quality-versus-speed plot: it needs sample_time and fid or bpd.</p>'
    quality, points = found
    specs = leaderboard.specs
    png = figure_png(lambda figure: draw_quality_speed(figure, points, specs[quality], specs[SPEED_COLUMN]), (7.0, 4.5))
    caption = f"{quality} against seconds per sampled image; filled markers and the dashed line: the Pareto front"
    plotted = {point.label for point in points}
    left_out = [model for model in leaderboard.models(dataset) if model not in plotted]
    if left_out:
        caption += f". Not plotted, for want of {quality} or {SPEED_COLUMN}: {', '.join(left_out)}"
    image = _img(png, "quality versus speed", "plot")
    return f"<h3>Quality versus speed</h3><figure>{image}<figcaption>{_h(caption)}</figcaption></figure>"


def _html_models(leaderboard: Leaderboard, dataset: str) -> str:
    """Per model: its samples beside real test images, and its training curves."""
    parts = ["<h3>Samples and training curves</h3>"]
    for model in leaderboard.models(dataset):
        figures = [_html_samples(leaderboard, dataset, model), _html_curves(leaderboard, dataset, model)]
        parts.append(f'<div class="model"><h4>{_h(model)}</h4><div class="row">{"".join(figures)}</div></div>')
    return "\n".join(parts)


def _html_samples(leaderboard: Leaderboard, dataset: str, model: str) -> str:
    entries = sorted(_entries_of(leaderboard, dataset, model), key=lambda e: (e.record.status != "ok", e.record.seed))
    for entry in entries:
        directory = RunDirectory(entry.run.root)
        samples = entry.run.root / "samples" / f"{entry.record.cell_id}.png"
        if samples.is_file() and directory.inside(samples):
            real = entry.run.root / "samples" / f"real-{entry.record.dataset}.png"
            figures = [_figure(samples, f"{model}, seed {entry.record.seed}", "samples")]
            if real.is_file() and directory.inside(real):
                figures.append(_figure(real, "real test images", "real"))
            return "".join(figures)
    return '<p class="no-samples">No samples (the model cannot sample, or every cell failed).</p>'


def _figure(path: Path, caption: str, kind: str) -> str:
    return f"<figure>{_img(path.read_bytes(), caption, kind)}<figcaption>{_h(caption)}</figcaption></figure>"


def _html_curves(leaderboard: Leaderboard, dataset: str, model: str) -> str:
    curves = model_curves(leaderboard, dataset, model)
    if not curves:
        return '<p class="no-curve">No training curve recorded.</p>'
    png = figure_png(lambda figure: draw_curves(figure, curves), (4.5, 3.0))
    return (
        f"<figure>{_img(png, f'training curves of {model}', 'curve')}<figcaption>training curves</figcaption></figure>"
    )


def _img(png: bytes, alt: str, kind: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="{kind}" alt="{_h(alt)}" src="data:image/png;base64,{data}">'


def _html_protocol(leaderboard: Leaderboard) -> str:
    parts = ['<section id="protocol"><h2>Protocol</h2>']
    for title, items in protocol_sections(leaderboard):
        rows = "".join(f"<tr><th>{_h(subject)}</th><td>{_h(text)}</td></tr>" for subject, text in items)
        parts.append(f'<h3>{_h(title)}</h3><table class="protocol">{rows}</table>')
    parts.append("</section>")
    return "\n".join(parts)


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.legend { color: #555; max-width: 60em; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
table.leaderboard th { background: #f3f3f3; cursor: pointer; user-select: none; white-space: nowrap; }
table.leaderboard th[data-order="asc"]::after { content: " ▲"; }
table.leaderboard th[data-order="desc"]::after { content: " ▼"; }
table.leaderboard td { font-variant-numeric: tabular-nums; }
td.best { background: #e3f4e6; font-weight: 600; }
small.reason { color: #777; }
.model { margin: 1em 0; } .model .row { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
figure { margin: 0; } figcaption { color: #555; font-size: 12px; }
img.samples, img.real { width: 200px; image-rendering: pixelated; border: 1px solid #ccc; }
img.plot { max-width: 100%; } img.curve { width: 360px; }
table.protocol th { background: #f8f8f8; max-width: 20em; } table.protocol td { font-size: 12px; }
"""

#: Sort a table by a clicked header (numbers by data-sort, empty cells last); '#sort=bpd' or '#sort=-bpd' in the
#: address sorts on load; and, for the browser test, body[data-images] says how many images decoded.
SCRIPT = """
function sortTable(th, descending) {
  const table = th.closest("table"), index = Array.from(th.parentNode.children).indexOf(th);
  const key = (row) => { const v = row.children[index].dataset.sort; return v === undefined ? null : v; };
  const rows = Array.from(table.tBodies[0].rows);
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === null || y === null) return (x === null) - (y === null);
    const nx = Number(x), ny = Number(y);
    const order = isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny;
    return descending ? -order : order;
  });
  rows.forEach((row) => table.tBodies[0].appendChild(row));
  table.querySelectorAll("th").forEach((other) => delete other.dataset.order);
  th.dataset.order = descending ? "desc" : "asc";
}
document.querySelectorAll("table.sortable th").forEach((th) => {
  th.addEventListener("click", () => sortTable(th, th.dataset.order === "asc"));
});
const wanted = decodeURIComponent(location.hash).match(/^#sort=(-?)(.+)$/);
if (wanted) {
  document.querySelectorAll("table.sortable th").forEach((th) => {
    if (th.textContent.split(" ")[0] === wanted[2]) sortTable(th, wanted[1] === "-");
  });
}
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const decoded = images.filter((img) => img.complete && img.naturalWidth > 0).length;
  document.body.dataset.images = decoded + "/" + images.length;
});
"""


# ------------------------------------------------------------------------------------------ files


def write_leaderboard(leaderboard: Leaderboard, out_dir: Path) -> tuple[Path, Path]:
    """Write leaderboard.md and leaderboard.html into ``out_dir`` (atomically) and return their paths."""
    markdown, page = out_dir / MARKDOWN_NAME, out_dir / HTML_NAME
    for path, text in ((markdown, render_markdown(leaderboard)), (page, render_html(leaderboard))):
        write_atomic(path, functools.partial(_write_utf8, text=text))
    return markdown, page


def _write_utf8(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def write_run_leaderboard(run_dir: Path) -> tuple[Path, Path]:
    """The leaderboard of one run, written into the run directory; ``genbench run`` calls this at its end."""
    return write_leaderboard(build_leaderboard([run_dir]), run_dir)


def default_out_dir(paths: Sequence[Path]) -> Path:
    """Where ``genbench report`` writes without --out: into the one path it was given (a run directory, or a
    folder of runs such as results/), else into the deepest folder that holds every path given."""
    folders = [path.parent if path.is_file() else path for path in paths]
    if len(folders) == 1:
        return folders[0]
    return Path(os.path.commonpath([folder.resolve() for folder in folders]))


def report_command(paths: Sequence[Path], out_dir: Path | None = None) -> int:
    """``genbench report PATH... [--out DIR]``: print the leaderboard and write its Markdown and HTML."""
    paths = [Path(path) for path in paths]
    if out_dir is not None:
        check_writable_folder(out_dir, "--out")
    leaderboard = build_leaderboard(paths)
    markdown, page = write_leaderboard(leaderboard, out_dir if out_dir is not None else default_out_dir(paths))
    print(terminal_safe(format_leaderboard(leaderboard), one_line=False))
    print(terminal_safe(f"\nleaderboard: {markdown}\n             {page}", one_line=False))
    return 0
