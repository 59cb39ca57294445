"""The committed reference leaderboards are what the current ``genbench report`` renders from their records.

A golden-value test: a change to the report (or to how records are read) that changes a committed page shows
here, and the pages are rendered again on purpose (results/reference/README.md says how).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import REPO
from genbench.cli import main

REFERENCE = REPO / "results" / "reference"
PAGES = ("leaderboard.md", "leaderboard.html")


@pytest.mark.parametrize(
    ("runs", "out"),
    [(["digits"], "digits"), (["mnist"], "mnist"), (["mnist-pixelcnn"], "mnist-pixelcnn"), (["digits", "mnist"], ".")],
    ids=["digits", "mnist", "mnist-pixelcnn", "digits+mnist"],
)
def test_reference_leaderboards_render_unchanged(
    runs: list[str], out: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pages name the run folders by the paths given, so they are rendered from the same relative paths.
    shutil.copytree(REFERENCE, tmp_path / "results" / "reference")
    monkeypatch.chdir(tmp_path)
    folder = Path("results/reference") / out
    for page in PAGES:
        (folder / page).unlink()
    assert main(["report", *(f"results/reference/{run}" for run in runs), "--out", str(folder)]) == 0
    for page in PAGES:
        assert (folder / page).read_bytes() == (REFERENCE / out / page).read_bytes(), page
