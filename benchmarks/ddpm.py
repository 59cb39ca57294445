"""DDPM's throughput: training, each sampler (with its network evaluations per image), and the variational bound.

    OMP_NUM_THREADS=1 python3 benchmarks/ddpm.py                       # the default config on the digits' 1x8x8
    python3 benchmarks/ddpm.py --device cuda --shape 3,32,32 --levels 256 --option base_channels=128

Training: one epoch of the model's own ``fit`` (the simple loss, Adam, clipping) over ``--train-images`` synthetic
images, after an untimed epoch over a few. Sampling: ``sample(--sample-size)`` once untimed, then timed, for the
ancestral sampler on all T steps and DDIM on 10 and 50. The bound: ``--bound-images`` images, all T terms each.
Every figure is given per wall second and per CPU second of this process: on a machine shared with other jobs
the CPU figure is the one that does not depend on the load (printed with the script's output). Untrained weights:
the cost of a network evaluation does not depend on them. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import torch

from genbench import DataInfo, FitContext, ImageData
from genbench_ddpm import DDPM, DDPMConfig, DDPMSampling

SAMPLERS = [DDPMSampling("ancestral"), DDPMSampling("ddim", steps=10), DDPMSampling("ddim", steps=50)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="1,8,8", help="C,H,W (default: the digits' 1,8,8)")
    parser.add_argument("--levels", type=int, default=17)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--train-images", type=int, default=1024)
    parser.add_argument("--sample-size", type=int, default=100)
    parser.add_argument("--bound-images", type=int, default=20)
    parser.add_argument("--option", action="append", default=[], help="a config field, KEY=VALUE (repeatable)")
    return parser.parse_args()


def config_from(options: list[str]) -> DDPMConfig:
    values: dict[str, Any] = {}
    for option in options:
        key, _, text = option.partition("=")
        default = getattr(DDPMConfig(), key)
        values[key] = text.lower() == "true" if isinstance(default, bool) else type(default)(text)
    return DDPMConfig(**values)


def timed(device: torch.device, work: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of ``work()``."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def fit_one_epoch(model: DDPM, images: torch.Tensor, levels: int, device: torch.device) -> None:
    model.config.epochs = 1
    model.fit(ImageData(images, levels), FitContext(device, 0, torch.Generator().manual_seed(0)))


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    shape = tuple(int(side) for side in args.shape.split(","))
    info = DataInfo(shape, args.levels)  # type: ignore[arg-type]
    torch.manual_seed(0)
    config = config_from(args.option)
    model = DDPM(config, info).to(device)
    images = torch.randint(0, args.levels, (args.train_images, *shape), dtype=torch.uint8)
    print(
        f"ddpm {args.shape} {args.levels} levels, T={config.timesteps}, base_channels={config.base_channels}, "
        f"{sum(p.numel() for p in model.parameters())} parameters; device {device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), {platform.processor() or platform.machine()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    fit_one_epoch(model, images[: config.batch_size * 2], args.levels, device)  # warm-up
    wall, cpu = timed(device, lambda: fit_one_epoch(model, images, args.levels, device))
    rates = f"{len(images) / wall:.1f} images/s wall, {len(images) / cpu:.1f} per CPU s"
    print(f"train (batch {config.batch_size}): {rates}")

    generator = torch.Generator().manual_seed(0)
    for options in SAMPLERS:
        model.sample_options = options
        model.sample(min(args.sample_size, 4), generator)  # warm-up
        wall, cpu = timed(device, lambda: model.sample(args.sample_size, generator))
        name = options.sampler if options.steps is None else f"{options.sampler} {options.steps}"
        print(
            f"sample {name:<13} NFE {model.network_evaluations:>4}: {args.sample_size / wall:.1f} images/s wall, "
            f"{args.sample_size / cpu:.1f} per CPU s"
        )
    x = images[: args.bound_images].to(device)
    wall, cpu = timed(device, lambda: model.variational_bound(x))
    print(
        f"variational bound, all {config.timesteps} terms: {len(x) / wall:.2f} images/s wall, "
        f"{len(x) / cpu:.2f} per CPU s"
    )


if __name__ == "__main__":
    main()
