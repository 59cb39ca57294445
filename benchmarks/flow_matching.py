"""Flow matching's training and sampling throughput in images per second, and the NFE of each sampler.

    OMP_NUM_THREADS=1 python3 benchmarks/flow_matching.py                     # untrained, the digits' 1x8x8 shape
    OMP_NUM_THREADS=1 python3 benchmarks/flow_matching.py --checkpoint RUN/checkpoints/flow_matching-....safetensors
    python3 benchmarks/flow_matching.py --device cuda --shape 3,32,32 --levels 256 --option base_channels=64

Training: ``--steps`` optimizer steps of the model's own fit (the conditional flow matching loss, Adam, gradient
clipping) on batches of the config's batch size, after ``--warmup`` untimed steps. Sampling: for each solver
(Euler with 4, 8, 16 and 32 steps; dopri5 at rtol = atol = 1e-5), ``--sample-batches`` timed calls of
``sample(--sample-size)`` after one untimed call, with the model's reported network evaluations per sample.
dopri5's count depends on the velocity field: an untrained one (the U-Net's last layer starts at zero) is
nearly constant and cheap to follow, so pass ``--checkpoint`` (a run's safetensors file of this model, with the
config it was trained with given by ``--option``) for the count of a trained model. Images are synthetic
(uniform levels); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

import torch

from genbench import DataInfo, FitContext, ImageData
from genbench_flow_matching import FlowMatching, FlowMatchingConfig, FlowMatchingSampling

SAMPLERS = [("euler", 4), ("euler", 8), ("euler", 16), ("euler", 32), ("dopri5", None)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="1,8,8", help="C,H,W (default: the digits' 1,8,8)")
    parser.add_argument("--levels", type=int, default=17)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    parser.add_argument("--sample-size", type=int, default=100, help="images per sample() call, as FID draws them")
    parser.add_argument("--sample-batches", type=int, default=3, help="timed sample() calls per solver")
    parser.add_argument("--checkpoint", default=None, help="a safetensors file of a trained flow_matching model")
    parser.add_argument("--option", action="append", default=[], help="a config field, KEY=VALUE (repeatable)")
    return parser.parse_args()


def config_from(options: list[str]) -> FlowMatchingConfig:
    values: dict[str, Any] = {}
    for option in options:
        key, _, text = option.partition("=")
        default = getattr(FlowMatchingConfig(), key)
        values[key] = text if isinstance(default, str) else type(default)(text)
    return FlowMatchingConfig(**values)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_images_per_second(
    model: FlowMatching, info: DataInfo, device: torch.device, steps: int, warmup: int
) -> tuple[float, float]:
    """Images per second of ``steps`` steps of the model's own fit, after ``warmup`` untimed ones: per second of
    wall time and per second of this process's CPU time. The weights are saved first and restored after, so that
    a checkpoint's sampling is measured on the trained weights."""
    saved = {name: value.clone() for name, value in model.state_dict().items()}
    batch_size = model.config.batch_size
    generator = torch.Generator().manual_seed(0)

    def seconds_for(batches: int) -> tuple[float, float]:
        images = torch.randint(0, info.levels, (batches * batch_size, *info.shape), generator=generator)
        model.config.epochs = 1
        ctx = FitContext(device, 0, torch.Generator().manual_seed(0))
        with Stopwatch(device) as watch:
            model.fit(ImageData(images.to(torch.uint8), info.levels), ctx)
        return watch.wall, watch.cpu

    seconds_for(warmup)
    wall, cpu = seconds_for(steps)
    model.load_state_dict(saved)
    return steps * batch_size / wall, steps * batch_size / cpu


def sampling(model: FlowMatching, device: torch.device, size: int, batches: int) -> tuple[float, float, int | None]:
    """Images per second (wall, CPU) of ``batches`` timed ``sample(size)`` calls after an untimed one, and the
    NFE per sample."""
    generator = torch.Generator().manual_seed(0)
    model.sample(size, generator)
    evaluations = []
    with Stopwatch(device) as watch:
        for _ in range(batches):
            model.sample(size, generator)
            evaluations.append(model.network_evaluations)
    known = [n for n in evaluations if n is not None]
    nfe = round(sum(known) / len(known)) if known else None
    return size * batches / watch.wall, size * batches / watch.cpu, nfe


class Stopwatch:
    """Wall and process CPU seconds of a block, the device synchronized at both ends. On a shared machine the CPU
    seconds are the steadier number: wall time also counts the time other processes held the cores."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Stopwatch:
        synchronize(self.device)
        self.wall, self.cpu = -time.perf_counter(), -time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.wall += time.perf_counter()
        self.cpu += time.process_time()


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    info = DataInfo(tuple(int(side) for side in args.shape.split(",")), args.levels)  # type: ignore[arg-type]
    torch.manual_seed(0)
    model = FlowMatching(config_from(args.option), info).to(device)
    if args.checkpoint:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(args.checkpoint, device=str(device)))
    print(
        f"# flow_matching {info.shape} levels={info.levels} device={device} threads={torch.get_num_threads()} "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} load={os.getloadavg()[0]:.2f} {platform.processor()}"
    )
    print(f"# config {model.config}; checkpoint {args.checkpoint or 'none (untrained)'}")
    train, train_cpu = training_images_per_second(model, info, device, args.steps, args.warmup)
    print(
        f"training: {train:.1f} images/s of wall time, {train_cpu:.1f} per CPU second "
        f"(batch {model.config.batch_size}, {args.steps} timed steps)"
    )
    print("| sampler | NFE per sample | images/s (wall) | images per CPU second |")
    print("|---|---:|---:|---:|")
    for solver, steps in SAMPLERS:
        model.sample_options = FlowMatchingSampling(solver=solver, steps=steps or 1)
        per_second, per_cpu_second, nfe = sampling(model, device, args.sample_size, args.sample_batches)
        label = f"{solver} {steps} steps" if steps else f"{solver} rtol=atol=1e-5"
        print(f"| {label} | {nfe} | {per_second:.1f} | {per_cpu_second:.1f} |")


if __name__ == "__main__":
    main()
