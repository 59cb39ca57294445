"""A published row is a protocol: genbench's number beside it says "comparable: yes" only when the cell followed
every recorded part of it, and lists what differs otherwise; a suite on incomplete data is refused in one line,
and run anyway only when asked, with every number then marked not comparable."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from plugins.test_binarized_mnist import write_amat

import genbench
from conftest import REPO
from genbench import report
from genbench.cli import main
from genbench.config import resolve_config
from genbench.contract import CellRecord, DataInfo
from genbench.contract.published import COMPARABLE, PublishedRow, comparability, differences
from genbench.registry import MODEL, Registry
from genbench.suites import Suite, load_suite
from genbench_likelihood import NllConfig, estimator_settings

ROW: dict[str, Any] = {
    "model": "Baseline (the paper's)",
    "beside": "independent",
    "metric": "nll",
    "value": 50.0,
    "unit": "nats",
    "source": "A. Author (2020), A Paper; Table 1",
    "data": {"describe": "digits, static binarization", "dataset": "digits", "n_test": 359},
    "model_config": {"describe": "no options"},
    "training": {"describe": "Laplace's add-one counts", "pseudocount": 1.0},
    "evaluation": {"describe": "exact", "split": "test", "n_images": 359},
}


def record(**changes: Any) -> CellRecord:
    base = CellRecord(
        "c",
        "independent",
        "digits",
        0,
        "ok",
        {"pseudocount": 1.0},
        "k",
        metrics={"nll": 40.0},
        provenance={"nll": {"split": "test", "n_images": 359, "settings": {}}},
        dataset_provenance={"n_test": 359, "n_train": 1438},
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_a_cell_that_followed_every_part_is_comparable() -> None:
    row = PublishedRow.from_table("baseline", ROW)
    assert differences(row, record()) == []
    assert comparability(row, [record(), record(seed=1)]) == COMPARABLE == "yes"


def test_each_difference_is_named_with_both_values() -> None:
    row = PublishedRow.from_table("baseline", {**ROW, "unmatched": ["the paper's learning-rate schedule"]})
    cell = record(
        config={"pseudocount": 0.5},
        dataset="mnist",
        provenance={"nll": {"split": "test", "n_images": 100, "settings": {}}},
        dataset_provenance={"n_test": 359, "incomplete_data_missing": ["train-images-idx3-ubyte[.gz]"]},
    )
    assert differences(row, cell) == [
        "incomplete data (train-images-idx3-ubyte[.gz])",
        "data dataset: mnist (published: digits)",
        "pseudocount: 0.5 (published: 1.0)",
        "n_images: 100 (published: 359)",
        "the paper's learning-rate schedule",
    ]
    assert comparability(row, [cell]).startswith("no: incomplete data")


@pytest.fixture(scope="module")
def published_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits run of the independent baseline whose run.json says it ran a suite with two published rows: one
    whose protocol the run followed, one it did not (other training epochs)."""
    results = tmp_path_factory.mktemp("results")
    frame = genbench.run(["independent"], metrics=["nll", "bpd"], seeds=[0, 1], results_dir=results)
    run_dir = Path(frame.attrs["run_dir"])
    info = json.loads((run_dir / "run.json").read_text())
    followed = {**ROW, "evaluation": {"split": "test", "n_images": 359}, "training": {}}
    other = {**ROW, "model": "Baseline <b>smoothed more</b>", "training": {"pseudocount": 1000}}
    info["request"]["suite"] = {"name": "made-up", "version": 1, "reference": {"a": followed, "b": other}}
    (run_dir / "run.json").write_text(json.dumps(info))
    return results


@pytest.mark.slow  # a run of the independent baseline, seconds on a loaded CPU
def test_the_leaderboard_shows_comparable_beside_each_published_number(published_run: Path) -> None:
    leaderboard = report.build_leaderboard([published_run])
    text = report.render_markdown(leaderboard)
    assert "### Published numbers beside genbench's" in text
    lines = [line for line in text.splitlines() if line.startswith("| Baseline")]
    assert len(lines) == 2
    assert lines[0].endswith("| yes |") and "50 nats" in lines[0] and "| independent |" in lines[0]
    assert "no: pseudocount: 1.0 (published: 1,000)" in lines[1]


@pytest.mark.slow  # a run of the independent baseline on 28x28 stand-ins
def test_a_suite_on_incomplete_data_is_refused_in_one_line_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_amat(tmp_path / "data" / "binarized_mnist")  # 7 / 3 / 5 images, not 50,000 / 10,000 / 10,000
    args = ["run", "--suite", "binarized-mnist", "--data-root", str(tmp_path / "data"), "--models", "independent"]
    args += ["--results-dir", str(tmp_path / "results"), "--seeds", "0", "--metrics", "nll"]
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith("genbench: error: suite 'binarized-mnist' needs the complete")
    assert "binarized_mnist_train.amat: 7 of 50,000 images" in error and "--allow-incomplete-data" in error
    assert main([*args, "--allow-incomplete-data"]) == 0
    run_dir = next((tmp_path / "results").iterdir())
    leaderboard = report.build_leaderboard([run_dir])
    published = [line for line in report.render_markdown(leaderboard).splitlines() if line.startswith("| PixelCNN")]
    assert published and "not run" in published[0]  # pixelcnn was left out: its row has no number beside it
    cell = json.loads(next((run_dir / "cells").glob("*.json")).read_text())
    assert cell["dataset_provenance"]["incomplete_data_missing"]
    rows = json.loads((run_dir / "run.json").read_text())["request"]["suite"]["reference"]
    row = PublishedRow.from_table("pixelcnn", rows["pixelcnn"])
    assert comparability(row, [CellRecord.from_dict(cell)]).startswith("no: incomplete data")


#: What a run of each suite on its complete data records about the data (the official counts and binarization).
COMPLETE_DATA = {
    "binarized-mnist": {"n_train": 50000, "n_test": 10000, "binarized": True, "binarization": "fixed file: ..."},
    "binarized-mnist-dynamic": {"n_train": 59600, "n_test": 10000, "binarized": True, "binarization": "dynamic: ..."},
    "cifar10": {"n_train": 50000, "n_test": 10000},
}


def suite_run_record(suite: Suite, row: PublishedRow, registry: Registry) -> CellRecord:
    """The record a run of ``suite`` with its own settings on complete data would write for ``row``'s model: its
    resolved config, the metric's recorded settings and, for a likelihood, the kind, name and estimator settings
    of the likelihood the metric would choose (read from the model built small: its likelihoods do not depend on
    its size)."""
    model = registry.get(MODEL, str(row.beside))
    config = dataclasses.asdict(resolve_config(model.config_class, suite.settings["model"].get(row.beside, {}), "m"))
    options = suite.settings.get("metric", {}).get(row.metric if row.metric in ("nll", "bpd", "fid", "is") else "", {})
    measured: dict[str, Any] = {
        "extractor": options.get("extractor"),
        "reference_split": options.get("reference_split", "test"),
        "n_fake": options.get("n_samples"),
        "n_real": options.get("n_real"),
        "repeats": options.get("repeats", 1),
        "settings": {"k": options["k"]} if "k" in options else {},
    }
    if row.metric in ("nll", "bpd"):
        nll_config = NllConfig(**options)
        built = model.factory(model.default_config(), DataInfo((3, 8, 8), 256))
        offered = genbench.likelihoods_of(built)
        likelihood = next(item for item in offered if nll_config.likelihood in (None, item.name))
        settings = estimator_settings(likelihood, nll_config, str(row.beside))
        measured.update(kind=likelihood.kind, likelihood=likelihood.name, settings=settings, split="test")
    return CellRecord(
        "c",
        str(row.beside),
        str(suite.settings["dataset"]),
        0,
        "ok",
        config,
        "k",
        provenance={row.metric: measured},
        dataset_provenance=COMPLETE_DATA[suite.name],
    )


@pytest.mark.parametrize("name", sorted(COMPLETE_DATA))
def test_the_docs_say_what_a_run_of_each_suite_would_list(name: str, registry: Registry) -> None:
    """docs/suites.md's 'comparable' column for each row beside a genbench model is what the code computes for a
    run of the suite with its own settings on complete data, word for word: the checked settings that differ
    (DDPM's 50,000 samples against the suite's 10,000, the Glow row's config against the suite's realnvp), then
    the row's unmatched items. A checked setting the model does not have, or a metric does not record, is a
    mistake in the row, not a difference."""
    page = (REPO / "docs" / "suites.md").read_text()
    suite = load_suite(name)
    for key, table in suite.reference.items():
        row = PublishedRow.from_table(key, table)
        if row.beside is None or row.beside not in registry.names(MODEL):
            continue
        record = suite_run_record(suite, row, registry)
        found = differences(row, record)
        assert not [item for item in found if "not a setting" in item or "not recorded" in item], (key, found)
        assert f"| {comparability(row, [record])} |" in page, (key, comparability(row, [record]))


@pytest.mark.parametrize("name", sorted(COMPLETE_DATA))
def test_every_suite_config_is_valid_for_its_model(name: str, registry: Registry) -> None:
    """Every [model.NAME] table of a suite, and every config a published row names for its genbench model (Glow's
    realnvp, which the suite's one [model.realnvp] table cannot also hold), resolves through the model's config
    class as a run would resolve it; nothing is built or trained."""
    suite = load_suite(name)
    for model_name, options in suite.settings.get("model", {}).items():
        spec = registry.get(MODEL, model_name)
        assert isinstance(resolve_config(spec.config_class, options, model_name), spec.config_class)
    for key, table in suite.reference.items():
        row = PublishedRow.from_table(key, table)
        if row.beside is None or row.beside not in registry.names(MODEL):
            continue
        spec = registry.get(MODEL, row.beside)
        named = {**suite.settings.get("model", {}).get(row.beside, {}), **row.checks("model_config")}
        named.update(row.checks("training"))
        assert isinstance(resolve_config(spec.config_class, named, key), spec.config_class), key
