"""Leaderboards: statistics over seeds, failures and N/A kept in sight, protocol checks, escaping, files.

One real run of the independent baseline (three seeds, about two seconds) is made per module; tests copy it and
edit its cell records to fabricate failures, N/A columns, other protocols and hostile names.
"""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import genbench
from genbench import report
from genbench.store.frame import load_results
from genbench.toolkit.files import write_checked_json
from genbench.toolkit.stats import confidence_interval

SEEDS = [0, 1, 2]
Cell = dict[str, Any]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = genbench.run(
        ["independent"],
        metrics=["nll", "bpd", "sample_time"],
        seeds=SEEDS,
        device="cpu",
        results_dir=tmp_path_factory.mktemp("results"),
    )
    return Path(frame.attrs["run_dir"])


def copy_run(base: Path, to: Path, name: str = "run") -> Path:
    return Path(shutil.copytree(base, to / name))


def edit_cells(run_dir: Path, change: Callable[[Cell], None], seeds: list[int] = SEEDS) -> None:
    """Rewrite the cell records of ``seeds`` in a run directory."""
    for path in sorted((run_dir / "cells").glob("*.json")):
        cell = json.loads(path.read_text())
        if cell["seed"] in seeds:
            change(cell)
            write_checked_json(path, cell)  # an edited record, not a damaged one: it carries a valid checksum


def edit_run_json(run_dir: Path, change: Callable[[Cell], None]) -> None:
    path = run_dir / "run.json"
    info = json.loads(path.read_text())
    change(info)
    path.write_text(json.dumps(info))


def set_field(*keys: str, value: Any) -> Callable[[Cell], None]:
    """A cell edit that sets cell[keys[0]]...[keys[-1]] = value."""

    def change(cell: Cell) -> None:
        for key in keys[:-1]:
            cell = cell[key]
        cell[keys[-1]] = value

    return change


def build(*paths: Path) -> report.Leaderboard:
    return report.build_leaderboard(list(paths))


# ------------------------------------------------------------------------------------------ statistics


def test_aggregate_gives_the_t_interval_of_each_column(base_run: Path) -> None:
    frame = load_results(base_run)
    table = report.aggregate(frame)
    assert list(table.columns) == report.SUMMARY_COLUMNS
    assert set(table["column"]) == {"nll", "bpd", "sample_time", "train_time"}
    for column in ("nll", "sample_time", "train_time"):
        row = table[table["column"] == column].iloc[0]
        mean, std, _, half_width = confidence_interval(frame[column].to_numpy())
        assert (row["dataset"], row["model"], row["n"], row["seeds"], row["failed"]) == (
            "digits",
            "independent",
            3,
            3,
            0,
        )
        assert row["mean"] == pytest.approx(mean)
        assert row["std"] == pytest.approx(std)
        assert row["half_width"] == pytest.approx(half_width, nan_ok=True)


def test_aggregate_of_records_equals_aggregate_of_the_table(base_run: Path) -> None:
    records = list(report.read_run(base_run).records)
    from_records = report.aggregate(records).set_index("column")
    from_table = report.aggregate([load_results(base_run)]).set_index("column")
    assert from_records.loc[from_table.index, ["n", "mean", "std"]].equals(from_table[["n", "mean", "std"]])


def test_single_seed_says_it_has_no_interval_once_under_the_table(base_run: Path, tmp_path: Path) -> None:
    run = copy_run(base_run, tmp_path)
    edit_run_json(run, lambda info: info.update(cells=info["cells"][:1]))
    leaderboard = build(run)
    summary = leaderboard.summary("digits", "independent", "nll")
    assert summary["n"] == 1 and math.isnan(summary["half_width"])
    markdown = report.render_markdown(leaderboard)
    headers, rows = report.table_rows(leaderboard, "digits")
    assert rows[0][headers.index("nll (nats/image) ↓")].text == f"{summary['mean']:.4g}"  # the value, nothing more
    assert markdown.count("One seed: no interval") == 1
    assert "One seed: no interval" in report.render_html(leaderboard)
    assert "One seed: no interval" in report.format_leaderboard(leaderboard)


def test_a_column_one_seed_measured_in_a_row_of_more_says_n_1(base_run: Path, tmp_path: Path) -> None:
    run = copy_run(base_run, tmp_path)
    edit_cells(run, lambda cell: cell["metrics"].pop("nll"), seeds=[0, 1])
    leaderboard = build(run)
    mean = leaderboard.summary("digits", "independent", "nll")["mean"]
    headers, rows = report.table_rows(leaderboard, "digits")
    assert rows[0][headers.index("nll (nats/image) ↓")].text == f"{mean:.4g} (n=1)"
    assert report.table_notes(leaderboard, "digits") == []  # three seeds: no row without an interval


def test_failed_cells_are_counted_with_their_error(base_run: Path, tmp_path: Path) -> None:
    run = copy_run(base_run, tmp_path)
    edit_cells(run, lambda cell: cell.update(status="failed", error="RuntimeError: boom"), seeds=[0, 2])
    leaderboard = build(run)
    summary = leaderboard.summary("digits", "independent", "nll")
    assert (summary["n"], summary["seeds"], summary["failed"]) == (1, 3, 2)
    expected = "2 of 3 seeds failed: seeds 0, 2: RuntimeError: boom"
    assert expected in report.render_markdown(leaderboard)
    assert expected in report.render_html(leaderboard)
    assert f"failed: independent: {expected}" in report.format_leaderboard(leaderboard)


def test_every_seed_failed_shows_failed_not_a_number(base_run: Path, tmp_path: Path) -> None:
    run = copy_run(base_run, tmp_path)
    edit_cells(run, lambda cell: cell.update(status="failed", error="TrainingDiverged: NaN loss", metrics={}))
    _, rows = report.table_rows(build(run), "digits")
    assert [cell.text for cell in rows[0][2:-1]] == ["failed"] * 4
    assert rows[0][-1].text == "3 of 3 seeds failed: seeds 0, 1, 2: TrainingDiverged: NaN loss"


def test_not_applicable_shows_its_reason(base_run: Path, tmp_path: Path) -> None:
    run = copy_run(base_run, tmp_path)

    def likelihood_not_applicable(cell: Cell) -> None:
        for column in ("nll", "bpd"):
            del cell["metrics"][column], cell["provenance"][column]
            cell["not_applicable"][column] = "independent has no elbo or log_likelihood"

    edit_cells(run, likelihood_not_applicable)
    leaderboard = build(run)
    assert "| N/A: independent has no elbo or log_likelihood |" in report.render_markdown(leaderboard)
    assert "N/A nll for independent: independent has no elbo or log_likelihood" in report.format_leaderboard(
        leaderboard
    )
    assert report.quality_speed_points(leaderboard, "digits") is None  # no bpd left to plot


def test_not_applicable_survives_the_results_table(base_run: Path, tmp_path: Path) -> None:
    frame = load_results(base_run)
    frame["nll"] = math.nan
    frame["not_applicable"] = "nll: no likelihood; for instance; bpd: none either"
    table = report.aggregate(frame).set_index("column")
    assert table.loc["nll", "not_applicable"] == "no likelihood; for instance"
    assert table.loc["bpd", "not_applicable"] == "none either"


# --------------------------------------------------------------------------------------------- ranking


def test_rows_are_ranked_and_the_best_of_each_column_marked(base_run: Path, tmp_path: Path) -> None:
    good, bad = copy_run(base_run, tmp_path, "good"), copy_run(base_run, tmp_path, "bad")
    edit_cells(bad, lambda cell: cell.update(model="worse", metrics={k: v * 2 for k, v in cell["metrics"].items()}))
    leaderboard = build(good, bad)
    assert leaderboard.models("digits") == ["independent", "worse"]
    assert leaderboard.best("digits", "bpd") == {"independent"}
    _, rows = report.table_rows(leaderboard, "digits")
    bpd = rows[0][2]
    assert bpd.best and not rows[1][2].best
    assert f"| independent | 3 | **{bpd.text}** |" in report.render_markdown(leaderboard)

    flip = set_field("column_specs", "bpd", "higher_is_better", value=True)
    edit_run_json(good, flip)
    edit_run_json(bad, flip)
    flipped = build(good, bad)
    assert flipped.best("digits", "bpd") == {"worse"}
    assert flipped.models("digits") == ["worse", "independent"]


def test_models_with_several_configs_get_a_row_each(base_run: Path, tmp_path: Path) -> None:
    one, other = copy_run(base_run, tmp_path, "one"), copy_run(base_run, tmp_path, "other")
    edit_cells(other, set_field("config", "pseudocount", value=0.5))
    assert build(one, other).models("digits") == ["independent (pseudocount=1.0)", "independent (pseudocount=0.5)"]


def test_the_same_cell_in_two_runs_counts_once(base_run: Path, tmp_path: Path) -> None:
    copy_run(base_run, tmp_path, "first")
    copy_run(base_run, tmp_path, "second")
    leaderboard = build(tmp_path)
    assert leaderboard.summary("digits", "independent", "nll")["n"] == 3
    assert sum("the later" in note for note in leaderboard.notes) == 3


def test_pareto_front() -> None:
    points = [(1.0, 10.0), (2.0, 5.0), (3.0, 6.0), (0.5, 20.0), (2.0, 5.0)]
    assert report.pareto_front(points, higher_is_better=False) == [True, True, False, True, True]
    assert report.pareto_front(points, higher_is_better=True) == [False, False, False, True, False]


# -------------------------------------------------------------------------------------------- protocol


def test_another_k_is_refused_naming_column_runs_and_field(base_run: Path, tmp_path: Path) -> None:
    a, b = copy_run(base_run, tmp_path, "a"), copy_run(base_run, tmp_path, "b")
    edit_cells(a, set_field("provenance", "nll", "k", value=100))
    edit_cells(b, set_field("provenance", "nll", "k", value=5), seeds=[1])
    with pytest.raises(genbench.GenbenchError) as refused:
        build(a, b)
    message = str(refused.value)
    assert "column 'nll' on digits" in message
    assert f"differs in k: k=100 in {a} (independent seeds 0, 1, 2) vs k=5 in {b} (independent seed 1)." in message


@pytest.mark.parametrize(
    ("keys", "value", "what", "field"),
    [
        (("provenance", "sample_time", "device"), "cuda", "column 'sample_time'", "device"),
        (("provenance", "bpd", "n_images"), 100, "column 'bpd'", "n_images"),
        (("dataset_provenance", "fingerprint"), "0123456789abcdef", "the data set", "fingerprint"),
        (("dataset_provenance", "split"), "random 50%/50%, seed 1", "the data set", "split"),
        (("device",), "cuda", "column 'train_time'", "device"),
    ],
)
def test_other_protocols_are_refused(
    base_run: Path, tmp_path: Path, keys: tuple[str, ...], value: Any, what: str, field: str
) -> None:
    a, b = copy_run(base_run, tmp_path, "a"), copy_run(base_run, tmp_path, "b")
    edit_cells(b, set_field(*keys, value=value))
    with pytest.raises(genbench.GenbenchError, match=rf"refusing to rank {what} on digits .* differs in {field}\b"):
        build(a, b)


def test_timings_on_other_hardware_are_refused(base_run: Path, tmp_path: Path) -> None:
    a, b = copy_run(base_run, tmp_path, "a"), copy_run(base_run, tmp_path, "b")
    edit_run_json(b, set_field("device", "name", value="another processor"))
    with pytest.raises(genbench.GenbenchError, match=r"column 'sample_time' .* differs in hardware"):
        build(a, b)


def test_measurement_fields_are_not_protocol(base_run: Path, tmp_path: Path) -> None:
    a, b = copy_run(base_run, tmp_path, "a"), copy_run(base_run, tmp_path, "b")
    edit_cells(b, set_field("provenance", "nll", "seconds", value=12.5))
    assert build(a, b).summary("digits", "independent", "nll")["n"] == 3


def test_the_likelihood_method_may_differ_between_models_but_not_within_one(base_run: Path, tmp_path: Path) -> None:
    exact, bound = copy_run(base_run, tmp_path, "exact"), copy_run(base_run, tmp_path, "bound")
    iwae = "importance-weighted bound (Burda et al. 2016); NLL is an upper bound"
    edit_cells(bound, lambda cell: cell.update(model="vae-like"))
    edit_cells(bound, set_field("provenance", "nll", "method", value=iwae))
    edit_cells(bound, set_field("provenance", "nll", "k", value=100))
    leaderboard = build(exact, bound)
    protocol = leaderboard.protocols[("digits", "nll")]
    assert protocol["method"] == f"exact log-likelihood (independent); {iwae} (vae-like)"
    assert protocol["k"] == "100"

    edit_cells(exact, set_field("provenance", "nll", "method", value=iwae), seeds=[0])
    with pytest.raises(genbench.GenbenchError, match=r"differs in method of independent"):
        build(exact, bound)


def test_binarized_data_is_another_table_not_a_conflict(base_run: Path, tmp_path: Path) -> None:
    plain, binary = copy_run(base_run, tmp_path, "plain"), copy_run(base_run, tmp_path, "binary")
    edit_cells(binary, set_field("dataset_provenance", "binarized", value=True))
    edit_cells(binary, set_field("dataset_provenance", "levels", value=2))
    assert build(plain, binary).datasets == ["digits", "digits (binarized)"]


def test_columns_that_mean_different_things_are_refused(base_run: Path, tmp_path: Path) -> None:
    a, b = copy_run(base_run, tmp_path, "a"), copy_run(base_run, tmp_path, "b")
    edit_run_json(b, set_field("column_specs", "nll", "unit", value="bits/image"))
    with pytest.raises(genbench.GenbenchError, match=r"column 'nll' is nats/image, lower is better in .* but bits"):
        build(a, b)


# ------------------------------------------------------------------------------------------ rendering

HOSTILE = "<script>alert(1)</script>"


def test_plugin_strings_are_escaped(base_run: Path, tmp_path: Path) -> None:
    run = copy_run(base_run, tmp_path)
    edit_cells(run, lambda cell: cell.update(model=HOSTILE, config={HOSTILE: HOSTILE}))
    edit_cells(run, lambda cell: cell.update(status="failed", error=f"ValueError: {HOSTILE}"), seeds=[1])
    edit_cells(run, set_field("provenance", "nll", "split", value=HOSTILE))
    edit_run_json(run, set_field("column_specs", "nll", "unit", value="<b>nats</b>"))
    hostile_plugin = {"name": HOSTILE, "module": HOSTILE, "distribution": HOSTILE, "version": HOSTILE}
    edit_run_json(run, lambda info: info["plugins"].append(hostile_plugin))  # shown in the run line too
    leaderboard = build(run)
    page = report.render_html(leaderboard)
    assert "alert(1)" in page and HOSTILE not in page and "<b>nats" not in page
    assert page.count("<script>") == 1  # the page's own sorting script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    markdown = report.render_markdown(leaderboard)
    assert HOSTILE not in markdown and "&lt;script&gt;" in markdown


def test_markdown_cells_cannot_break_the_table(base_run: Path, tmp_path: Path) -> None:
    run = copy_run(base_run, tmp_path)
    edit_cells(run, lambda cell: cell.update(status="failed", error="a | b\nc"), seeds=[0])
    row = next(line for line in report.render_markdown(build(run)).splitlines() if line.startswith("| independent"))
    assert row.endswith("| 1 of 3 seeds failed: seed 0: a \\| b c |")


def test_html_is_self_contained(base_run: Path) -> None:
    page = report.render_html(build(base_run))
    # Links within the page (a header's § to its protocol line) aside, every source is inline.
    sources = [source for source in re.findall(r'(?:src|href)="([^"]*)"', page) if not source.startswith("#")]
    assert len(sources) == 4  # samples, real images, the quality-versus-speed plot, the training curves
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert "http://" not in page and "https://" not in page
    for heading in ("Quality versus speed", "Samples and training curves", "Protocol", "Data sets", "Runs"):
        assert heading in page


def test_protocol_section_says_how_every_number_was_measured(base_run: Path) -> None:
    markdown = report.render_markdown(build(base_run))
    protocol = markdown[markdown.index("## Protocol") :]
    for expected in ("fingerprint: ", "n_test: 359", "split: test", "hardware: cpu", "git revision: ", "torch "):
        assert expected in protocol
    assert "- **independent**: pseudocount: 1.0" in protocol


def run_line(text: str, root: Path) -> str:
    """The packages part of a run's line in the protocol section (Markdown or HTML)."""
    found = re.search(rf"{re.escape(str(root))}(?:\*\*: |</th><td>).*?packages: (.*?); started:", text)
    assert found is not None, text[-3000:]
    return found.group(1)


def test_run_lines_name_third_party_distributions_and_versions(base_run: Path, tmp_path: Path) -> None:
    run = copy_run(base_run, tmp_path)
    plugins = [
        {"name": "made", "module": "genbench_made", "distribution": "genbench-made", "version": "0.3.1"},
        {"name": "other", "module": "other", "distribution": "genbench-broken", "version": "1.0", "error": "boom"},
        {"name": "local", "module": "local_plugin", "distribution": None, "version": None},
        {"name": "vae", "module": "genbench_vae", "distribution": "Genbench", "version": "0.1.0"},  # genbench again
    ]
    edit_run_json(run, lambda info: info["plugins"].extend(plugins))
    leaderboard = build(run)
    recorded = ", ".join(f"{name} {version}" for name, version in leaderboard.runs[0].info["packages"].items())
    for text in (report.render_markdown(leaderboard), report.render_html(leaderboard)):
        # Working third-party distributions follow the packages run.json records; genbench is named once; a
        # broken plugin computed nothing and a -p module is no distribution, so neither is listed.
        assert run_line(text, run) == f"{recorded}, genbench-made 0.3.1"


def test_a_plugin_distribution_installed_beside_genbench_reaches_the_run_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real (tiny) distribution on sys.path, registered by entry point: the run records it, the report names it."""
    site = tmp_path / "site"
    dist_info = site / "genbench_tinyplug-0.4.2.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: genbench-tinyplug\nVersion: 0.4.2\n")
    (dist_info / "entry_points.txt").write_text("[genbench]\ntinyplug = genbench_tinyplug\n")
    (site / "genbench_tinyplug.py").write_text(
        "import genbench\n\n\n@genbench.hookimpl\ndef genbench_models():\n    return []\n"
    )
    monkeypatch.syspath_prepend(str(site))
    try:
        frame = genbench.run(["independent"], metrics=["bpd"], device="cpu", results_dir=tmp_path / "results")
    finally:
        sys.modules.pop("genbench_tinyplug", None)  # it lives in tmp_path: no later test may find it imported
    run = Path(frame.attrs["run_dir"])
    assert run_line((run / "leaderboard.md").read_text(), run).endswith(", genbench-tinyplug 0.4.2")
    assert run_line((run / "leaderboard.html").read_text(), run).endswith(", genbench-tinyplug 0.4.2")


# ---------------------------------------------------------------------------------------- files and CLI


def test_write_run_leaderboard_writes_into_the_run(base_run: Path, tmp_path: Path) -> None:
    run = copy_run(base_run, tmp_path)
    assert report.write_run_leaderboard(run) == (run / "leaderboard.md", run / "leaderboard.html")
    assert (run / "leaderboard.md").read_text().startswith("# genbench leaderboard")


def test_report_command_over_a_results_folder(
    base_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    copy_run(base_run, results, "a")
    assert report.report_command([results]) == 0
    printed = capsys.readouterr().out
    assert "== digits ==" in printed and "independent" in printed
    assert (results / "leaderboard.html").is_file() and (results / "leaderboard.md").is_file()


def test_report_default_and_explicit_out_dir(base_run: Path, tmp_path: Path) -> None:
    a, b = copy_run(base_run, tmp_path / "x", "a"), copy_run(base_run, tmp_path / "y", "b")
    assert report.default_out_dir([a]) == a
    assert report.default_out_dir([a, b]) == tmp_path.resolve()
    assert report.default_out_dir([a / "results.csv"]) == a
    out = tmp_path / "out"
    report.report_command([a], out)
    assert (out / "leaderboard.md").is_file()


def test_paths_without_runs_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(genbench.GenbenchError, match="does not exist"):
        report.build_leaderboard([tmp_path / "missing"])
    with pytest.raises(genbench.GenbenchError, match="holds no run directories"):
        report.build_leaderboard([tmp_path])


def test_plots_draw_control_characters_from_an_edited_run_as_escapes_without_warnings() -> None:
    # A run folder is untrusted: a model name or curve key edited to hold ESC or BEL has no glyph, and matplotlib
    # would warn for each (an error under this suite's filterwarnings). The plots draw their escapes instead.
    from genbench.contract import Column
    from genbench.report.plots import Point, draw_curves, draw_quality_speed, figure_png

    points = [Point("vae\x1b[2J", 1e-3, 80.0, 1.0), Point("gan\x07", 1e-4, 90.0, 2.0)]
    quality, speed = Column("nll\x1b", "nats", False), Column("sample_time", "s", False)
    png = figure_png(lambda figure: draw_quality_speed(figure, points, quality, speed), (4, 3))
    assert png.startswith(b"\x89PNG")
    curves = [(0, [{"step": 1, "nll\x1b]0;x\x07": 90.0}, {"step": 2, "nll\x1b]0;x\x07": 85.0}])]
    assert figure_png(lambda figure: draw_curves(figure, curves), (4, 3)).startswith(b"\x89PNG")


# --------------------------------------------------------------- spreads, ranking, protocol once, threads

#: An extractor's identity as FID-like metrics record it in their provenance.
IDENTITY = {"name": "classifier", "network": "genbench Classifier v1", "weights_sha256": "572f5f11286a2963"}


def add_columns(run_dir: Path, metric: str, columns: dict[str, tuple[str, bool, str, float]], **protocol: Any) -> None:
    """Give a run's cells the columns ``name: (unit, higher_is_better, description, value)`` of ``metric``, whose
    provenance names a feature extractor by its identity (and holds ``protocol``)."""

    def declare(info: Cell) -> None:
        for name, (unit, higher, description, _) in columns.items():
            info["columns"].append(name)
            info["column_specs"][name] = {"name": name, "unit": unit, "higher_is_better": higher}
            info["column_specs"][name]["description"] = description
            info["column_metrics"][name] = metric

    def measure(cell: Cell) -> None:
        cell["metrics"].update({name: value for name, (*_, value) in columns.items()})
        cell["provenance"][metric] = {"extractor": "classifier", "extractor_identity": IDENTITY, **protocol}

    edit_run_json(run_dir, declare)
    edit_cells(run_dir, measure)


def test_a_spread_is_shown_beside_its_metric_not_ranked_as_a_column(base_run: Path, tmp_path: Path) -> None:
    run = copy_run(base_run, tmp_path)
    add_columns(
        run, "kid", {"kid": ("MMD²", False, "", 106.0), "kid_std": ("MMD²", False, "spread over subsets", 54.57)}
    )
    leaderboard = build(run)
    headers, rows = report.table_rows(leaderboard, "digits")
    assert [h.split(" ")[0] for h in headers] == [
        "model", "seeds", "nll", "bpd", "sample_time", "kid", "train_time", "failed"
    ]  # fmt: skip
    kid = rows[0][headers.index("kid (MMD²) ↓")]
    assert (kid.text, kid.spread) == ("106 ± 0", "± 55 over subsets")
    assert not leaderboard.ranked("digits", "kid_std") and leaderboard.best("digits", "kid_std") == set()
    markdown = report.render_markdown(leaderboard)
    assert "| **106 ± 0** (± 55 over subsets) |" in markdown
    assert "kid_std (MMD²)" not in markdown.split("## Protocol")[0]
    note = "± in parentheses beside kid: kid_std (over subsets), each metric's own spread within one evaluation"
    assert note in markdown and note in report.format_leaderboard(leaderboard)
    page = report.render_html(leaderboard)
    assert html.escape(note) in page and '<small class="spread">± 55 over subsets</small>' in page


def test_an_evaluation_spread_says_over_how_many_evaluations(base_run: Path, tmp_path: Path) -> None:
    run = copy_run(base_run, tmp_path)
    add_columns(
        run,
        "fid",
        {
            "fid": ("distance²", False, "", 40.42),
            "fid_eval_std": ("distance²", False, "", 0.3149),
            "fid_eval_n": ("evaluations", True, "", 5.0),
        },
    )
    leaderboard = build(run)
    headers, rows = report.table_rows(leaderboard, "digits")
    assert not any(h.startswith("fid_eval") for h in headers)
    assert rows[0][headers.index("fid (distance²) ↓")].spread == "± 0.31 over 5 evaluations"
    notes = " ".join(report.table_notes(leaderboard, "digits"))
    assert "the evaluation spread (fid_eval_std)" in notes and "not the interval over seeds" in notes
    assert leaderboard.best("digits", "fid_eval_n") == set() and leaderboard.best("digits", "fid") == {"independent"}


def test_times_are_not_marked_best_unless_their_column_declares_a_rank(base_run: Path, tmp_path: Path) -> None:
    good, bad = copy_run(base_run, tmp_path, "good"), copy_run(base_run, tmp_path, "bad")
    edit_cells(bad, lambda cell: cell.update(model="slower", train_time=cell["train_time"] * 2))
    edit_cells(bad, lambda cell: cell["metrics"].update(sample_time=cell["metrics"]["sample_time"] * 2))
    leaderboard = build(good, bad)
    assert leaderboard.best("digits", "nll") == {"independent", "slower"}  # a quality column: a tie
    assert leaderboard.best("digits", "sample_time") == set() and leaderboard.best("digits", "train_time") == set()
    ranked = set_field("column_specs", "sample_time", "rank", value=5)
    edit_run_json(good, ranked)
    edit_run_json(bad, ranked)
    assert build(good, bad).best("digits", "sample_time") == {"independent"}


def test_an_extractor_identity_is_listed_once_and_named_by_the_metrics(base_run: Path, tmp_path: Path) -> None:
    run = copy_run(base_run, tmp_path)
    add_columns(run, "fid", {"fid": ("distance²", False, "", 40.4)})
    prc = {"precision": ("fraction", True, "", 0.73), "recall": ("fraction", True, "", 0.93)}
    add_columns(run, "prc", prc, neighborhood=3)
    markdown = report.render_markdown(build(run))
    protocol = markdown[markdown.index("## Protocol") :]
    assert protocol.count("genbench Classifier v1") == 1  # the identity, once
    extractors = protocol[protocol.index("### Feature extractors") : protocol.index("### Metrics")]
    assert "- **classifier**: name: classifier; network: genbench Classifier v1" in extractors
    assert "used by digits · fid, digits · precision, digits · recall" in extractors
    assert "- **digits · fid (distance²) ↓**: extractor: classifier, listed under Feature extractors" in protocol
    # Columns measured the same way share a line.
    assert "- **digits · precision (fraction) ↑, recall (fraction) ↑**: extractor: classifier, listed" in protocol


def test_the_thread_count_is_shown_once_or_per_run_where_runs_differ(base_run: Path, tmp_path: Path) -> None:
    one = copy_run(base_run, tmp_path, "one")
    markdown = report.render_markdown(build(one))
    machine = markdown[markdown.index("### Machine") : markdown.index("### Metrics")]
    threads = json.loads((one / "run.json").read_text())["device"]["torch_threads"]
    assert f"torch thread{'s' if threads != 1 else ''}**: {one}" in machine
    assert "bit-identical numbers need the same thread count" in machine

    other = copy_run(base_run, tmp_path, "other")
    edit_run_json(other, set_field("device", "torch_threads", value=threads + 1))
    edit_cells(other, lambda cell: cell.update(seed=cell["seed"] + 10))  # other seeds, so both runs count
    leaderboard = build(one, other)
    markdown = report.render_markdown(leaderboard)
    machine = markdown[markdown.index("### Machine") : markdown.index("### Metrics")]
    assert f"{threads + 1} torch threads**: runs {other}" in machine
    note = next(note for note in report.table_notes(leaderboard, "digits") if "thread counts" in note)
    assert f"{other} ({threads + 1} torch threads)" in note and "not bit-identical" in note
    assert f"device: cpu {platform_name(one)}, {threads + 1} torch threads" in markdown  # the run's own line


def platform_name(run_dir: Path) -> str:
    return str(json.loads((run_dir / "run.json").read_text())["device"]["name"])


def test_training_curves_are_labelled_with_epochs_and_their_units() -> None:
    from matplotlib.figure import Figure

    from genbench.report.plots import curve_y_label, draw_curves

    assert curve_y_label(["nll"]) == "training loss (nats/image)"
    assert curve_y_label(["negative_elbo"]) == "training loss (nats/image)"
    assert curve_y_label(["d_loss", "g_loss"]) == "training loss (the model's own objective)"
    assert curve_y_label(["nll", "kl"]) == "training loss (nll: nats/image; others: the model's objective)"
    figure = Figure()
    draw_curves(figure, [(0, [{"step": 1.0, "nll": 90.0}, {"step": 2.0, "nll": 85.0}])])
    axes = figure.axes[0]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("epoch", "training loss (nats/image)")


def test_each_header_of_the_page_links_to_how_its_column_was_measured(base_run: Path) -> None:
    page = report.render_html(build(base_run))
    links = re.findall(r'<th title="click to sort">([^<]*?) <a class="protocol-link" href="#([^"]+)"', page)
    assert [header.split()[0] for header, _ in links] == ["nll", "bpd", "sample_time", "train_time"]
    for header, anchor in links:
        line = re.search(rf'<tr id="{anchor}"><th>([^<]*)</th><td>([^<]*)</td>', page)
        assert line is not None and f"digits · {header.split()[0]} " in line.group(1), anchor
    assert "hardware: cpu" in re.findall(r'<tr id="([^"]+)"><th>digits · sample_time[^<]*</th><td>([^<]*)', page)[0][1]


def test_an_optional_column_no_cell_wrote_is_not_shown(base_run: Path, tmp_path: Path) -> None:
    # fid_infinity and the X_eval_* columns are declared by every run but written only by some evaluations.
    run = copy_run(base_run, tmp_path)

    def declare(info: Cell) -> None:
        info["columns"].append("fid_infinity")
        info["column_specs"]["fid_infinity"] = {"name": "fid_infinity", "unit": "distance²", "optional": True}
        info["column_specs"]["fid_infinity"]["higher_is_better"] = False

    edit_run_json(run, declare)
    headers, _ = report.table_rows(build(run), "digits")
    assert not any(header.startswith("fid_infinity") for header in headers)
