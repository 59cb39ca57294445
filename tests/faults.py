"""Fault injection shared by the store's tests and scripts/fault_injection.py: damaged files and kill -9.

Every damaged state is one kind of file (a checkpoint's tensors or sidecar, a cell record, the cached
classifier, reference features or statistics, or a cache sidecar) damaged one way (bytes flipped, truncated,
emptied, garbled, a JSON list, not UTF-8). A run after the damage must recover: set the file aside as
``.corrupt``, compute it again, give the numbers of an undamaged run, and exit normally.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

import genbench
from genbench import cli
from genbench.store.layout import RunDirectory, StoredRecords, read_records
from genbench.toolkit.files import CHECKSUM_FIELD

# ------------------------------------------------------------------------------------------- damage


def tensor_data_offset(path: Path) -> int:
    """Where a safetensors file's tensor bytes start: after the 8-byte header length and the JSON header."""
    return 8 + int.from_bytes(path.read_bytes()[:8], "little")


def flip_tensor_bytes(path: Path) -> None:
    """Invert 16 bytes in the middle of the tensor data: the file still parses, only the numbers change."""
    data = bytearray(path.read_bytes())
    start = tensor_data_offset(path)
    middle = start + (len(data) - start) // 2
    for index in range(middle, min(middle + 16, len(data))):
        data[index] ^= 0xFF
    path.write_bytes(bytes(data))


def flip_header_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for index in range(8, 24):
        data[index] ^= 0x55
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def garble_json(path: Path) -> None:
    path.write_text('{"model": "vae", "seed": ')


def json_list(path: Path) -> None:
    path.write_text("[1, 2, 3]\n")


def not_utf8(path: Path) -> None:
    path.write_bytes(b"\xff\xfe\x00\x81 not text")


def change_a_digit(path: Path) -> None:
    """Change one digit of a number in a JSON file: still valid JSON of the right shape, a wrong value."""
    text = path.read_text()
    data = json.loads(text)
    digits = [i for i, char in enumerate(text) if char in "123456789" and i > text.index(":")]
    # Avoid the checksum's own hex digits: the damage must be in the content.
    checksum = text.index(data[CHECKSUM_FIELD]) if CHECKSUM_FIELD in data else len(text)
    index = next(i for i in digits if not checksum <= i < checksum + 64)
    changed = "1" if text[index] == "9" else str(int(text[index]) + 1)
    path.write_text(text[:index] + changed + text[index + 1 :])


def remove(path: Path) -> None:
    path.unlink()


@dataclass(frozen=True)
class DamagedState:
    """One kind of file damaged one way; ``target`` is a glob under the results folder."""

    name: str
    target: str
    damage: Callable[[Path], None]
    #: The file that must end up as .corrupt (the damaged one, or its sidecar when the damage removed it).
    corrupt: str = ""

    def apply(self, results: Path) -> Path:
        path = sorted(results.glob(self.target))[0]
        self.damage(path)
        return path


CHECKPOINT = "*/checkpoints/*.safetensors"
CHECKPOINT_SIDECAR = "*/checkpoints/*.json"
RECORD = "*/cells/*.json"
CLASSIFIER = ".cache/feature_extractors/classifier/*.safetensors"
CLASSIFIER_SIDECAR = ".cache/feature_extractors/classifier/*.json"
FEATURES = ".cache/reference_features/*.safetensors"
FEATURES_SIDECAR = ".cache/reference_features/*.json"
STATISTICS = ".cache/reference_statistics/*.safetensors"
STATISTICS_SIDECAR = ".cache/reference_statistics/*.json"

DAMAGED_STATES = [
    DamagedState("checkpoint: tensor bytes flipped", CHECKPOINT, flip_tensor_bytes),
    DamagedState("checkpoint: truncated", CHECKPOINT, truncate),
    DamagedState("checkpoint: emptied", CHECKPOINT, empty),
    DamagedState("checkpoint: header garbled", CHECKPOINT, flip_header_bytes),
    DamagedState("checkpoint: tensors file deleted", CHECKPOINT, remove, corrupt=CHECKPOINT_SIDECAR),
    DamagedState("checkpoint sidecar: garbled JSON", CHECKPOINT_SIDECAR, garble_json),
    DamagedState("checkpoint sidecar: a JSON list", CHECKPOINT_SIDECAR, json_list),
    DamagedState("checkpoint sidecar: truncated", CHECKPOINT_SIDECAR, truncate),
    DamagedState("checkpoint sidecar: a digit changed", CHECKPOINT_SIDECAR, change_a_digit),
    DamagedState("cell record: a digit changed", RECORD, change_a_digit),
    DamagedState("cell record: truncated", RECORD, truncate),
    DamagedState("cell record: a JSON list", RECORD, json_list),
    DamagedState("cell record: not UTF-8", RECORD, not_utf8),
    DamagedState("cell record: emptied", RECORD, empty),
    DamagedState("cached classifier: tensor bytes flipped", CLASSIFIER, flip_tensor_bytes),
    DamagedState("cached classifier: truncated", CLASSIFIER, truncate),
    DamagedState("cached classifier sidecar: garbled JSON", CLASSIFIER_SIDECAR, garble_json),
    DamagedState("cached features: tensor bytes flipped", FEATURES, flip_tensor_bytes),
    DamagedState("cached features: truncated", FEATURES, truncate),
    DamagedState("cached features sidecar: a digit changed", FEATURES_SIDECAR, change_a_digit),
    DamagedState("cached statistics: tensor bytes flipped", STATISTICS, flip_tensor_bytes),
    DamagedState("cached statistics: truncated", STATISTICS, truncate),
    DamagedState("cached statistics sidecar: a JSON list", STATISTICS_SIDECAR, json_list),
]

#: A small grid whose every number is deterministic: FID (reads the cached statistics) and KID (the cached
#: features) with the domain classifier (trained briefly: the cache does not care how long) on 100 samples.
DAMAGE_GRID: dict[str, Any] = {
    "models": ["independent"],
    "metrics": ["nll", "bpd", "fid", "kid"],
    "seeds": [0],
    "metric_options": {"fid": {"n_samples": 100}, "kid": {"n_samples": 100, "subsets": 10}},
}
DETERMINISTIC_COLUMNS = ["model", "seed", "status", "nll", "bpd", "fd_classifier", "kid", "kid_std"]
CLASSIFIER_STEPS = 30


def short_classifier() -> Callable[[], Any]:
    """A stand-in for the FID plugin's ClassifierConfig with few steps: retraining costs a fraction of a second."""
    from genbench_fid.feature_extractor_classifier import ClassifierConfig

    return functools.partial(ClassifierConfig, steps=CLASSIFIER_STEPS)


def run_damage_grid(results: Path, name: str = "grid") -> pd.DataFrame:
    return genbench.run(results_dir=results, name=name, **DAMAGE_GRID)


def recover(state: DamagedState, pristine: Path, work: Path) -> tuple[pd.DataFrame, Path]:
    """Copy the pristine results folder, damage one file, and run again as a user would after such damage.

    A damaged record is met by rerunning the same command. A checkpoint is only read by a cell that has no
    record yet: its records are removed first, as when a run was killed after saving the checkpoint. Cached
    files are shared by the runs of a results folder: a second run of another name reads them.
    """
    results = Path(shutil.copytree(pristine, work))
    damaged = state.apply(results)
    if state.target in (CHECKPOINT, CHECKPOINT_SIDECAR):
        for record in (results / "grid" / "cells").glob("*.json"):
            record.unlink()
    name = "second" if state.target.startswith(".cache") else "grid"
    frame = run_damage_grid(results, name)
    corrupt = sorted(results.glob(state.corrupt)) if state.corrupt else [damaged]
    return frame, corrupt[0].with_name(corrupt[0].name + ".corrupt")


def same_numbers(frame: pd.DataFrame, reference: pd.DataFrame) -> bool:
    columns = [c for c in DETERMINISTIC_COLUMNS if c in reference.columns]
    return frame[columns].reset_index(drop=True).equals(reference[columns].reset_index(drop=True))


# -------------------------------------------------------------------------------------------- kill -9

#: The grid of the kill trials: two models, two seeds, one epoch, cheap metrics.
KILL_ARGV = [
    "run",
    "--models",
    "independent,vae",
    "--seeds",
    "0,1",
    "--dataset",
    "digits",
    "--epochs",
    "1",
    "--metrics",
    "nll,bpd,sample_time",
]
#: A cheaper grid for the fast tier's single trial: the baseline alone, three seeds.
CHEAP_KILL_ARGV = [*KILL_ARGV[:2], "independent", "--seeds", "0,1,2", *KILL_ARGV[5:]]
KILL_COLUMNS = ["model", "seed", "status", "nll", "bpd", "cell_id"]


def forked_cli(argv: Sequence[str], log: Path) -> int:
    """Run ``genbench`` with ``argv`` in a forked child (this process's imports, so no start-up cost); its pid."""
    import matplotlib.figure  # noqa: F401  (imported once here rather than by every child's leaderboard)
    import safetensors.torch  # noqa: F401

    pid = os.fork()
    if pid == 0:  # the child: never return into the caller (a test runner) and never run its clean-up
        code = 99
        try:
            descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(descriptor, 1)
            os.dup2(descriptor, 2)
            code = cli.main(list(argv))
        finally:
            os._exit(code)
    return pid


def wait_exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def start_cli(argv: Sequence[str], log: Path, fresh: bool) -> tuple[int, Callable[[], int]]:
    """A forked child (``fresh`` False) or a new ``python -m genbench.cli`` process: its pid and how to await it."""
    if not fresh:
        pid = forked_cli(argv, log)
        return pid, lambda: wait_exit_code(pid)
    with log.open("w") as stream:
        process = subprocess.Popen([sys.executable, "-m", "genbench.cli", *argv], stdout=stream, stderr=stream)
    return process.pid, process.wait


@dataclass
class KillTrial:
    delay: float
    #: Records on disk right after the kill, and how many of them were damaged (must be 0).
    records_before: int
    damaged_before: int
    #: Records present after the kill that the resumed run lost or rewrote (must be 0).
    records_lost: int
    exit_code: int
    identical: bool
    #: write_atomic temporaries left after the resumed run (must be 0: it removes those of the killed one).
    temporaries_left: int


def stored(run_dir: Path) -> StoredRecords:
    directory = RunDirectory(run_dir)
    info = json.loads(directory.run_json.read_text()) if directory.run_json.is_file() else {}
    return read_records(directory, info.get("cells", []))


def record_bytes(run_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((run_dir / "cells").glob("*.json"))}


def kill_trial(
    results: Path,
    delay: float,
    reference: pd.DataFrame,
    log: Path,
    grid: Sequence[str] = KILL_ARGV,
    fresh: bool = False,
) -> KillTrial:
    """Start the grid, SIGKILL it ``delay`` seconds after it starts writing, resume it, and compare."""
    argv = [*grid, "--results-dir", str(results), "--name", "grid"]
    run_dir = results / "grid"
    pid, wait = start_cli(argv, log, fresh)
    wait_for_work(run_dir)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    wait()
    before = stored(run_dir) if (run_dir / "run.json").exists() else StoredRecords([], [], {})
    kept = record_bytes(run_dir) if run_dir.exists() else {}
    exit_code = start_cli(argv, log, fresh)[1]()
    after = record_bytes(run_dir)
    lost = sum(1 for name, content in kept.items() if after.get(name) != content)
    frame = genbench.load_results(run_dir)
    identical = frame[KILL_COLUMNS].reset_index(drop=True).equals(reference[KILL_COLUMNS].reset_index(drop=True))
    left = len(list(results.rglob(".*.tmp")))
    return KillTrial(delay, len(before.records), len(before.damaged), lost, exit_code, identical, left)


def wait_for_work(run_dir: Path) -> None:
    """The grid's work starts once run.json exists (after start-up and data loading); delays count from there."""
    start = time.monotonic()
    while not (run_dir / "run.json").exists() and time.monotonic() - start < 300:
        time.sleep(0.005)


def reference_run(
    results: Path, log: Path, grid: Sequence[str] = KILL_ARGV, fresh: bool = False
) -> tuple[pd.DataFrame, float]:
    """The uninterrupted grid, and how long its work took (from run.json's appearance to the exit)."""
    run_dir = results / "grid"
    _, wait = start_cli([*grid, "--results-dir", str(results), "--name", "grid"], log, fresh)
    wait_for_work(run_dir)
    started = time.monotonic()
    code = wait()
    if code != 0:
        raise RuntimeError(f"the reference run exited {code}: {log.read_text()[-2000:]}")
    return genbench.load_results(run_dir), time.monotonic() - started


def kill_trials(
    folder: Path, trials: int, seed: int = 0, grid: Sequence[str] = KILL_ARGV, fresh: bool = False
) -> list[KillTrial]:
    """``trials`` kill -9 trials at delays drawn uniformly over the uninterrupted run's duration."""
    folder.mkdir(parents=True, exist_ok=True)
    reference, duration = reference_run(folder / "reference", folder / "reference.log", grid, fresh)
    draw = random.Random(seed)
    trials_done = []
    for i in range(trials):
        delay = draw.uniform(0, duration)
        trials_done.append(kill_trial(folder / f"trial{i}", delay, reference, folder / f"trial{i}.log", grid, fresh))
    return trials_done
