"""What every renderer shows: the cells of each data set's table and the lines of the protocol section.

Markdown, HTML and the terminal differ only in how they mark these up (and escape them); the words and numbers
come from here, so the three agree.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from genbench.contract import CellRecord, Column
from genbench.report.aggregate import TRAIN_TIME
from genbench.report.leaderboard import Leaderboard
from genbench.report.protocol import plain
from genbench.report.runs import Run


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
        "↓ lower is better, ↑ higher is better; the best value of each column is marked. A likelihood column that "
        "holds bounds or estimates beside exact values says each one's kind: a bound's nll is above the model's true "
        "nll, and an estimate, which may fall on either side, is never marked best. "
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
            row.append(TableCell(text, value, model in best[column], summary["not_applicable"]))
        row.append(TableCell(format_failed(counts), float(counts["failed"])))
        rows.append(row)
    return headers, rows


def _shown(leaderboard: Leaderboard, dataset: str, column: str) -> bool:
    """A column is shown where a run of this data set asked for it, even if every cell of it failed."""
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
    return "; ".join(f"{key}: {plain(value)}" for key, value in fields.items())


def _run_text(run: Run) -> str:
    info = run.info
    device = info.get("device") or {}
    packages = ", ".join(f"{name} {version}" for name, version in run_packages(info).items())
    parts = [
        f"git revision: {info.get('git_revision') or 'unknown'}",
        f"device: {run.hardware}" + (f", {device['torch_threads']} torch threads" if "torch_threads" in device else ""),
        f"python: {info.get('python', 'unknown')}",
        f"packages: {packages or 'unknown'}",
        f"started: {info.get('started', 'unknown')}",
        f"command: {' '.join(map(str, info.get('command', [])))}",
    ]
    return "; ".join(parts)


def run_packages(info: Mapping[str, Any]) -> dict[str, str]:
    """The distributions a run's numbers depend on, with their versions: those run.json records by name
    (genbench, torch, numpy, ...), then each other distribution that a working plugin came from (a third-party
    plugin, recorded only in run.json's plugins). A broken plugin computed nothing, so its distribution is not
    listed; a plugin loaded with -p has no distribution (the Plugins section names its module)."""
    packages = {str(name): str(version) for name, version in (info.get("packages") or {}).items()}
    listed = {_distribution_key(name) for name in packages}
    for plugin in info.get("plugins") or []:
        if not isinstance(plugin, dict) or plugin.get("error") or not plugin.get("distribution"):
            continue
        name = str(plugin["distribution"])
        if _distribution_key(name) not in listed:  # genbench's own built-ins are listed already
            listed.add(_distribution_key(name))
            packages[name] = str(plugin.get("version") or "(version unknown)")
    return packages


def _distribution_key(name: str) -> str:
    """One spelling per distribution name (PEP 503): genbench_made, Genbench-Made and genbench.made are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _model_configs(leaderboard: Leaderboard) -> dict[str, dict[str, Any]]:
    return {entry.model: {**entry.record.config, **_origin_fields(entry.record)} for entry in leaderboard.entries}


def _origin_fields(record: CellRecord) -> dict[str, str]:
    """Where a model made elsewhere came from (genbench.runner.external): the kind, the file and its SHA-256."""
    origin = record.provenance.get("origin")
    if not isinstance(origin, dict):
        return {}
    return {"origin": f"{origin.get('kind', 'file')} {origin.get('file')}, sha256 {origin.get('sha256')}"}
