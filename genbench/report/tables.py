"""What every renderer shows: the cells of each data set's table and the notes under it (the protocol section is
``protocol_section.py``'s).

Markdown, HTML and the terminal differ only in how they mark these up (and escape them); the words and numbers
come from here, so the three agree.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from genbench.contract import Column
from genbench.report.aggregate import TRAIN_TIME
from genbench.report.leaderboard import EVALUATION_COUNT, EVALUATION_SPREAD, SPREAD, Leaderboard


def format_estimate(summary: Mapping[str, Any]) -> str:
    """'2.42 ± 0.013', '2.42' (one seed: no interval, which the table's notes say once), '2.42 (n=1)' (one seed
    measured it where the row has more), 'N/A', 'failed' or '–' (not measured)."""
    n = int(summary["n"])
    if n >= 2:
        mean, half_width = float(summary["mean"]), float(summary["half_width"])
        # Seeds that agree to the last bits (a deterministic fit) leave only rounding noise: that is an interval of 0.
        spread = _significant(half_width, 2) if half_width > 1e-9 * abs(mean) else "0"
        return f"{_significant(mean, 4)} ± {spread}"
    if n == 1:
        return _significant(summary["mean"], 4) + (" (n=1)" if int(summary["seeds"]) > 1 else "")
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
        "interval (Student t, n - 1 degrees of freedom); a ± in parentheses is a spread, not an interval over seeds "
        "(the notes under each table say which). ↓ lower is better, ↑ higher is better; the best value of each quality "
        "column is marked (not times, spreads or counts). Where a likelihood column holds bounds or estimates beside "
        "exact values, each says its kind: a bound's nll is above the model's true nll; an estimate may fall on "
        "either side and is never marked best. Failed cells are left out of the statistics and counted under failed."
    )


@dataclass(frozen=True)
class TableCell:
    """One cell of a rendered table: its text, the value it sorts by, and whether it is its column's best."""

    text: str
    sort_value: float | str | None = None
    best: bool = False
    #: Why a metric does not apply, shown beside "N/A".
    reason: str = ""
    #: The value's spread, shown after it in parentheses: '± 55 over subsets', '± 0.31 over 5 evaluations'.
    spread: str = ""


def table_rows(leaderboard: Leaderboard, dataset: str) -> tuple[list[str], list[list[TableCell]]]:
    """Headers and rows of one data set's table, as every renderer shows them."""
    companions = leaderboard.companions
    shown = [c for c in leaderboard.columns if c not in companions and _shown(leaderboard, dataset, c)]
    spreads = {c: [(name, found.kind) for name, found in companions.items() if found.of == c] for c in shown}
    headers = ["model", "seeds", *(column_header(c, leaderboard.specs.get(c)) for c in shown), "failed"]
    best = {column: leaderboard.best(dataset, column) for column in shown}
    # Where a column holds likelihoods of more than one kind, every cell of it says its kind.
    kinds = {column: leaderboard.kinds(dataset, column) for column in shown}
    labelled = {column for column, found in kinds.items() if set(found.values()) - {"exact"}}
    rows = []
    for model in leaderboard.models(dataset):
        # Seeds and failures are the same in every column of a row; train_time is always there.
        counts = leaderboard.summary(dataset, model, TRAIN_TIME)
        row = [TableCell(model, model), TableCell(str(counts["seeds"]), float(counts["seeds"]))]
        for column in shown:
            summary = leaderboard.summary(dataset, model, column)
            value = float(summary["mean"]) if summary["n"] else None
            text = format_estimate(summary)
            if column in labelled and value is not None and model in kinds[column]:
                text = f"{text} ({kinds[column][model]})"
            spread = _spread_text(leaderboard, dataset, model, spreads[column]) if value is not None else ""
            row.append(TableCell(text, value, model in best[column], summary["not_applicable"], spread))
        row.append(TableCell(format_failed(counts), float(counts["failed"])))
        rows.append(row)
    return headers, rows


def _spread_text(leaderboard: Leaderboard, dataset: str, model: str, companions: list[tuple[str, str]]) -> str:
    """'± 55 over subsets' (kid_std), '± 0.31 over 5 evaluations' (fid_eval_std, fid_eval_n): a cell's spreads,
    each the mean over the row's seeds of its companion column; '' where there is none."""
    found = {kind: leaderboard.summary(dataset, model, name) for name, kind in companions}
    found = {kind: summary for kind, summary in found.items() if summary["n"]}
    parts = []
    if SPREAD in found:
        name = next(name for name, kind in companions if kind == SPREAD)
        parts.append(f"± {_significant(found[SPREAD]['mean'], 2)} {_spread_over(leaderboard.specs.get(name))}")
    if EVALUATION_SPREAD in found:
        count = found.get(EVALUATION_COUNT)
        evaluations = f"{_significant(count['mean'], 3)} evaluations" if count else "evaluations"
        parts.append(f"± {_significant(found[EVALUATION_SPREAD]['mean'], 2)} over {evaluations}")
    return "; ".join(parts)


def _spread_over(spec: Column | None) -> str:
    """'over subsets' from kid_std's description 'spread over subsets'; 'spread' where the column does not say."""
    description = spec.description.strip() if spec is not None else ""
    return description.removeprefix("spread ") if description.startswith("spread over ") else "spread"


def table_notes(leaderboard: Leaderboard, dataset: str) -> list[str]:
    """What the numbers of one data set's table are, said once under it rather than in every cell: which rows have
    one seed (so no interval), and what each ± in parentheses spreads over."""
    notes = []
    models = leaderboard.models(dataset)
    rows = [(model, int(leaderboard.summary(dataset, model, TRAIN_TIME)["seeds"])) for model in models]
    single = [model for model, seeds in rows if seeds == 1]
    if single and len(single) == len(rows):
        notes.append("One seed: no interval (each value is one trained model's; --seeds 0,1,2 gives intervals).")
    elif single:
        notes.append(f"One seed, so no interval: {', '.join(single)}.")
    threads = {entry.run.root: entry.run.threads for entry in leaderboard.entries if entry.dataset == dataset}
    if len(set(threads.values())) > 1:
        runs = ", ".join(f"{root} ({count})" for root, count in threads.items())
        notes.append(f"The runs used different thread counts, so their numbers are not bit-identical: {runs}.")
    shown = [c for c in leaderboard.columns if _shown(leaderboard, dataset, c) and leaderboard.measured(dataset, c)]
    companions = {name: c for name, c in leaderboard.companions.items() if name in shown}
    spreads = [(name, c.of) for name, c in companions.items() if c.kind == SPREAD]
    if spreads:
        which = _join([f"{name} ({_spread_over(leaderboard.specs.get(name))})" for name, _ in spreads])
        notes.append(
            f"± in parentheses beside {_join([of for _, of in spreads])}: {which}, each metric's own spread within one "
            "evaluation; not an interval over seeds, and not ranked."
        )
    evaluated = [(name, c.of) for name, c in companions.items() if c.kind == EVALUATION_SPREAD]
    if evaluated:
        notes.append(
            f"± in parentheses “over N evaluations” beside {_join([of for _, of in evaluated])}: the evaluation "
            f"spread ({_join([name for name, _ in evaluated])}), the standard deviation over N evaluations of one "
            "trained model with other samples; not the interval over seeds, which also covers training."
        )
    if (spreads or evaluated) and len(single) < len(rows):
        notes.append("With several seeds, a spread in parentheses is its mean over the seeds.")
    return notes


def _join(names: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)


def _shown(leaderboard: Leaderboard, dataset: str, column: str) -> bool:
    """A column is shown where a run of this data set asked for it, even if every cell of it failed; an optional
    column (one only some evaluations write, ``Column.optional``) only where a cell wrote it."""
    spec = leaderboard.specs.get(column)
    if spec is not None and spec.optional and not leaderboard.measured(dataset, column):
        return False
    return column == TRAIN_TIME or any(
        column in entry.run.info.get("columns", []) for entry in leaderboard.entries if entry.dataset == dataset
    )


#: What the "Evaluation time" table of a data set holds.
EVALUATION_TIME_LEGEND = "Seconds each metric took per cell (device synchronized), mean over the finished cells."


def evaluation_time_rows(leaderboard: Leaderboard, dataset: str) -> tuple[list[str], list[list[TableCell]]] | None:
    """Headers and rows of a data set's "Evaluation time" table: per model, the mean over its finished cells of the
    seconds each metric took. None where no such cell recorded its metrics' times (runs from before they were)."""
    seconds: dict[str, dict[str, list[float]]] = {}
    for entry in leaderboard.entries:
        if entry.dataset == dataset and entry.record.status == "ok":
            for metric, value in entry.record.metric_times.items():
                seconds.setdefault(entry.model, {}).setdefault(metric, []).append(float(value))
    if not seconds:
        return None
    metrics = list(dict.fromkeys(metric for times in seconds.values() for metric in times))
    headers = ["model", *(f"{metric} (s)" for metric in metrics)]
    rows = []
    for model in (model for model in leaderboard.models(dataset) if model in seconds):
        means = [statistics.fmean(seconds[model][m]) if m in seconds[model] else None for m in metrics]
        cells = [TableCell("–") if mean is None else TableCell(_significant(mean, 3), mean) for mean in means]
        rows.append([TableCell(model, model), *cells])
    return headers, rows


NFE_LEGEND = (
    "Network evaluations (NFE) one sample costs with each row's evaluation-time options, as the model reported them, "
    "beside the seconds per image and the quality: how far fewer steps buy speed, and what they cost."
)


@dataclass(frozen=True)
class SideTable:
    """A small table shown under a data set's leaderboard: its title, what it shows, its headers and rows."""

    title: str
    legend: str
    headers: list[str]
    rows: list[list[TableCell]]


def side_tables(leaderboard: Leaderboard, dataset: str) -> list[SideTable]:
    """The tables under a data set's leaderboard that have something to show: evaluation time, and quality and
    sample time against network evaluations where a model reported them (a sweep of steps, say)."""
    tables = []
    from genbench.report.significance import rank_group_tables  # the rank groups: significance.py, a hook here

    for title, legend, headers, rows in rank_group_tables(leaderboard, dataset):
        tables.append(SideTable(title, legend, headers, [[TableCell(text) for text in row] for row in rows]))
    times = evaluation_time_rows(leaderboard, dataset)
    if times is not None:
        tables.append(SideTable("Evaluation time", EVALUATION_TIME_LEGEND, *times))
    nfe = nfe_rows(leaderboard, dataset)
    if nfe is not None:
        tables.append(SideTable("Quality and sample time against network evaluations", NFE_LEGEND, *nfe))
    from genbench.report.published import published_table  # here: that module builds on this one

    published = published_table(leaderboard, dataset)
    if published is not None:
        tables.append(published)
    return tables


def nfe_rows(leaderboard: Leaderboard, dataset: str) -> tuple[list[str], list[list[TableCell]]] | None:
    """Per model row that reported its network evaluations per sample (``sample_time``'s ``nfe``): NFE, seconds
    per image and per network evaluation, and the data set's ranking quality column; None where none did."""
    reported: dict[str, int] = {}
    for entry in leaderboard.entries:
        nfe = entry.record.provenance.get("sample_time", {}).get("nfe")
        if entry.dataset == dataset and entry.record.status == "ok" and isinstance(nfe, int):
            reported[entry.model] = nfe
    if not reported:
        return None
    quality = leaderboard.ranking_column(dataset)
    shown = [column for column in ("sample_time", quality) if column is not None]
    headers = ["model", "NFE", *(column_header(c, leaderboard.specs.get(c)) for c in shown), "seconds per NFE"]
    rows = []
    for model in sorted(reported, key=lambda model: (model.split(" (")[0], reported[model])):
        summaries = [leaderboard.summary(dataset, model, column) for column in shown]
        cells = [TableCell(format_estimate(s), float(s["mean"]) if s["n"] else None) for s in summaries]
        per_image = leaderboard.summary(dataset, model, "sample_time")
        per_nfe = float(per_image["mean"]) / max(reported[model], 1) if per_image["n"] else None
        rows.append(
            [
                TableCell(model, model),
                TableCell(str(reported[model]), float(reported[model])),
                *cells,
                TableCell("–" if per_nfe is None else _significant(per_nfe, 3), per_nfe),
            ]
        )
    return headers, rows
