"""Writing leaderboards: the files (atomically) and ``genbench report``."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

from genbench.report.html import render_html
from genbench.report.leaderboard import Leaderboard, build_leaderboard
from genbench.report.markdown import render_markdown
from genbench.report.terminal import format_leaderboard
from genbench.store.layout import check_writable_folder
from genbench.toolkit.files import write_atomic
from genbench.toolkit.text import terminal_safe

MARKDOWN_NAME, HTML_NAME = "leaderboard.md", "leaderboard.html"


def write_leaderboard(leaderboard: Leaderboard, out_dir: Path) -> tuple[Path, Path]:
    """Write leaderboard.md and leaderboard.html into ``out_dir`` (atomically) and return their paths."""
    markdown, page = out_dir / MARKDOWN_NAME, out_dir / HTML_NAME
    for path, text in ((markdown, render_markdown(leaderboard)), (page, render_html(leaderboard))):
        write_atomic(path, functools.partial(_write_utf8, text=text))
    return markdown, page


def _write_utf8(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def write_run_leaderboard(run_dir: Path) -> tuple[Path, Path]:
    """The leaderboard of one run, written into the run directory; ``genbench run`` calls this at its end."""
    return write_leaderboard(build_leaderboard([run_dir]), run_dir)


def default_out_dir(paths: Sequence[Path]) -> Path:
    """Where ``genbench report`` writes without --out: into the one path it was given (a run directory, or a
    folder of runs such as results/), else into the deepest folder that holds every path given."""
    folders = [path.parent if path.is_file() else path for path in paths]
    if len(folders) == 1:
        return folders[0]
    return Path(os.path.commonpath([folder.resolve() for folder in folders]))


def report_command(paths: Sequence[Path], out_dir: Path | None = None) -> int:
    """``genbench report PATH... [--out DIR]``: print the leaderboard and write its Markdown and HTML."""
    paths = [Path(path) for path in paths]
    if out_dir is not None:
        check_writable_folder(out_dir, "--out")
    leaderboard = build_leaderboard(paths)
    markdown, page = write_leaderboard(leaderboard, out_dir if out_dir is not None else default_out_dir(paths))
    print(terminal_safe(format_leaderboard(leaderboard), one_line=False))
    print(terminal_safe(f"\nleaderboard: {markdown}\n             {page}", one_line=False))
    return 0
