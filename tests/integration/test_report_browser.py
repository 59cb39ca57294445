"""leaderboard.html in a real browser (headless Chromium): rows, decoded images, sorting, escaping, a real picture.

Skipped where no Chromium is installed (Debian: apt-get install chromium); CI installs it.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image, ImageStat

import genbench
from conftest import REPO
from genbench import report
from genbench.toolkit.files import write_checked_json

HOSTILE = "<script>document.title='owned'</script>"


@pytest.fixture(scope="module")
def browser() -> ModuleType:
    """The helpers of scripts/screenshot_leaderboard.py, which drive Chromium for the README screenshot too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(REPO / "scripts"))
        helpers = importlib.import_module("screenshot_leaderboard")
    if helpers.find_chromium() is None:
        pytest.skip("no chromium binary on PATH; apt-get install chromium to run the browser tests")
    return helpers


@pytest.fixture(scope="module")
def page(browser: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A leaderboard of two models: the independent baseline, and a copy renamed to a script tag and made worse."""
    results = tmp_path_factory.mktemp("results")
    frame = genbench.run(["independent"], metrics=["nll", "bpd", "sample_time"], seeds=[0, 1, 2], results_dir=results)
    worse = Path(shutil.copytree(frame.attrs["run_dir"], results / "worse"))
    for path in (worse / "cells").glob("*.json"):
        cell = json.loads(path.read_text())
        cell.update(model=HOSTILE, metrics={key: value * 2 for key, value in cell["metrics"].items()})
        write_checked_json(path, cell)  # an edited record, not a damaged one: it carries a valid checksum
    _, html_path = report.write_leaderboard(report.build_leaderboard([results]), results)
    return html_path


def leaderboard_rows(dom: str) -> list[str]:
    """The model names of the leaderboard table's rows, in the order the browser shows them."""
    body = re.search(r'<table class="leaderboard sortable">.*?<tbody>(.*?)</tbody>', dom, re.S)
    assert body is not None, dom[:2000]
    return re.findall(r"<tr><td[^>]*>(.*?)</td>", body.group(1))


def test_rows_images_and_plot_render(browser: ModuleType, page: Path) -> None:
    dom = browser.dump_dom(page)
    assert leaderboard_rows(dom) == ["independent", "&lt;script&gt;document.title='owned'&lt;/script&gt;"]
    images = re.findall(r'<img class="(\w+)"', dom)
    # two models x (samples, real images, curves) and one quality-versus-speed plot
    assert sorted(images) == sorted(["samples", "real", "curve"] * 2 + ["plot"])
    decoded = re.search(r'<body data-images="(\d+)/(\d+)"', dom)
    assert decoded is not None, "the page's load handler did not run"
    assert decoded.group(1) == decoded.group(2) == str(len(images))
    assert "<title>genbench leaderboard</title>" in dom  # the hostile model name did not run


def test_sorting_by_a_column(browser: ModuleType, page: Path) -> None:
    dom = browser.dump_dom(page, "#sort=-bpd")
    assert leaderboard_rows(dom)[0].startswith("&lt;script&gt;")  # the worse model has the larger bpd
    assert re.search(r'<th title="click to sort" data-order="desc">bpd', dom)


def test_screenshot_is_not_blank(browser: ModuleType, page: Path, tmp_path: Path) -> None:
    png = browser.screenshot(page, tmp_path / "leaderboard.png", 1280, 2000)
    with Image.open(png) as image:
        gray = image.convert("L")
    assert gray.size == (1280, 2000)
    not_white = sum(gray.histogram()[:240]) / (gray.width * gray.height)
    assert not_white > 0.05, f"only {not_white:.1%} of the screenshot is not white"
    assert ImageStat.Stat(gray).stddev[0] > 20


@pytest.fixture(scope="module")
def published_page(page: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The independent baseline's run as if made with a suite of two published rows beside it: one whose protocol
    it followed, one whose model it did not (``<b>`` in its name, which must stay text)."""
    run = next(path.parent for path in page.parent.glob("*/run.json") if "worse" not in path.parent.name)
    copied = Path(shutil.copytree(run, tmp_path_factory.mktemp("published") / "run"))
    info = json.loads((copied / "run.json").read_text())
    followed = {
        "model": "Baseline",
        "beside": "independent",
        "metric": "nll",
        "value": 50.0,
        "unit": "nats",
        "source": "A. Author (2020); Table 1",
        "data": {"dataset": info["request"]["dataset"]},
    }
    other = {**followed, "model": "Baseline <b>smoothed</b>", "model_config": {"pseudocount": 1000}}
    info["request"]["suite"] = {"name": "made-up", "version": 1, "reference": {"a": followed, "b": other}}
    (copied / "run.json").write_text(json.dumps(info))
    _, html_path = report.write_leaderboard(report.build_leaderboard([copied]), copied)
    return html_path


@pytest.mark.slow  # a Chromium start, about 4 s
def test_published_numbers_show_whether_they_are_comparable(browser: ModuleType, published_page: Path) -> None:
    dom = browser.dump_dom(published_page)
    assert "Published numbers beside genbench" in dom
    rows = re.findall(r"<tr>(<td[^>]*>Baseline.*?)</tr>", dom, re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    assert len(cells) == 2 and cells[0][0] == "Baseline" and cells[1][0] == "Baseline &lt;b&gt;smoothed&lt;/b&gt;"
    assert [row[4] for row in cells] == ["independent", "independent"]  # the genbench model beside each
    assert cells[0][-1] == "yes"
    assert cells[1][-1] == "no: pseudocount: 1.0 (published: 1,000)"
