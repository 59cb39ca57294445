"""leaderboard.html in a real browser (headless Chromium): rows, decoded images, sorting, escaping, a real picture.

Skipped where no Chromium is installed (Debian: apt-get install chromium); CI installs it.
"""

from __future__ import annotations

import html
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


#: The quality columns of a default run (``genbench run --models vae,gan,pixelcnn``) beyond the baseline's nll, bpd
#: and sample_time, with values of their size: with train_time they make the table of twelve columns that ran off
#: the right edge of a laptop's screen.
DEFAULT_RUN_COLUMNS = {
    "fid": ("distance²", False, "", 40.42),
    "is": ("score", True, "", 7.591),
    "is_std": ("score", False, "spread over splits", 0.477),
    "kid": ("MMD²", False, "", 106.0),
    "kid_std": ("MMD²", False, "spread over subsets", 54.57),
    "precision": ("fraction", True, "", 0.7354),
    "recall": ("fraction", True, "", 0.9304),
}
#: Appended to the page under test only: measures the leaderboard table's box at the window's width, scrolls it to
#: its right end, and leaves what it found on body[data-layout] for --dump-dom.
MEASURE = """<script>
window.addEventListener("load", () => {
  const box = document.querySelector(".table-scroll"), table = box.querySelector("table");
  const header = table.rows[0].cells, first = table.rows[1].cells[0], last = header[header.length - 1];
  const firstLeft = first.getBoundingClientRect().left;
  box.scrollLeft = box.scrollWidth;
  const boxRect = box.getBoundingClientRect(), lastRect = last.getBoundingClientRect();
  document.body.dataset.layout = JSON.stringify({
    viewport: document.documentElement.clientWidth, page: document.documentElement.scrollWidth,
    boxLeft: boxRect.left, boxRight: boxRect.right, lastLeft: lastRect.left, lastRight: lastRect.right,
    lastText: last.textContent, scrolled: box.scrollLeft, overflowX: getComputedStyle(box).overflowX,
    firstLeft: firstLeft, firstLeftScrolled: first.getBoundingClientRect().left,
  });
});
</script></body>"""


@pytest.fixture(scope="module")
def wide_page(page: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The independent baseline's run given the columns of a default run, as its leaderboard page."""
    run = next(path.parent for path in page.parent.glob("*/run.json") if "worse" not in path.parent.name)
    wide = Path(shutil.copytree(run, tmp_path_factory.mktemp("wide") / "run"))
    info = json.loads((wide / "run.json").read_text())
    for name, (unit, higher, description, _) in DEFAULT_RUN_COLUMNS.items():
        info["columns"].append(name)
        info["column_specs"][name] = {
            "name": name,
            "unit": unit,
            "higher_is_better": higher,
            "description": description,
        }
        info["column_metrics"][name] = name.removesuffix("_std")
    (wide / "run.json").write_text(json.dumps(info))
    for path in (wide / "cells").glob("*.json"):
        cell = json.loads(path.read_text())
        cell["metrics"].update({name: value for name, (*_, value) in DEFAULT_RUN_COLUMNS.items()})
        write_checked_json(path, cell)
    _, html_path = report.write_leaderboard(report.build_leaderboard([wide]), wide)
    return html_path


@pytest.mark.slow  # a Chromium start, about 4 s
@pytest.mark.parametrize("width", [1400, 800])
def test_the_last_column_is_reachable_at_laptop_width(
    browser: ModuleType, wide_page: Path, tmp_path: Path, width: int
) -> None:
    measured = tmp_path / "leaderboard.html"
    measured.write_text(wide_page.read_text(encoding="utf-8").replace("</body>", MEASURE), encoding="utf-8")
    url = measured.resolve().as_uri()
    dom = browser.run_chromium(url, "--virtual-time-budget=5000", f"--window-size={width},900", "--dump-dom").stdout
    found = re.search(r"data-layout=\"([^\"]*)\"", dom)
    assert found is not None, "the measuring script did not run"
    layout = json.loads(html.unescape(found.group(1)))
    assert layout["viewport"] == width
    assert layout["lastText"] == "failed"  # is_std and kid_std are no columns of their own
    # The page itself does not scroll sideways: the table's box stays inside the window...
    assert layout["page"] <= width and layout["boxRight"] <= width
    # ...and its last column is in sight once the box is scrolled to its end (at once where the table fits).
    assert layout["boxLeft"] - 1 <= layout["lastLeft"] and layout["lastRight"] <= layout["boxRight"] + 1
    if layout["scrolled"] > 0:  # the table is wider than its box: it scrolls there, the model column fixed
        assert layout["overflowX"] == "auto"
        assert abs(layout["firstLeftScrolled"] - layout["firstLeft"]) < 1


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
