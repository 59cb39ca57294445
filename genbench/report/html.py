"""leaderboard.html: one self-contained page (inline CSS and JS, images as data URIs, no network).

The markup is in ``templates/leaderboard.html.j2`` (with its style sheet and script beside it); this module
gathers what the page shows (the tables, the figures as PNG bytes, the captions) and renders the template
with jinja2, which escapes every value that is put into it.
"""

from __future__ import annotations

import base64
import functools
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genbench.report.leaderboard import Leaderboard
from genbench.report.plots import (
    SPEED_COLUMN,
    draw_curves,
    draw_nfe,
    draw_quality_speed,
    entries_of,
    figure_png,
    model_curves,
    nfe_series,
    quality_speed_points,
)
from genbench.report.protocol_section import metric_anchors, protocol_sections
from genbench.report.tables import (
    SideTable,
    TableCell,
    column_header,
    interval_legend,
    side_tables,
    table_notes,
    table_rows,
)
from genbench.store.layout import RunDirectory

if TYPE_CHECKING:
    import jinja2

PAGE_TEMPLATE = "leaderboard.html.j2"


@dataclass(frozen=True)
class Image:
    """A PNG the page shows inline, with its alt text and its caption."""

    kind: str  # the img element's class (samples, real, plot, curve): the style sheet sizes each kind
    alt: str
    caption: str
    png: bytes

    @property
    def data(self) -> str:
        """The PNG as base64, for a data URI: the page must open without any other file."""
        return base64.b64encode(self.png).decode("ascii")


@dataclass(frozen=True)
class ModelFigures:
    """What the page shows of one model below the table: a grid of its samples, and its training curves."""

    name: str
    samples: list[Image]  # the model's samples and real test images beside them; empty where it has none
    curves: Image | None


@dataclass(frozen=True)
class DatasetSection:
    """One data set's part of the page: its table, its quality-versus-speed plot and its models' figures."""

    name: str
    headers: list[str]
    rows: list[list[TableCell]]
    plot: Image | None
    models: list[ModelFigures]
    #: The small tables under the leaderboard (evaluation time; quality against network evaluations).
    tables: list[SideTable] = field(default_factory=list)
    #: Quality and sample time against network evaluations, where a model's evaluations swept them.
    nfe_plot: Image | None = None
    #: What the table's numbers are, said once under it (one seed: no interval; what a spread is over).
    notes: list[str] = field(default_factory=list)
    #: Per header, the id of the protocol line that says how its column was measured ('' for model, seeds, failed).
    protocol_links: list[str] = field(default_factory=list)


def render_html(leaderboard: Leaderboard) -> str:
    """leaderboard.html: one self-contained page (inline CSS and JS, images as data URIs, no network)."""
    sections = [dataset_section(leaderboard, dataset) for dataset in leaderboard.datasets]
    return page_template().render(
        legend=interval_legend(leaderboard),
        sections=sections,
        notes=leaderboard.notes,
        protocol=protocol_rows(leaderboard),
    )


def protocol_rows(leaderboard: Leaderboard) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The protocol section with an id on each line of the Metrics section (as ``metric_anchors`` numbers them),
    where the tables' headers link."""
    return [
        (
            title,
            [
                (subject, text, f"protocol-metric-{index}" if title == "Metrics" else "")
                for index, (subject, text) in enumerate(items)
            ],
        )
        for title, items in protocol_sections(leaderboard)
    ]


@functools.cache
def page_template() -> jinja2.Template:
    """The page's template, loaded once per process."""
    import jinja2  # here, not at the top: the CLI starts without jinja2; only writing a leaderboard needs it

    environment = jinja2.Environment(
        # The template ships inside the package (package-data in pyproject.toml), found wherever genbench is installed.
        loader=jinja2.PackageLoader("genbench.report", "templates"),
        # Every value is escaped: model names, errors and configs come from files anyone could have written.
        autoescape=True,
        finalize=_escaped,
        # Block tags on a line of their own leave nothing behind, so the template can be laid out for reading.
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name in the template fails rather than printing nothing
    )
    return environment.get_template(PAGE_TEMPLATE)


def _escaped(value: Any) -> Any:
    """Escape a value with ``html.escape``, as the page always has (&quot; and &#x27;; jinja2's own escaping
    writes &#34; and &#39;), so pages stay byte-identical; markup the template made itself (a macro's output)
    passes as it is. Autoescaping stays on behind this: a value that slipped past it would still be escaped."""
    from markupsafe import Markup  # jinja2's own dependency, imported with it

    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape(str(value), quote=True))


def dataset_section(leaderboard: Leaderboard, dataset: str) -> DatasetSection:
    headers, rows = table_rows(leaderboard, dataset)
    columns = {column_header(column, leaderboard.specs.get(column)): column for column in leaderboard.columns}
    anchors = metric_anchors(leaderboard)
    links = [anchors.get((dataset, columns.get(header, "")), "") for header in headers]
    # Where a narrow window wraps a header, its arrow stays with its unit rather than on a line of its own.
    headers = [header.replace(" ↓", "\N{NO-BREAK SPACE}↓").replace(" ↑", "\N{NO-BREAK SPACE}↑") for header in headers]
    models = [
        ModelFigures(model, sample_images(leaderboard, dataset, model), curves_image(leaderboard, dataset, model))
        for model in leaderboard.models(dataset)
    ]
    plot = quality_speed_image(leaderboard, dataset)
    return DatasetSection(
        dataset,
        headers,
        rows,
        plot,
        models,
        side_tables(leaderboard, dataset),
        nfe_image(leaderboard, dataset),
        table_notes(leaderboard, dataset),
        links,
    )


def quality_speed_image(leaderboard: Leaderboard, dataset: str) -> Image | None:
    """The quality-versus-speed plot of a data set; None where it lacks sample_time or fid and bpd."""
    found = quality_speed_points(leaderboard, dataset)
    if found is None:
        return None
    quality, points = found
    specs = leaderboard.specs
    png = figure_png(lambda figure: draw_quality_speed(figure, points, specs[quality], specs[SPEED_COLUMN]), (7.0, 4.5))
    caption = f"{quality} against seconds per sampled image; filled markers and the dashed line: the Pareto front"
    plotted = {point.label for point in points}
    left_out = [model for model in leaderboard.models(dataset) if model not in plotted]
    if left_out:
        caption += f". Not plotted, for want of {quality} or {SPEED_COLUMN}: {', '.join(left_out)}"
    return Image("plot", "quality versus speed", caption, png)


def nfe_image(leaderboard: Leaderboard, dataset: str) -> Image | None:
    """Quality and sample time against network evaluations, for the models evaluated at several (a sweep)."""
    found = nfe_series(leaderboard, dataset)
    if found is None:
        return None
    quality, series = found
    png = figure_png(lambda figure: draw_nfe(figure, series, leaderboard.specs[quality]), (9.0, 3.8))
    caption = f"{quality} and seconds per sampled image against network evaluations per sample, one line per model"
    return Image("nfe", "quality and speed against network evaluations", caption, png)


def sample_images(leaderboard: Leaderboard, dataset: str, model: str) -> list[Image]:
    """The samples of the model's first seed that has them (a finished one first), beside real test images.

    Only files inside the run folder are read: a sample grid linked to a file elsewhere is not inlined."""
    entries = sorted(entries_of(leaderboard, dataset, model), key=lambda e: (e.record.status != "ok", e.record.seed))
    for entry in entries:
        directory = RunDirectory(entry.run.root)
        samples = directory.sample_grid_path(entry.record.cell_id)
        if samples.is_file() and directory.inside(samples):
            real = directory.real_grid_path(entry.record.dataset)
            images = [_file_image(samples, f"{model}, seed {entry.record.seed}", "samples")]
            if real.is_file() and directory.inside(real):
                images.append(_file_image(real, "real test images", "real"))
            return images
    return []


def _file_image(path: Path, caption: str, kind: str) -> Image:
    return Image(kind, caption, caption, path.read_bytes())


def curves_image(leaderboard: Leaderboard, dataset: str, model: str) -> Image | None:
    curves = model_curves(leaderboard, dataset, model)
    if not curves:
        return None
    png = figure_png(lambda figure: draw_curves(figure, curves), (4.5, 3.0))
    return Image("curve", f"training curves of {model}", "training curves", png)
