"""The published numbers beside genbench's: for a run made with a suite, each of the suite's published rows (as
run.json recorded them) next to genbench's number for the model it names, and whether the two are comparable:
"yes", or what genbench did otherwise (``genbench.contract.published.differences``, from the cells' provenance).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from genbench.contract.events import CellRecord
from genbench.contract.published import PublishedRow, comparability
from genbench.report.leaderboard import Leaderboard
from genbench.report.tables import SideTable, TableCell, format_estimate

TITLE = "Published numbers beside genbench's"
LEGEND = (
    "Each published number of the suite the run used, with its source, beside genbench's number for the model "
    "the suite names. 'comparable' is 'yes' only when genbench followed every part of the source's protocol that "
    "it records (data and binarization, split sizes, model size, training budget, evaluation settings); otherwise "
    "it lists what differs, genbench's value first."
)
HEADERS = ["published model", "metric", "published", "source", "genbench model", "genbench", "comparable"]


def published_rows(leaderboard: Leaderboard, dataset: str) -> list[tuple[PublishedRow, str, list[CellRecord]]]:
    """(row, the genbench row label beside it, that label's ok cells) for every published row of the suites this
    data set's runs used; a row beside a model no run measured gets the model's name and no cells."""
    rows: dict[str, PublishedRow] = {}
    labels: dict[str, str] = {}
    cells: dict[str, list[CellRecord]] = defaultdict(list)
    for entry in leaderboard.entries:
        if entry.dataset != dataset:
            continue
        labels.setdefault(entry.record.model, entry.model)
        if entry.record.status == "ok":
            cells[entry.model].append(entry.record)
        suite = (entry.run.info.get("request") or {}).get("suite") or {}
        for key, table in (suite.get("reference") or {}).items():
            if isinstance(table, dict):
                rows.setdefault(f"{suite.get('name')} {key}", PublishedRow.from_table(key, table))
    found = []
    for row in rows.values():
        label = labels.get(row.beside or "", row.beside or "–")
        found.append((row, label, cells.get(label, []) if row.beside else []))
    return found


def published_table(leaderboard: Leaderboard, dataset: str) -> SideTable | None:
    """The side table of published numbers, or None where no run of this data set used a suite with them."""
    found = published_rows(leaderboard, dataset)
    if not found:
        return None
    body = []
    for row, model, records in found:
        measured = [r for r in records if row.metric in r.metrics]
        body.append(
            [
                TableCell(row.model),
                TableCell(row.metric),
                TableCell(_published_value(row), row.value),
                TableCell(row.source),
                TableCell(model),
                TableCell(_genbench_value(leaderboard, dataset, model, row) if measured else "not run"),
                TableCell(comparability(row, measured) if measured else "–"),
            ]
        )
    return SideTable(TITLE, LEGEND, HEADERS, body)


def _published_value(row: PublishedRow) -> str:
    value = f"{row.value:g} {row.unit}"
    if row.spread is None:
        return value
    return f"{value} ± {row.spread:g}" + (f" ({row.spread_meaning})" if row.spread_meaning else "")


def _genbench_value(leaderboard: Leaderboard, dataset: str, model: str, row: PublishedRow) -> str:
    summary: dict[str, Any] = leaderboard.summary(dataset, model, row.metric)
    return format_estimate(summary)
