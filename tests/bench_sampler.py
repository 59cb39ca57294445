"""Benchmark: PixelCNN's cached sampler beside the plain one, on the two CPU settings its speed goals were set for.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/pytest tests/bench_sampler.py --benchmark-only \
        --benchmark-columns=min,median,mean,rounds

(about 11 minutes on one core of the development VM, 10 of them the plain sampler at 28x28; BENCHMARKS.md)

- MNIST-sized: the default PixelCNNConfig on 1x28x28 images with 256 levels, batch 16. The plain sampler runs
  the whole network 784 times per batch (minutes on one core), so it gets a single round.
- digits-sized: the default PixelCNNConfig on 1x8x8 images with 17 levels (the scikit-learn digits), batch 64.

Both samplers get the same seeded weights and generator seed, and the benchmark checks that they return the same
images, so the speed-up is measured on exactly the same work. Untrained weights cost what trained ones cost.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from genbench import DataInfo
from genbench_pixelcnn import PixelCNN, PixelCNNConfig

SETTINGS = {
    # name: (data shape, levels, batch, rounds of the cached sampler, rounds of the plain sampler)
    "28x28 256 levels batch 16": ((1, 28, 28), 256, 16, 3, 1),
    "8x8 17 levels batch 64": ((1, 8, 8), 17, 64, 5, 2),
}

#: The images each (setting, sampler) drew, so that the second of the two can check it drew the same.
DRAWN: dict[tuple[str, str], torch.Tensor] = {}


@pytest.mark.parametrize("sampler", ["cached", "plain"])
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_bench_pixelcnn_sampler(benchmark: Any, setting: str, sampler: str) -> None:
    shape, levels, batch, cached_rounds, plain_rounds = SETTINGS[setting]
    benchmark.group = f"pixelcnn sampler, default config, {setting}"
    torch.manual_seed(0)
    model = PixelCNN(PixelCNNConfig(sampler=sampler), DataInfo(shape, levels)).eval()

    def draw() -> torch.Tensor:
        return model.sample(batch, torch.Generator().manual_seed(0))

    rounds = cached_rounds if sampler == "cached" else plain_rounds
    images = benchmark.pedantic(draw, rounds=rounds, iterations=1, warmup_rounds=0)
    DRAWN[setting, sampler] = images
    other = DRAWN.get((setting, "plain" if sampler == "cached" else "cached"))
    if other is not None:
        assert torch.equal(images, other), "the two samplers drew different images"
    benchmark.extra_info["seconds_per_image"] = benchmark.stats.stats.median / batch
