"""Screenshot a leaderboard page in headless Chromium, e.g. docs/leaderboard.png for the README.

    python scripts/screenshot_leaderboard.py results/digits-independent+vae+gan+pixelcnn --out docs/leaderboard.png

PATH is a run directory or a folder of them (as for ``genbench report``); its leaderboard.html is written first.
The browser test (tests/integration/test_report_browser.py) drives Chromium through the same functions.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageChops

from genbench.report import build_leaderboard, default_out_dir, write_leaderboard

#: Headless, offline and quiet: no sandbox (containers run as root), no GPU, no background network or updates.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    return next((path for path in map(shutil.which, CANDIDATES) if path), None)


def run_chromium(url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """One headless Chromium call with a throwaway profile, so that runs never share state."""
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError(f"no Chromium found (looked for {', '.join(CANDIDATES)}); apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)


def dump_dom(page: Path, fragment: str = "") -> str:
    """The page's DOM after its scripts ran (the virtual time budget lets the load event fire first)."""
    return run_chromium(page.resolve().as_uri() + fragment, "--virtual-time-budget=5000", "--dump-dom").stdout


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 2000) -> Path:
    png.parent.mkdir(parents=True, exist_ok=True)
    url = page.resolve().as_uri()
    run_chromium(url, "--virtual-time-budget=5000", f"--screenshot={png.resolve()}", f"--window-size={width},{height}")
    return png


def crop_to_content(png: Path, margin: int = 24) -> None:
    """Trim the white space below (and beside) the page's content, keeping a margin."""
    with Image.open(png) as image:
        rgb = image.convert("RGB")
    box = ImageChops.difference(rgb, Image.new("RGB", rgb.size, "white")).getbbox()
    if box is not None:
        left, _, right, bottom = box  # the top stays: the page's own margin is part of its look
        width, height = rgb.size
        rgb.crop((max(left - margin, 0), 0, min(right + margin, width), min(bottom + margin, height))).save(png)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="run directories or folders of them")
    parser.add_argument("--out", type=Path, default=Path("docs/leaderboard.png"), help="the PNG to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000, help="the window height: what is below is cut off")
    args = parser.parse_args(argv)
    _, page = write_leaderboard(build_leaderboard(args.paths), default_out_dir(args.paths))
    crop_to_content(screenshot(page, args.out, args.width, args.height))
    print(f"{args.out} from {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
