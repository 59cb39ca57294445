"""Models that test the executors: one that kills its own worker, one that waits for a file. Loaded with -p."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import genbench
from fake_plugins import ConstantConfig, ConstantModel
from genbench import DataInfo, FitContext, ImageData


@dataclass
class KillerConfig(ConstantConfig):
    tally: str = ""  # a file that gets one line per attempt to fit, so a test can count the retries


class Killer(ConstantModel):
    """Kills the process it runs in while fitting, as the kernel's OOM killer or kill -9 would."""

    def __init__(self, config: KillerConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.tally = Path(config.tally)

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        with self.tally.open("a") as stream:
            stream.write(f"{os.getpid()}\n")
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class WaiterConfig(ConstantConfig):
    release: str = ""  # fit returns once this file exists (or after a minute)


class Waiter(ConstantModel):
    """Fits only once a file appears: a run that is still running while a test does something else."""

    def __init__(self, config: WaiterConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.release = Path(config.release)

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        deadline = time.monotonic() + 60
        while not self.release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        super().fit(train, ctx)


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [
        genbench.ModelSpec("killer", "kills its own worker while fitting", KillerConfig, Killer),
        genbench.ModelSpec("waiter", "fits once a file exists", WaiterConfig, Waiter),
    ]
