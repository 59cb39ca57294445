"""A published number as a protocol: what a suite's ``[reference.NAME]`` row says about the data, the model, its
training and the evaluation behind the number, and what a genbench cell did differently.

A row's four protocol tables (``data``, ``model_config``, ``training``, ``evaluation``) each hold a ``describe``
text (what the source says, for readers) and the settings genbench can check, compared with what the cell
recorded: ``data`` with the data set's name and provenance (``n_train``, ``n_test``, ``binarization``'s first
word), ``model_config`` and ``training`` with the model's resolved config, ``evaluation`` with the metric's
provenance (``k``, ``n_real``, ``n_fake``, ``reference_split``, ``extractor``, ``repeats``). ``unmatched`` lists
what genbench does not do as the source did (a learning-rate schedule of its own, say): always a difference.
A number on incomplete data files is never comparable. Plain data only: the report and the suites both use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genbench.contract.events import CellRecord

#: The provenance key of a data set loaded from incomplete files (``genbench.toolkit.data.INCOMPLETE``).
INCOMPLETE_DATA = "incomplete_data_missing"
PROTOCOL_PARTS = ("data", "model_config", "training", "evaluation")
COMPARABLE = "yes"


@dataclass(frozen=True)
class PublishedRow:
    """One published number and how it was measured."""

    key: str
    model: str  # as the source names it
    metric: str  # the genbench column it stands beside
    value: float
    unit: str
    source: str
    #: The genbench model whose number stands beside this one; None: shown alone.
    beside: str | None = None
    spread: float | None = None
    #: What the ± is (evaluation noise of one checkpoint, or a spread over training seeds).
    spread_meaning: str = ""
    note: str = ""
    protocol: dict[str, dict[str, Any]] = field(default_factory=dict)
    unmatched: tuple[str, ...] = ()

    @classmethod
    def from_table(cls, key: str, table: Mapping[str, Any]) -> PublishedRow:
        protocol = {part: dict(table.get(part, {})) for part in PROTOCOL_PARTS if part in table}
        spread = table.get("spread")
        return cls(
            key,
            str(table["model"]),
            str(table["metric"]),
            float(table["value"]),
            str(table["unit"]),
            str(table["source"]),
            table.get("beside"),
            None if spread is None else float(spread),
            str(table.get("spread_meaning", "")),
            str(table.get("note", "")),
            protocol,
            tuple(table.get("unmatched", ())),
        )

    def checks(self, part: str) -> dict[str, Any]:
        """The settings of one protocol part that genbench can compare (all but ``describe``)."""
        return {key: value for key, value in self.protocol.get(part, {}).items() if key != "describe"}


def differences(row: PublishedRow, record: CellRecord) -> list[str]:
    """What the cell did otherwise than the row's source, each as 'what: genbench's (published: theirs)';
    empty when the number is comparable."""
    found: list[str] = []
    missing = record.dataset_provenance.get(INCOMPLETE_DATA)
    if missing:
        found.append(f"incomplete data ({'; '.join(map(str, missing))})")
    for key, wanted in row.checks("data").items():
        found += _differs(f"data {key}", _data_value(key, record), wanted)
    for part in ("model_config", "training"):
        for key, wanted in row.checks(part).items():
            found += _differs(key, record.config.get(key, "not a setting"), wanted)
    measured = record.provenance.get(_metric_of(row.metric), {})
    for key, wanted in row.checks("evaluation").items():
        settings = measured.get("settings") or {}  # a likelihood's estimator settings (its k) sit one level down
        actual = measured.get(key, settings.get(key, _EVALUATION_DEFAULTS.get(key, "not recorded")))
        found += _differs(key, actual, wanted)
    return found + list(row.unmatched)


#: What a record that predates an evaluation setting measured: one evaluation, all of the reference split.
_EVALUATION_DEFAULTS: dict[str, Any] = {"repeats": 1}


def _metric_of(column: str) -> str:
    return {"bpd": "bpd", "precision": "precision_recall", "recall": "precision_recall"}.get(column, column)


def _data_value(key: str, record: CellRecord) -> Any:
    if key == "dataset":
        return record.dataset
    value = record.dataset_provenance.get(key, "not recorded")
    if key == "binarization":
        return str(value).split(":")[0] if record.dataset_provenance.get("binarized") else "none (grey levels)"
    return value


def _differs(what: str, actual: Any, wanted: Any) -> list[str]:
    return [] if actual == wanted else [f"{what}: {_shown(actual)} (published: {_shown(wanted)})"]


def _shown(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def comparability(row: PublishedRow, records: list[CellRecord]) -> str:
    """'yes', or what differs in any of the cells (seeds) of the model beside the row, each named once."""
    found = list(dict.fromkeys(item for record in records for item in differences(row, record)))
    return COMPARABLE if not found else "no: " + "; ".join(found)
