"""The one training loop every model plugin shares: seeded minibatches, progress, curves, divergence checks.

A model keeps its own step (forward, loss, backward, optimizer) visible in its file and hands it to
``train_epochs``; everything around the step lives here once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping

import torch

from genbench.types import FitContext, ImageData, TrainingDiverged


def iterate_minibatches(
    data: ImageData, batch_size: int, generator: torch.Generator, *, shuffle: bool = True
) -> Iterator[torch.Tensor]:
    """One epoch of uint8 minibatches, shuffled by the seeded generator."""
    order = torch.randperm(len(data), generator=generator) if shuffle else torch.arange(len(data))
    for start in range(0, len(data), batch_size):
        yield data.images[order[start : start + batch_size]]


def adam_with_cosine_decay(
    parameters: Iterable[torch.nn.Parameter], lr: float, *, epochs: int, examples: int, batch_size: int
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.CosineAnnealingLR]:
    """Adam whose learning rate falls to zero on a cosine over every update of the run (Loshchilov & Hutter 2017,
    "SGDR", without restarts); step the scheduler once per update."""
    optimizer = torch.optim.Adam(parameters, lr=lr)
    updates = epochs * -(-examples // batch_size)  # ceil: the last, short batch is an update too
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(updates, 1))


def train_epochs(
    step: Callable[[torch.Tensor], Mapping[str, float]],
    train: ImageData,
    ctx: FitContext,
    *,
    epochs: int,
    batch_size: int,
    desc: str = "train",
) -> list[dict[str, float]]:
    """Call ``step(batch)`` on every minibatch for ``epochs`` epochs and return the per-epoch curve.

    ``step`` receives a uint8 batch already on ``ctx.device`` and returns its losses as floats. The mean of
    each loss over an epoch becomes one point of the curve, which also goes to ``ctx.on_curve``. A loss that
    is NaN or infinite stops training with TrainingDiverged, so that the runner records the cell as failed.
    """
    from tqdm.auto import tqdm

    curve: list[dict[str, float]] = []
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not ctx.progress, leave=False)
    for epoch in bar:
        totals: dict[str, float] = {}
        batches = 0
        for batch in iterate_minibatches(train, batch_size, ctx.generator):
            losses = step(batch.to(ctx.device, non_blocking=True))
            for name, value in losses.items():
                if not math.isfinite(value):
                    raise TrainingDiverged(f"{name} became {value} in epoch {epoch}")
                totals[name] = totals.get(name, 0.0) + value
            batches += 1
        point = {name: total / max(batches, 1) for name, total in totals.items()}
        curve.append({"epoch": float(epoch), **point})
        ctx.on_curve(epoch, point)
        bar.set_postfix({name: f"{value:.4g}" for name, value in point.items()})
    return curve
