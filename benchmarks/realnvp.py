"""RealNVP's training and sampling throughput, in images per second, with its default config (or options given).

    OMP_NUM_THREADS=1 python3 benchmarks/realnvp.py                       # the digits' shape, 1x8x8, 17 levels
    OMP_NUM_THREADS=1 python3 benchmarks/realnvp.py --shape 3,32,32 --levels 256 --steps 5
    python3 benchmarks/realnvp.py --device cuda --shape 3,32,32 --levels 256 --option features=64 --option blocks=8

Training: ``--steps`` optimizer steps (forward, backward, Adam) on batches of the config's batch size, after
``--warmup`` steps that are not timed (actnorm's data-dependent initialization, allocator warm-up). The step is the
model's own (``RealNVP.fit`` through ``fit_by_minimizing``), run for exactly the timed number of batches. Sampling:
``--sample-batches`` calls of ``sample(--sample-size)``, as the FID metric draws (100 per call), after one untimed
call. Images are synthetic (uniform levels): throughput does not depend on the values. Nothing is downloaded.

Each rate is given per second of wall time and per second of this process's CPU time (``time.process_time``): on a
machine shared with other jobs the wall rate falls with the load and the CPU rate much less, so the second is the
one to compare between runs there; on an idle machine with one thread the two agree.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

import torch

from genbench import DataInfo, FitContext, ImageData
from genbench_realnvp import RealNVP, RealNVPConfig


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="1,8,8", help="C,H,W (default: the digits' 1,8,8)")
    parser.add_argument("--levels", type=int, default=17)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=40, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    parser.add_argument("--sample-size", type=int, default=100, help="images per sample() call")
    parser.add_argument("--sample-batches", type=int, default=10, help="timed sample() calls")
    parser.add_argument("--option", action="append", default=[], help="a config field, KEY=VALUE (repeatable)")
    return parser.parse_args()


def config_from(options: list[str]) -> RealNVPConfig:
    values: dict[str, Any] = {}
    for option in options:
        key, _, text = option.partition("=")
        default = getattr(RealNVPConfig(), key)
        values[key] = text if isinstance(default, str) else type(default)(text)
    return RealNVPConfig(**values)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Clock:
    """Wall and CPU seconds since it was made."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        synchronize(device)
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rates(self, images: int) -> tuple[float, float]:
        """Images per wall second and per CPU second."""
        synchronize(self.device)
        return images / (time.perf_counter() - self.wall), images / (time.process_time() - self.cpu)


def train_throughput(
    model: RealNVP, info: DataInfo, device: torch.device, steps: int, warmup: int
) -> tuple[float, float]:
    """Images per wall and per CPU second of ``steps`` training steps, the fit's own, after ``warmup`` untimed ones."""
    batch_size: int = model.config.batch_size
    generator = torch.Generator().manual_seed(0)

    def fit_on(batches: int) -> tuple[float, float]:
        images = torch.randint(0, info.levels, (batches * batch_size, *info.shape), generator=generator)
        model.config.epochs = 1
        ctx = FitContext(device, 0, torch.Generator().manual_seed(0))
        clock = Clock(device)
        model.fit(ImageData(images.to(torch.uint8), info.levels), ctx)
        return clock.rates(batches * batch_size)

    fit_on(warmup)
    return fit_on(steps)


def sample_throughput(model: RealNVP, device: torch.device, size: int, batches: int) -> tuple[float, float]:
    generator = torch.Generator().manual_seed(0)
    model.sample(size, generator)
    clock = Clock(device)
    for _ in range(batches):
        model.sample(size, generator)
    return clock.rates(size * batches)


def main() -> None:
    args = parse_args()
    c, h, w = (int(part) for part in args.shape.split(","))
    info, device = DataInfo((c, h, w), args.levels), torch.device(args.device)
    config = config_from(args.option)
    torch.manual_seed(0)
    model = RealNVP(config, info).to(device)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    print(f"realnvp {config}")
    built = model.flow.scales_built
    print(f"shape {info.shape}, {info.levels} levels, {built} scales built, {parameters:,} parameters")
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, {platform.processor() or platform.machine()}, "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    wall, cpu = train_throughput(model, info, device, args.steps, args.warmup)
    print(f"training: {wall:.1f} images/s wall, {cpu:.1f} per CPU second ({args.steps} steps of {config.batch_size})")
    wall, cpu = sample_throughput(model, device, args.sample_size, args.sample_batches)
    print(
        f"sampling: {wall:.1f} images/s wall, {cpu:.1f} per CPU second "
        f"({args.sample_batches} calls of sample({args.sample_size}))"
    )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
