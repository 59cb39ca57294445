"""Code identity: an edited plugin reruns the cells it touches, and only those; --rerun recomputes on purpose.

The plugins here are modules the test writes into tmp_path and loads with -p, as a researcher's plugin under
development. A new genbench process is simulated by forgetting the imported module and the source hashes.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import genbench_fid.metric_fid
from genbench.cli import build_parser, request_from_args
from genbench.contract import GenbenchError
from genbench.contract.request import RunRequest
from genbench.registry import DATASET, METRIC, MODEL, load_plugins
from genbench.registry import code as identity
from genbench.runner.driver import execute
from genbench.runner.identity import evaluation_code, files_named_by, model_key
from genbench.runner.prepare import prepare
from genbench.store.layout import RunDirectory

MODEL_PLUGIN = """
from dataclasses import dataclass

import torch

import genbench


@dataclass
class ToyConfig:
    epochs: int = 1


class Toy(torch.nn.Module):
    capabilities = frozenset({genbench.SAMPLE})

    def __init__(self, config, info):
        super().__init__()
        self.shape = info.shape
        self.register_buffer("image", torch.zeros(info.shape, dtype=torch.uint8))

    def fit(self, train, ctx):
        self.image = train.images[0].clone()

    def sample(self, n, generator):
        return self.image.expand(n, *self.shape).clone()


@genbench.hookimpl
def genbench_models():
    return [genbench.ModelSpec("toy", "repeats the first training image", ToyConfig, Toy)]
"""

METRIC_PLUGIN = """
import genbench

VALUE = 1.0


def compute(model, ctx):
    return genbench.MetricResult({"toy_value": VALUE})


@genbench.hookimpl
def genbench_metrics():
    column = genbench.Column("toy_value", "1", higher_is_better=True)
    return [genbench.MetricSpec("toymetric", "reports VALUE", (column,), frozenset(), compute)]
"""


class Workbench:
    """Two plugin modules under development (a model, a metric) and runs of them beside ``independent``."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder = folder
        self.model_module, self.metric_module = "toymodel_under_edit", "toymetric_under_edit"
        (folder / f"{self.model_module}.py").write_text(MODEL_PLUGIN)
        (folder / f"{self.metric_module}.py").write_text(METRIC_PLUGIN)
        monkeypatch.syspath_prepend(str(folder))
        monkeypatch.setattr(sys, "dont_write_bytecode", True)  # an edit of equal size must not hit a stale .pyc
        self.lines: list[str] = []

    def edit(self, module: str, change: Callable[[str], str]) -> None:
        path = self.folder / f"{module}.py"
        path.write_text(change(path.read_text()))

    def run(self, rerun: list[str] | None = None) -> dict[str, dict[str, object]]:
        """A run as a new genbench process makes it; returns each model's record and what the run said of it."""
        for module in (self.model_module, self.metric_module):
            sys.modules.pop(module, None)
        importlib.invalidate_caches()
        identity._source_hash.cache_clear()
        self.lines = []
        request = RunRequest(
            models=["toy", "independent"],
            metrics=["toymetric"],
            results_dir=self.folder / "results",
            plugins=[self.model_module, self.metric_module],
            rerun=rerun,
        )
        frame = execute(prepare(request), echo=self.lines.append)
        directory = RunDirectory(Path(frame.attrs["run_dir"]))
        cells: dict[str, dict[str, object]] = {}
        for cell_id, model in zip(frame["cell_id"], frame["model"], strict=True):
            record = directory.read_cell(cell_id)
            assert record is not None
            said = next(line for line in self.lines if line.startswith(f"{model} seed 0:"))
            cells[model] = {"id": cell_id, "trained": record.trained, "value": record.metrics["toy_value"]}
            cells[model]["said"] = said.split(": ", 1)[1].split(" ")[0]
        self.checkpoints = sorted(p.name for p in directory.checkpoints.glob("*.safetensors"))
        self.run_dir = directory.root
        return cells


@pytest.fixture
def bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workbench:
    return Workbench(tmp_path, monkeypatch)


def test_editing_a_plugin_reruns_the_cells_it_touches_and_only_those(bench: Workbench) -> None:
    first = bench.run()
    assert {model: cell["said"] for model, cell in first.items()} == {"toy": "running", "independent": "running"}
    assert {model: cell["said"] for model, cell in bench.run().items()} == {
        "toy": "finished",
        "independent": "finished",
    }

    # The model plugin changes (its version does not): its model is trained again; the baseline's cell is reused.
    bench.edit(bench.model_module, lambda text: text + "\n# a changed training loop\n")
    second = bench.run()
    assert (second["toy"]["said"], second["toy"]["trained"]) == ("running", True)
    assert second["toy"]["id"] != first["toy"]["id"]
    assert second["independent"]["said"] == "finished" and second["independent"]["id"] == first["independent"]["id"]
    assert len(bench.checkpoints) == 3

    # The metric plugin changes: every cell that uses it is evaluated again, from the checkpoints it already has.
    bench.edit(bench.metric_module, lambda text: text.replace("VALUE = 1.0", "VALUE = 2.5"))
    third = bench.run()
    assert {model: (cell["said"], cell["trained"], cell["value"]) for model, cell in third.items()} == {
        "toy": ("running", False, 2.5),
        "independent": ("running", False, 2.5),
    }
    assert len(bench.checkpoints) == 3

    # run.json and the leaderboard name each plugin's source hash.
    plugins = {p["name"]: p for p in json.loads((bench.run_dir / "run.json").read_text())["plugins"]}
    source = plugins[bench.metric_module]["source_hash"]
    assert source == identity.source_hash(bench.folder / f"{bench.metric_module}.py")
    assert f"module {bench.metric_module}, source sha256 {source}" in (bench.run_dir / "leaderboard.md").read_text()


def test_rerun_recomputes_every_cell_or_one_models_cells(bench: Workbench) -> None:
    first = bench.run()
    only_toy = bench.run(rerun=["toy"])
    assert (only_toy["toy"]["said"], only_toy["toy"]["trained"]) == ("--rerun:", True)
    assert only_toy["independent"]["said"] == "finished"
    assert any("--rerun: training and evaluating again" in line for line in bench.lines)
    everything = bench.run(rerun=[])
    assert all((cell["said"], cell["trained"]) == ("--rerun:", True) for cell in everything.values())
    assert {model: cell["id"] for model, cell in everything.items()} == {m: c["id"] for m, c in first.items()}
    assert len(bench.checkpoints) == 2  # replaced, not added to


def test_rerun_flag_parses_and_names_only_models_of_the_run() -> None:
    parser, _ = build_parser()
    assert request_from_args(parser.parse_args(["run"])).rerun is None
    assert request_from_args(parser.parse_args(["run", "--rerun"])).rerun == []
    assert request_from_args(parser.parse_args(["run", "--rerun", "vae,gan", "--models", "vae,gan"])).rerun == [
        "vae",
        "gan",
    ]
    with pytest.raises(GenbenchError, match=r"--rerun gan: not a model of this run \(independent\)"):
        prepare(RunRequest(models=["independent"], rerun=["gan"]))


def test_each_kind_of_plugin_invalidates_its_own_keys(tmp_path: Path) -> None:
    """Model or data set code changes the checkpoint and the cell; metric code only the cell's evaluation."""
    run = prepare(RunRequest(models=["independent"], metrics=["nll"], results_dir=tmp_path), load_plugins())
    spec = run.models[0]

    def keys() -> tuple[str, str]:
        return model_key(run, spec, 0), json.dumps(evaluation_code(run), sort_keys=True)

    before = keys()
    for kind, name, checkpoint_changes in (
        (MODEL, "independent", True),
        (DATASET, "digits", True),
        (METRIC, "nll", False),
    ):
        plugin = run.registry.plugin_of(kind, name)
        original, plugin.source_hash = plugin.source_hash, "edited"
        after = keys()
        plugin.source_hash = original
        assert (after[0] != before[0], after[1] != before[1]) == (checkpoint_changes, not checkpoint_changes), kind
    assert keys() == before


def test_source_hash_covers_the_whole_package_and_changes_with_any_file(tmp_path: Path) -> None:
    assert identity.plugin_source_location(genbench_fid.metric_fid) == Path(genbench_fid.__file__).parent
    assert identity.plugin_source_location(genbench_fid.metric_fid.FidConfig()) == Path(genbench_fid.__file__).parent
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "deep.py").write_text("x = 1\n")
    (package / "notes.txt").write_text("not code")
    before = identity._source_hash.__wrapped__(str(package))
    (package / "notes.txt").write_text("still not code")
    assert identity._source_hash.__wrapped__(str(package)) == before
    (package / "sub" / "deep.py").write_text("x = 2\n")
    assert identity._source_hash.__wrapped__(str(package)) != before


def test_a_file_an_option_names_counts_by_its_content(tmp_path: Path) -> None:
    # --fid-reference stats.npz replaced in place must not let a rerun reuse cells measured against the old file.
    stats = tmp_path / "stats.npz"
    stats.write_bytes(b"first")
    options = [{"fid": {"reference_statistics": str(stats), "extractor": "inception"}}, {"inception_weights": None}]
    before = files_named_by(options)
    assert list(before) == [str(stats)]
    stats.write_bytes(b"second")
    assert files_named_by(options) != before
    assert files_named_by([{"fid": {"reference_statistics": str(tmp_path / "missing.npz")}}]) == {}
