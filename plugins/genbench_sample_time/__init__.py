"""``sample_time``: seconds per generated image, as the median over repeated timed batches after a warm-up.

The warm-up absorbs one-off costs (CUDA context, kernel selection, caches); the median resists the noise of a
shared machine; on a GPU the device is synchronized before each clock read, since kernels run asynchronously.

A model with more than one way to sample says which one ran through an optional ``sampler_name`` attribute (a
short string, e.g. PixelCNN's ``"cached"`` or ``"plain"``); the provenance records it as ``sampler``, so timings of
different samplers are never ranked against each other. Models without the attribute record no ``sampler``.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

import genbench
from genbench import EvalContext, GenerativeModel, MetricResult
from genbench.toolkit.checks import require_at_least


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
    if getattr(model, "stored_samples", False):  # e.g. the samples model: it reads images, it makes none
        raise genbench.NotApplicable("the images are read from a file, not generated: no sampling time to measure")
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
    sampler = getattr(model, "sampler_name", None)
    if sampler is not None:
        provenance["sampler"] = str(sampler)
    # Network evaluations per image with the model's evaluation-time options (a diffusion model's steps): the
    # cost a sampler pays, whatever the hardware, and the axis a sweep of steps is read along.
    nfe = getattr(model, "network_evaluations", None)
    if nfe is not None:
        provenance["nfe"] = int(nfe)
        provenance["seconds_per_nfe"] = per_image / max(int(nfe), 1)
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
