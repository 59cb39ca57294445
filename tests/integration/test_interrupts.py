"""Interrupted runs: kill -9 at random points loses no record and changes no number; Ctrl-C keeps finished cells.

The kill trials run ``genbench run`` (cli.main) in forked children, which share this process's imports, so a
trial costs the grid's work rather than a Python start-up; the kill is a real SIGKILL of a real process.
``scripts/fault_injection.py`` counts the same trials, optionally with fresh ``genbench`` processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import faults
import pytest

import genbench
from genbench.toolkit.files import remove_stale_temporaries

#: Trials of the slow tier: at least ten, so that a crash at a rare moment shows.
SLOW_TRIALS = 10


def assert_trials_recovered(trials: list[faults.KillTrial]) -> None:
    for trial in trials:
        assert trial.damaged_before == 0, trial  # atomic writes: a killed run leaves no half-written record
        assert trial.records_lost == 0, trial
        assert trial.exit_code == 0, trial
        assert trial.identical, trial
        assert trial.temporaries_left == 0, trial


@pytest.mark.slow
def test_kill_9_once_loses_no_record_and_changes_no_number(tmp_path: Path) -> None:
    assert_trials_recovered(faults.kill_trials(tmp_path, trials=1, seed=1, grid=faults.CHEAP_KILL_ARGV))


@pytest.mark.slow
def test_kill_9_at_random_points_loses_no_record_and_changes_no_number(tmp_path: Path) -> None:
    trials = faults.kill_trials(tmp_path, trials=SLOW_TRIALS, seed=0)
    assert_trials_recovered(trials)
    assert len({trial.records_before for trial in trials}) > 1  # the kills hit different stages of the grid


def test_stale_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    (tmp_path / "cells").mkdir()
    stale = [tmp_path / "cells" / f".a.json.{dead_pid}.abcd_123.tmp", tmp_path / ".run.json.x1y2z3w4.tmp"]
    live = tmp_path / f".results.csv.{os.getppid()}.abcdefgh.tmp"
    others = [tmp_path / "notes.tmp", tmp_path / ".hidden.tmp", tmp_path / "cells" / "a.json.corrupt"]
    for path in [*stale, live, *others]:
        path.write_text("half")
    assert sorted(remove_stale_temporaries([tmp_path, tmp_path / "missing"])) == sorted(stale)
    assert all(path.exists() for path in [live, *others])


SLEEPER_PLUGIN = '''
import os
import time
from dataclasses import dataclass

import torch

import genbench


@dataclass
class SleeperConfig:
    epochs: int = 1


class Sleeper(torch.nn.Module):
    """Trains instantly, except seed 1 while SLEEPER_BLOCKS is set: then it waits to be interrupted."""

    capabilities = frozenset({genbench.SAMPLE})

    def __init__(self, config, info):
        super().__init__()
        self.shape = info.shape
        self.register_buffer("image", torch.zeros(info.shape, dtype=torch.uint8))

    def fit(self, train, ctx):
        if ctx.seed == 1 and os.environ.get("SLEEPER_BLOCKS"):
            # Short sleeps: a process-directed SIGINT may land on one of torch's threads, and then only the main
            # thread's next bytecode raises KeyboardInterrupt; one long sleep would not return for minutes.
            for _ in range(3000):
                time.sleep(0.1)
        self.image = train.images[0].clone()

    def sample(self, n, generator):
        return self.image.expand(n, *self.shape).clone()


@genbench.hookimpl
def genbench_models():
    return [genbench.ModelSpec("sleeper", "waits on seed 1", SleeperConfig, Sleeper)]
'''


@pytest.mark.slow
def test_ctrl_c_keeps_finished_cells_says_how_to_resume_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sleeper_plugin.py").write_text(SLEEPER_PLUGIN)
    args = ["run", "-p", "sleeper_plugin", "--models", "sleeper", "--seeds", "0,1", "--metrics", "sample_time"]
    args += ["--results-dir", str(tmp_path / "results")]
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "SLEEPER_BLOCKS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "genbench.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    cells = tmp_path / "results" / "digits-sleeper" / "cells"
    deadline = time.monotonic() + 240
    while not list(cells.glob("*.json")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # seed 1 is now asleep in fit
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()  # not left running into the next test
        process.communicate()
        raise
    assert process.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("genbench: interrupted; finished cells are kept. To resume, run the same command again:")
    assert last.endswith("genbench " + " ".join(args)) and "Traceback" not in stderr
    assert len(list(cells.glob("*.json"))) == 1

    monkeypatch.syspath_prepend(str(tmp_path))
    lines: list[str] = []
    frame = genbench.run(
        ["sleeper"],
        seeds=[0, 1],
        metrics=["sample_time"],
        plugins=["sleeper_plugin"],
        results_dir=tmp_path / "results",
        echo=lines.append,
    )
    assert (frame["status"] == "ok").all()
    assert lines[0].startswith("sleeper seed 0: finished before, reusing") and lines[1] == "sleeper seed 1: running"
