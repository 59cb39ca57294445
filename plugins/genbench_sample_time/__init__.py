"""``sample_time``: seconds per generated image, as the median over repeated timed batches after a warm-up.

The warm-up absorbs one-off costs (CUDA context, kernel selection, caches); the median resists the noise of a
shared machine; on a GPU the device is synchronized before each clock read, since kernels run asynchronously.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

import genbench
from genbench import EvalContext, GenerativeModel, MetricResult
from genbench.validation import require_at_least


@dataclass
class SampleTimeConfig:
    batch_size: int = 64  # images per timed call to sample()
    warmup: int = 1  # untimed batches first
    repeats: int = 5  # timed batches; the median is reported

    def __post_init__(self) -> None:
        require_at_least(self, 1, "batch_size", "repeats")
        require_at_least(self, 0, "warmup")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_image(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    config: SampleTimeConfig = ctx.config if isinstance(ctx.config, SampleTimeConfig) else SampleTimeConfig()
    if config.batch_size < 1 or config.repeats < 1 or config.warmup < 0:
        raise genbench.GenbenchError(f"sample_time: batch_size and repeats must be >= 1, got {config}")
    for _ in range(config.warmup):
        model.sample(config.batch_size, ctx.generator)
    timings = []
    for _ in range(config.repeats):
        synchronize(ctx.device)
        start = time.perf_counter()
        model.sample(config.batch_size, ctx.generator)
        synchronize(ctx.device)
        timings.append(time.perf_counter() - start)
    per_image = statistics.median(timings) / config.batch_size
    provenance = {
        "batch_size": config.batch_size,
        "warmup": config.warmup,
        "repeats": config.repeats,
        "statistic": "median",
        "device": str(ctx.device),
    }
    return MetricResult({"sample_time": per_image}, provenance)


@genbench.hookimpl
def genbench_metrics() -> list[genbench.MetricSpec]:
    return [
        genbench.MetricSpec(
            "sample_time",
            "seconds per sampled image: median of timed batches after a warm-up, device synchronized",
            (genbench.Column("sample_time", "s/image", higher_is_better=False),),
            frozenset({genbench.SAMPLE}),
            seconds_per_image,
            SampleTimeConfig,
        )
    ]
