"""Wall time of a grid of 8 digits cells run serially and by the ``local`` executor, against one cell alone.

    python3 benchmarks/executors.py --device cuda --out DIR       # local --cells-per-gpu 4 on the GPU(s)
    python3 benchmarks/executors.py --device cpu --out DIR        # local --jobs 2 on the CPU
    python3 benchmarks/executors.py --device cpu --quick          # a smoke test of the script (seconds)

The 8 cells are the VAE with its default config and every default metric on the digits, seeds 0-7 (``--models``
changes the model; several models share the 8 cells evenly, e.g. --models vae,gan,pixelcnn,independent
gives each 2 seeds). Identical cells make "8 cells
against one" a clean question: how much of the device does one small cell leave idle? The goal on a GPU is 8
cells in at most 1.5x the time of one.

Each measurement is the wall time of one ``genbench run`` in a subprocess, Python's and torch's start-up and the
workers' included, because that is what a user waits for. An untimed warm-up run first fills the cache that
every run shares (the digits classifier of the FID/KID/IS/precision-recall metrics and its reference statistics,
under ``--out``/results/.cache), so no timed run pays for it. Each timed run has a run folder of its own, so no
cell is reused. The script also checks that the local run's metric values equal the serial run's, cell by cell.
Nothing is downloaded; the digits ship with scikit-learn.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import genbench

#: The 1-minute load average when the script started: on a shared machine, how much else was running.
LOAD_AT_START = f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "unknown"
#: Columns that measure time: they differ from run to run and are not compared between executors.
TIMING_COLUMNS = {"train_time", "eval_time", "sample_time"}


@dataclass
class Timing:
    label: str
    executor: str
    cells: int
    seconds: float


def main() -> int:
    args = parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="genbench-executors-"))
    results = out / "results"
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    if args.cells % len(models):
        sys.exit(f"--cells {args.cells} cannot be shared evenly by {len(models)} models")
    seeds = args.cells // len(models)
    base = ["--device", args.device, "--results-dir", str(results)]
    if args.quick:  # the baseline, one epoch, one cheap metric: the machinery in seconds, not a measurement
        base += ["--epochs", "1", "--metrics", "bpd"]
    parallel = ["--executor", "local"] + (
        ["--cells-per-gpu", str(args.cells_per_gpu)] if args.device == "cuda" else ["--jobs", str(args.jobs)]
    )
    if not args.quick:
        run_genbench(out, "warmup", ["--models", models[0], "--seeds", "0", *base])
    timings = [
        Timing("one cell", "serial", 1, run_genbench(out, "one", ["--models", models[0], "--seeds", "0", *base])),
        Timing(f"{args.cells} cells", "serial", args.cells, run_grid(out, "serial", models, seeds, base)),
        Timing(
            f"{args.cells} cells",
            " ".join(parallel),
            args.cells,
            run_grid(out, "local", models, seeds, base + parallel),
        ),
    ]
    table = report(args, timings, compare(results / "serial", results / "local"))
    print(table)
    (out / "executors.md").write_text(table + "\n", encoding="utf-8")
    print(f"\nrun folders and logs: {out}", file=sys.stderr)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="folder for the run folders, logs and executors.md (default: a temp)")
    parser.add_argument("--models", default="vae", help="comma-separated models sharing the cells (default: vae)")
    parser.add_argument("--cells", type=int, default=8, help="cells in the grid (default: 8)")
    parser.add_argument("--cells-per-gpu", type=int, default=4, help="local's --cells-per-gpu on cuda (default: 4)")
    parser.add_argument("--jobs", type=int, default=2, help="local's --jobs on the CPU (default: 2)")
    parser.add_argument("--quick", action="store_true", help="the independent model, 1 epoch, bpd: a smoke test")
    args = parser.parse_args()
    if args.quick and args.models == "vae":
        args.models = "independent"
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but PyTorch sees no CUDA GPU")
    return args


def run_grid(out: Path, name: str, models: list[str], seeds: int, base: list[str]) -> float:
    """Seconds of one `genbench run` of every model with seeds 0..seeds-1."""
    return run_genbench(out, name, ["--models", ",".join(models), "--seeds", ",".join(map(str, range(seeds))), *base])


def run_genbench(out: Path, name: str, args: list[str]) -> float:
    """Seconds of wall time of `genbench run --name NAME ARGS` in a subprocess; its output goes to a log file."""
    command = [sys.executable, "-m", "genbench.cli", "run", "--name", name, *args]
    log = out / f"{name}.log"
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as stream:
        result = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed with exit code {result.returncode}; see {log}")
    return seconds


def compare(serial: Path, local: Path) -> str:
    """Whether both runs gave the same metric values for every cell, or the largest relative difference."""
    first, second = genbench.load_results(serial), genbench.load_results(local)
    first, second = first.set_index("cell_id").sort_index(), second.set_index("cell_id").sort_index()
    if list(first.index) != list(second.index):
        return "different cells (a bug)"
    columns = [c for c in first.columns if first[c].dtype.kind == "f" and c not in TIMING_COLUMNS]
    largest = 0.0
    for column in columns:
        for a, b in zip(first[column], second[column], strict=True):
            if math.isnan(a) and math.isnan(b):
                continue
            largest = max(largest, abs(a - b) / max(abs(a), abs(b), 1e-300))
    if largest == 0.0:
        return f"identical ({len(columns)} metric columns x {len(first)} cells)"
    return f"largest relative difference {largest:.2e} ({len(columns)} metric columns x {len(first)} cells)"


def report(args: argparse.Namespace, timings: list[Timing], agreement: str) -> str:
    one = timings[0].seconds
    serial, local = timings[1].seconds, timings[2].seconds
    lines = [
        f"device: {device_name(args.device)}; {os.cpu_count()} CPU cores; torch {torch.__version__}; "
        f"genbench {genbench.__version__}; Python {platform.python_version()}; load average at the start "
        f"{LOAD_AT_START}",
        f"date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}; models: {args.models}"
        + ("; --quick (1 epoch, bpd only: checks the script, measures nothing)" if args.quick else ""),
        "",
        "| run | executor | cells | wall time (s) | per cell (s) | x one cell |",
        "|---|---|---|---|---|---|",
    ]
    for timing in timings:
        lines.append(
            f"| {timing.label} | {timing.executor} | {timing.cells} | {timing.seconds:.1f} | "
            f"{timing.seconds / timing.cells:.2f} | {timing.seconds / one:.2f} |"
        )
    goal = "met" if local <= 1.5 * one else "not met"
    lines += [
        "",
        f"speed-up of local over serial: {serial / local:.2f}x; local ran {args.cells} cells in {local / one:.2f}x "
        f"the time of one (goal on a GPU: at most 1.5x, {goal})",
        f"metric values, local against serial: {agreement}",
    ]
    return "\n".join(lines)


def device_name(device: str) -> str:
    if device == "cuda":
        count = torch.cuda.device_count()
        return f"{count} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({platform.processor() or platform.machine()})"


if __name__ == "__main__":
    sys.exit(main())
