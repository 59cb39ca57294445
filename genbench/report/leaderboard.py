"""The leaderboard: runs gathered into one table, their protocols checked, their cells aggregated over seeds."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genbench.contract import (
    DEQUANTIZED,
    EXACT,
    IMPORTANCE_WEIGHTED,
    STOCHASTIC_ESTIMATE,
    VARIATIONAL_BOUND,
    Column,
    GenbenchError,
)
from genbench.report.aggregate import CONFIDENCE, TRAIN_TIME, TRAIN_TIME_COLUMN, cells_of_records, summarize
from genbench.report.protocol import check_protocols, metric_of_column
from genbench.report.runs import Entry, Run, find_run_dirs, label_entries, latest_per_seed, missing_notes, read_run

if TYPE_CHECKING:
    import pandas as pd

#: Ranks of the columns of runs written before columns declared their own (``Column.rank``), so that their
#: leaderboards order rows as they always did.
RANKS_OF_EARLIER_RUNS = {"fid": 0, "bpd": 1, "nll": 2}

#: Columns named after another column with one of these suffixes are not numbers of their own but say how far its
#: value spreads: ``kid_std`` is KID's spread over its subsets within one evaluation (a ``spread``); ``fid_eval_std``
#: and ``fid_eval_n`` the spread of fid over repeated evaluations of one trained model and their number. The
#: leaderboard shows them beside their column (± in parentheses), never as columns of their own, and never ranks them.
SPREAD, EVALUATION_SPREAD, EVALUATION_COUNT = "spread", "evaluation spread", "evaluation count"
COMPANION_SUFFIXES = (("_eval_std", EVALUATION_SPREAD), ("_eval_n", EVALUATION_COUNT), ("_std", SPREAD))


@dataclass(frozen=True)
class Companion:
    """A column shown beside another rather than as its own: its spread, or the number of evaluations."""

    of: str
    kind: str  # SPREAD, EVALUATION_SPREAD or EVALUATION_COUNT


def companion_columns(columns: Sequence[str]) -> dict[str, Companion]:
    """The columns of ``columns`` that belong beside another of them (see ``COMPANION_SUFFIXES``)."""
    found = {}
    for column in columns:
        for suffix, kind in COMPANION_SUFFIXES:
            base = column.removesuffix(suffix)
            if base != column and base in columns:
                found[column] = Companion(base, kind)
                break
    return found


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
        return next(iter(self.quality_columns(dataset) or measured), None)

    def quality_columns(self, dataset: str) -> list[str]:
        """The measured columns that declare a rank (``Column.rank``), best rank first."""
        declared = [c for c in self.columns if self.specs.get(c, _UNRANKED).rank is not None]
        ranked = [c for c in declared if self.measured(dataset, c)]
        return sorted(ranked, key=lambda c: self.specs[c].rank or 0)

    def likelihood_kind(self, dataset: str, model: str, column: str) -> str | None:
        """What a likelihood column's number is for one model: "exact", "bound" or "estimate"; None for a column
        that is no likelihood. Read from the records' provenance (``kind``, or the ``method`` of earlier runs)."""
        for entry in self.entries:
            if entry.dataset != dataset or entry.model != model or entry.record.status != "ok":
                continue
            metric = metric_of_column(column, entry)
            provenance = entry.record.provenance.get(metric or "", {})
            kind = provenance.get("kind")
            if kind is None and "method" in provenance:  # a run from before likelihoods declared their kind
                method = str(provenance["method"])
                kind = EXACT if method.startswith("exact") else "bound" if "bound" in method else None
            if kind is not None:
                return _KIND_LABELS.get(str(kind), str(kind))
        return None

    def kinds(self, dataset: str, column: str) -> dict[str, str]:
        """Model -> likelihood kind label, for the models whose cells of this column say one."""
        found = {model: self.likelihood_kind(dataset, model, column) for model in self.models(dataset)}
        return {model: kind for model, kind in found.items() if kind is not None}

    @property
    def companions(self) -> dict[str, Companion]:
        """Spreads and evaluation counts, by column: shown beside the column they belong to."""
        return companion_columns(self.columns)

    def timing(self, dataset: str, column: str) -> bool:
        """Whether a column is a time: train_time, or a column whose protocol records the device it ran on."""
        return column == TRAIN_TIME or "device" in self.protocols.get((dataset, column), {})

    def ranked(self, dataset: str, column: str) -> bool:
        """Whether a column's best value is marked: a quality column, or any column that declares a rank; never a
        spread or a count (``companions``), nor a time unless it declares a rank."""
        spec = self.specs.get(column)
        if spec is None or column in self.companions:
            return False
        return spec.rank is not None or not self.timing(dataset, column)

    def best(self, dataset: str, column: str) -> set[str]:
        """The models with the best mean of a ranked column (ties share it); none where the direction is unknown, nor
        for a column that is not ranked (``ranked``: a time, a spread, a count).

        Where likelihoods of several kinds share a column, a stochastic estimate is never marked best: it may lie
        on either side of the model's true value. A bound may be: its NLL is above the model's true NLL, so a
        bound that beats an exact value is truly better."""
        spec = self.specs.get(column)
        measured = [s for s in self.summaries(dataset, column) if s["n"] > 0]
        kinds = self.kinds(dataset, column) if len(measured) > 1 else {}
        if len(set(kinds.values())) > 1:
            measured = [s for s in measured if kinds.get(s["model"]) != "estimate"]
        if spec is None or not measured or not self.ranked(dataset, column):
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
    cells = cells_of_records([e.record for e in entries], [e.dataset for e in entries], [e.model for e in entries])
    table = summarize(cells, columns, confidence)
    return Leaderboard(runs, entries, columns, specs, table, protocols, notes + missing_notes(runs), confidence)


def column_specs(runs: Sequence[Run]) -> dict[str, Column]:
    """Unit and direction of every column; two runs that disagree on them measure different things."""
    specs: dict[str, tuple[Column, Path]] = {TRAIN_TIME: (TRAIN_TIME_COLUMN, Path("genbench"))}
    known = {f.name for f in dataclasses.fields(Column)}
    for run in runs:
        for name, raw in run.info.get("column_specs", {}).items():
            fields = {key: value for key, value in raw.items() if key in known}
            fields.setdefault("rank", RANKS_OF_EARLIER_RUNS.get(name))
            spec = Column(**fields)
            earlier = specs.setdefault(name, (spec, run.root))
            if (earlier[0].unit, earlier[0].higher_is_better) != (spec.unit, spec.higher_is_better):
                raise GenbenchError(
                    f"column {name!r} is {_direction(earlier[0])} in {earlier[1]} but {_direction(spec)} in "
                    f"{run.root}: different plugins wrote it; report these runs separately"
                )
    return {name: spec for name, (spec, _) in specs.items()}


_UNRANKED = Column("", "", higher_is_better=False)
#: How a likelihood's kind is shown beside its number.
_KIND_LABELS = {
    EXACT: EXACT,
    DEQUANTIZED: "bound",
    VARIATIONAL_BOUND: "bound",
    IMPORTANCE_WEIGHTED: "bound",
    STOCHASTIC_ESTIMATE: "estimate",
}


def _direction(spec: Column) -> str:
    return f"{spec.unit or 'unitless'}, {'higher' if spec.higher_is_better else 'lower'} is better"
