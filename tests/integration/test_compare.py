"""genbench compare on run folders: verdicts, threads, one seed, one-line errors, CSV and JSON; and a real grid
where one model is truly better (a VAE trained for eight epochs against the same VAE after one)."""

from __future__ import annotations

import csv
import importlib
import json
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import REPO, genbench_cli
from genbench import report
from genbench.cli import main
from genbench.contract import CellRecord
from genbench.report.significance import ONE_SEED_LEGEND, rank_group_tables
from genbench.store import RunDirectory
from genbench.toolkit.files import write_checked_json

SEEDS = [0, 1, 2, 3, 4]
#: Per-seed offsets of the values, so that the seeds have a spread.
NOISE = [0.3, -0.5, 0.1, 0.6, -0.4]
SPECS = {
    "nll": {"name": "nll", "unit": "nats/image", "higher_is_better": False, "rank": 2},
    "bpd": {"name": "bpd", "unit": "bits/dim", "higher_is_better": False, "rank": 1},
    "sample_time": {"name": "sample_time", "unit": "s/image", "higher_is_better": False},
    "fid": {"name": "fid", "unit": "distance²", "higher_is_better": False, "rank": 0},
    "fid_eval_std": {"name": "fid_eval_std", "unit": "distance²", "higher_is_better": False},
    "fid_eval_n": {"name": "fid_eval_n", "unit": "", "higher_is_better": False},
}


def write_run(
    root: Path,
    scale: Callable[[int], float],
    threads: int = 1,
    binarized: bool = False,
    width: int = 8,
    seeds: Sequence[int] = SEEDS,
    extra: Callable[[int], dict[str, float]] = lambda seed: {},
    kind: str = "",
    model: str = "toy",
) -> Path:
    """A run folder as genbench writes it, of a model 'toy' with five seeds: nll 100, bpd 2.3 and sample_time
    0.001, each times ``scale(seed)``."""
    directory = RunDirectory(root)
    cells = []
    for seed in seeds:
        values = {"nll": 100.0 * scale(seed), "bpd": 2.3 * scale(seed), "sample_time": 0.001 * scale(seed)}
        values |= extra(seed)
        config = {"width": width}
        record = CellRecord(f"{model}-{seed}", model, "digits", seed, "ok", config, "key", train_time=scale(seed))
        record.metrics, record.dataset_provenance = values, {"binarized": binarized}
        record.provenance = {"nll": {"kind": kind}, "bpd": {"kind": kind}} if kind else {}
        directory.cell_path(record.cell_id).parent.mkdir(parents=True, exist_ok=True)
        write_checked_json(directory.cell_path(record.cell_id), record.to_dict())  # with its checksum
        cells.append(record.cell_id)
    device = {"type": "cpu", "torch_threads": threads, "name": "x86_64"}
    info = {"cells": cells, "columns": list(SPECS), "column_specs": SPECS, "device": device}
    (root / "run.json").write_text(json.dumps(info))
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``base``, ``same`` (other noise of the same size) and ``worse`` (every value 5% higher)."""
    results = tmp_path_factory.mktemp("results")
    shuffled = NOISE[2:] + NOISE[:2]
    write_run(results / "base", lambda s: 1 + 0.01 * NOISE[s])
    write_run(results / "same", lambda s: 1 + 0.01 * shuffled[s])
    write_run(results / "worse", lambda s: 1.05 + 0.01 * shuffled[s])
    return results


def compare(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["compare", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def comparisons(path: Path) -> dict[str, dict[str, Any]]:
    return {row["column"]: row for row in json.loads(path.read_text())["comparisons"]}


def test_a_worse_copy_is_found_and_an_equal_one_is_not(
    runs: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = compare(capsys, str(runs / "base"), str(runs / "worse"), "--json", str(tmp_path / "w.json"))
    assert code == 0
    found = comparisons(tmp_path / "w.json")
    assert set(found) == {"bpd", "nll"}  # the ranked quality columns; no time without --times
    for row in found.values():
        assert row["test"] == "paired t" and row["significant"] and row["better"] == "A", row
        assert row["high"] < 0 < row["p_holm"] < 0.05
    assert "A better" in out and "Holm's correction across the 2 quality columns" in out

    compare(capsys, str(runs / "base"), str(runs / "same"), "--json", str(tmp_path / "s.json"))
    for row in comparisons(tmp_path / "s.json").values():
        assert not row["significant"] and row["low"] < 0 < row["high"]
        assert row["seeds_needed"] is None or row["seeds_needed"] > len(SEEDS)
        assert "no significant difference" in row["verdict"]


def test_times_are_a_family_of_their_own_and_csv_is_written(
    runs: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = compare(
        capsys, str(runs / "base"), str(runs / "worse"), "--times", "--metrics", "nll", "--csv", str(tmp_path / "c.csv")
    )
    assert code == 0
    with (tmp_path / "c.csv").open() as handle:
        rows = {row["column"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"nll", "sample_time", "train_time"}
    assert rows["nll"]["family"] == "quality" and rows["train_time"]["family"] == "times"
    # nll alone in its family: Holm leaves its p as it is
    assert float(rows["nll"]["p_holm"]) == pytest.approx(float(rows["nll"]["p_value"]))
    assert "times are a family of their own" in out


def test_thread_counts_are_shown_and_a_difference_is_called_noise(
    runs: Path, capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    shuffled = NOISE[2:] + NOISE[:2]
    two = write_run(tmp_path_factory.mktemp("threads") / "two", lambda s: 1 + 0.01 * shuffled[s], threads=2)
    _, out, _ = compare(capsys, str(runs / "base"), str(two))
    assert "torch threads 1)" in out and "torch threads 2)" in out
    assert "torch threads differ: A ran with 1, B with 2" in out and "read it as seed noise" in out


def test_one_seed_a_side_is_no_test(
    runs: Path, capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("one-seed")
    for name in ("base", "worse"):
        shutil.copytree(runs / name, folder / name)
        info = json.loads((folder / name / "run.json").read_text())
        info["cells"] = info["cells"][:1]
        (folder / name / "run.json").write_text(json.dumps(info))
    code, out, _ = compare(capsys, str(folder / "base"), str(folder / "worse"), "--json", str(folder / "c.json"))
    assert "one seed per side" in out
    assert code == 0
    for row in comparisons(folder / "c.json").values():
        assert row["test"] == "" and row["p_value"] is None and not row["significant"]
        assert row["verdict"] == "no test: one seed per side (a test needs two seeds a side)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["base"], "name two models (--models A,B) or give two run directories"),
        (["base", "--models", "toy,toy"], "names 'toy' twice"),
        (["base", "worse", "--models", "vae"], "model 'vae' is not in both"),
        (["base", "--models", "toy,nope"], "no model 'nope' in these runs"),
        (["base", "worse", "--metrics", "fdi"], "--metrics: no column 'fdi'"),
        (["base", "worse", "--dataset", "mnist"], "no cells on 'mnist'"),
        (["base", "nowhere"], "nowhere does not exist"),
    ],
)
def test_bad_input_is_one_line(
    runs: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(runs)
    code, out, err = compare(capsys, *args)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genbench: error: ") and message in lines[0], err


def test_models_on_different_data_sets_are_refused(
    runs: Path, capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    # binarized digits are another data set, for the leaderboard and for compare
    other = write_run(tmp_path_factory.mktemp("other") / "other", lambda s: 1.0 + 0.01 * NOISE[s], binarized=True)
    code, _, err = compare(capsys, str(runs / "base"), str(other))
    assert code == 2 and "numbers on different data sets do not compare" in err


@pytest.mark.slow
def test_a_vae_trained_longer_is_significantly_better(tmp_path: Path) -> None:
    """A real grid: the VAE after eight epochs against the same VAE after one, five seeds each; nll's bound with
    k = 10 keeps it near half a minute on one thread."""
    (tmp_path / "k10.toml").write_text("[metric.nll]\nk = 10\n")
    common = ["--models", "vae", "--metrics", "nll,bpd", "--seeds", "0,1,2,3,4", "--config", "k10.toml"]
    for epochs in ("1", "8"):
        done = genbench_cli("run", *common, "--epochs", epochs, "--name", f"e{epochs}", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    result = genbench_cli("compare", "results/e8", "results/e1", "--json", "c.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = comparisons(tmp_path / "c.json")
    for column in ("bpd", "nll"):
        assert found[column]["significant"] and found[column]["better"] == "A", found[column]
    assert "vae in results/e8" in result.stdout and "A better" in result.stdout


@pytest.fixture(scope="module")
def browser() -> ModuleType:
    """The helpers of scripts/screenshot_leaderboard.py, which drive Chromium (as test_report_browser.py does)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(REPO / "scripts"))
        helpers = importlib.import_module("screenshot_leaderboard")
    if helpers.find_chromium() is None:
        pytest.skip("no chromium binary on PATH; apt-get install chromium to run the browser tests")
    return helpers


@pytest.mark.slow
def test_rank_groups_on_the_leaderboard_page(browser: ModuleType, tmp_path: Path) -> None:
    """Three configs of one model: width 8 and 12 within noise of each other, width 16 5% worse: the page's rank
    groups put the first two in group a and the third in b, and say how many seeds would separate the close two."""
    shuffled = NOISE[2:] + NOISE[:2]
    write_run(tmp_path / "w8", lambda s: 1 + 0.01 * NOISE[s], width=8)
    write_run(tmp_path / "w12", lambda s: 1.002 + 0.01 * shuffled[s], width=12)
    write_run(tmp_path / "w16", lambda s: 1.05 + 0.01 * shuffled[s], width=16)
    _, html_path = report.write_leaderboard(report.build_leaderboard([tmp_path]), tmp_path)
    dom = browser.dump_dom(html_path)
    groups = re.search(r"<h3>Rank groups</h3>.*?<thead><tr>(.*?)</tr></thead><tbody>(.*?)</tbody>", dom, re.S)
    assert groups is not None, dom[:3000]
    assert re.findall(r"<th>(.*?)</th>", groups.group(1)) == ["model", "bpd", "nll"]
    rows = {
        cells[0]: cells[1:]
        for cells in (re.findall(r"<td[^>]*>(.*?)</td>", row) for row in groups.group(2).split("</tr>"))
        if cells
    }
    assert rows == {"toy (width=8)": ["a", "a"], "toy (width=12)": ["a", "a"], "toy (width=16)": ["b", "b"]}
    close = re.search(r"<h3>Seeds to separate close models</h3>.*?<tbody>(.*?)</tbody>", dom, re.S)
    assert close is not None and "toy (width=8) vs toy (width=12)" in close.group(1)


def test_rank_groups_with_one_seed_per_model_say_that_no_test_is_possible(tmp_path: Path) -> None:
    write_run(tmp_path / "w8", lambda s: 1.0, width=8, seeds=[0])
    write_run(tmp_path / "w16", lambda s: 1.05, width=16, seeds=[0])
    leaderboard = report.build_leaderboard([tmp_path])
    [(title, legend, headers, rows)] = rank_group_tables(leaderboard, "digits")
    assert title == "Rank groups" and legend == ONE_SEED_LEGEND and headers == ["model", "bpd", "nll"]
    assert rows == [["toy (width=8)", "–", "–"], ["toy (width=16)", "–", "–"]]


def _fid(level: float) -> Callable[[int], dict[str, float]]:
    """fid of five evaluations per seed: their mean (seed-dependent), spread 0.5 and count (the agreed columns)."""
    return lambda seed: {"fid": level + NOISE[seed], "fid_eval_std": 0.5, "fid_eval_n": 5}


def test_evaluation_repeats_show_both_spreads_and_with_one_seed_test_the_evaluations_only(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_run(tmp_path / "a", lambda s: 1.0, extra=_fid(40.0))
    write_run(tmp_path / "b", lambda s: 1.0, extra=_fid(43.0))
    _, out, _ = compare(capsys, str(tmp_path / "a"), str(tmp_path / "b"), "--metrics", "fid")
    # the seeds' variance of NOISE is 0.217; the evaluation variance of a mean of 5 is 0.25 / 5 = 0.05: 23% of it
    assert "fid: A evaluation sd 0.5 over 5 repeats, 23% of its seeds' variance" in out
    assert "the spread over seeds already contains this noise" in out and "A better" in out

    write_run(tmp_path / "a1", lambda s: 1.0, extra=_fid(40.0), seeds=[0])
    write_run(tmp_path / "b1", lambda s: 1.0, extra=_fid(43.0), seeds=[0])
    _, out, _ = compare(
        capsys, str(tmp_path / "a1"), str(tmp_path / "b1"), "--metrics", "fid", "--json", str(tmp_path / "e.json")
    )
    row = comparisons(tmp_path / "e.json")["fid"]
    assert row["test"] == "Welch t, evaluations only" and row["significant"]
    assert row["verdict"] == "A better (evaluations only: not the training)"
    assert "it says these two trained models' evaluations differ, not that their trainings do" in out

    # trained with other thread counts, one seed each: the evaluations would differ anyway, so no test is made
    write_run(tmp_path / "b2", lambda s: 1.0, extra=_fid(43.0), seeds=[0], threads=2)
    _, out, _ = compare(
        capsys, str(tmp_path / "a1"), str(tmp_path / "b2"), "--metrics", "fid", "--json", str(tmp_path / "t.json")
    )
    row = comparisons(tmp_path / "t.json")["fid"]
    assert row["test"] == "" and row["verdict"] == "no test: one seed per side, trained with other torch thread counts"
    assert "With one seed a side, no test is made." in out


def test_a_bound_that_loses_to_an_exact_value_does_not_rank_the_likelihoods(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_run(tmp_path / "bound", lambda s: 1.05 + 0.01 * NOISE[s], kind="importance-weighted bound", model="vae")
    write_run(tmp_path / "exact", lambda s: 1.0 + 0.01 * NOISE[s], kind="exact", model="pixelcnn")
    _, out, _ = compare(capsys, str(tmp_path), "--models", "vae,pixelcnn", "--metrics", "nll")
    assert "B better" in out
    assert "nll: A's is a bound, B's exact; the verdict compares the numbers, and A's true value may be" in out
    _, out, _ = compare(capsys, str(tmp_path), "--models", "pixelcnn,vae", "--metrics", "nll")
    assert "nll: A's is exact, B's a bound; the verdict" in out  # the exact side's value is its true one
