"""Leaderboards: the cells of one or many runs aggregated over seeds, as Markdown, self-contained HTML and text.

Every number is the mean over seeds ± the half-width of its 95% confidence interval (Student t with n - 1
degrees of freedom, see ``genbench.toolkit.stats.confidence_interval``); one seed shows its value, and a note under
the table says once that it has no interval. A column that is another's spread (``kid_std``, or ``fid_eval_std``
over repeated evaluations) is shown as ± in parentheses beside it, never as a column of its own; the best value is
marked only in quality columns (not in times, spreads or counts, unless a column declares a rank). Failed cells are
counted and their errors shown beside the model; a column that does not apply shows N/A with the reason the metric
gave.

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
The parts, one module each, in the order data flows through them:

    runs.py         reading run directories and their cell records; the row (data set, model) of each cell
    aggregate.py    statistics over seeds (``aggregate``): mean, std, n, confidence half-width, failures, N/A
    protocol.py     the protocol check above
    leaderboard.py  ``build_leaderboard``: the runs gathered, checked and aggregated
    tables.py       the cells and the notes under each table every renderer shows; the evaluation-time table
    published.py    the published numbers of a run's suite beside genbench's, and whether each is comparable
    protocol_section.py  the protocol section: data sets, machine and threads, extractors once, metrics, runs
    markdown.py     leaderboard.md
    html.py         leaderboard.html, from templates/leaderboard.html.j2 (jinja2, autoescaped)
    plots.py        the page's figures (matplotlib): quality against speed, training curves
    terminal.py     the text ``genbench report`` prints
    files.py        writing the files; ``genbench report``

The package reads run directories only; it imports no plugin, and none of pandas, matplotlib or jinja2 until a
leaderboard is built or drawn (the CLI imports it at start-up).
"""

from __future__ import annotations

from genbench.report.aggregate import (
    CONFIDENCE,
    SUMMARY_COLUMNS,
    TRAIN_TIME,
    TRAIN_TIME_COLUMN,
    aggregate,
    parse_not_applicable,
)
from genbench.report.files import (
    HTML_NAME,
    MARKDOWN_NAME,
    default_out_dir,
    report_command,
    write_leaderboard,
    write_run_leaderboard,
)
from genbench.report.html import render_html
from genbench.report.leaderboard import Leaderboard, build_leaderboard, column_specs
from genbench.report.markdown import render_markdown
from genbench.report.plots import (
    SPEED_COLUMN,
    Point,
    draw_curves,
    draw_quality_speed,
    figure_png,
    model_curves,
    pareto_front,
    quality_speed_points,
)
from genbench.report.protocol import (
    MEASUREMENT_FIELDS,
    PER_MODEL_FIELDS,
    check_protocols,
    column_protocol,
    metric_of_column,
)
from genbench.report.protocol_section import machine_lines, plugin_lines, protocol_sections, run_packages
from genbench.report.runs import (
    Entry,
    Run,
    dataset_label,
    find_run_dirs,
    label_entries,
    latest_per_seed,
    missing_notes,
    model_labels,
    read_run,
)
from genbench.report.tables import (
    EVALUATION_TIME_LEGEND,
    TableCell,
    column_header,
    evaluation_time_rows,
    format_estimate,
    format_failed,
    interval_legend,
    table_notes,
    table_rows,
)
from genbench.report.terminal import format_leaderboard

__all__ = [
    "CONFIDENCE",
    "EVALUATION_TIME_LEGEND",
    "HTML_NAME",
    "MARKDOWN_NAME",
    "MEASUREMENT_FIELDS",
    "PER_MODEL_FIELDS",
    "SPEED_COLUMN",
    "SUMMARY_COLUMNS",
    "TRAIN_TIME",
    "TRAIN_TIME_COLUMN",
    "Entry",
    "Leaderboard",
    "Point",
    "Run",
    "TableCell",
    "aggregate",
    "build_leaderboard",
    "check_protocols",
    "column_header",
    "column_protocol",
    "column_specs",
    "dataset_label",
    "default_out_dir",
    "draw_curves",
    "draw_quality_speed",
    "evaluation_time_rows",
    "figure_png",
    "find_run_dirs",
    "format_estimate",
    "format_failed",
    "format_leaderboard",
    "interval_legend",
    "label_entries",
    "latest_per_seed",
    "machine_lines",
    "metric_of_column",
    "missing_notes",
    "model_curves",
    "model_labels",
    "pareto_front",
    "parse_not_applicable",
    "plugin_lines",
    "protocol_sections",
    "quality_speed_points",
    "read_run",
    "render_html",
    "render_markdown",
    "report_command",
    "run_packages",
    "table_notes",
    "table_rows",
    "write_leaderboard",
    "write_run_leaderboard",
]
