"""The one training loop every model plugin shares: seeded minibatches, progress, curves, divergence checks.

A model keeps its own step (forward, loss, backward, optimizer) visible in its file and hands it to
``train_epochs``; everything around the step lives here once. A model whose step is the common one (minimize
a loss in nats per image with Adam and a cosine schedule) hands only its loss to ``fit_by_minimizing``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping

import torch

from genbench.contract import FitContext, ImageData, TrainingDiverged

#: On CUDA the training images move to the device when they take at most this share of its free memory; the
#: rest is left to the model, its activations and the optimizer.
DATA_ON_DEVICE_FRACTION = 0.25
#: On CUDA, losses are checked for NaN or infinity every this many steps (and at each epoch's end): every check
#: waits for the GPU, so checking each step would keep it idle between steps. On the CPU waiting costs nothing
#: and every step is checked, as before.
CUDA_DIVERGENCE_CHECK_STEPS = 50


def iterate_minibatches(
    data: ImageData,
    batch_size: int,
    generator: torch.Generator,
    *,
    shuffle: bool = True,
    images: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """One epoch of uint8 minibatches, shuffled by the seeded generator.

    ``images`` is ``data.images`` already on a device (see ``images_for_training``): batches are then gathered
    there. The permutation is drawn on the CPU by ``generator`` either way, so the order of the examples, and
    every later draw of the generator, are the same on every device. Dynamically binarized data
    (``data.binarize_from``) gives a fresh binarization of every minibatch, drawn by ``generator`` too.
    """
    order = torch.randperm(len(data), generator=generator) if shuffle else torch.arange(len(data))
    if data.binarize_from is not None:  # dynamic binarization: every minibatch drawn afresh, on the CPU
        for start in range(0, len(data), batch_size):
            yield data.binary_draw(order[start : start + batch_size], generator)
        return
    source = data.images if images is None else images
    if source.device != order.device:
        order = order.to(source.device)  # one small copy per epoch, not one per batch
    for start in range(0, len(data), batch_size):
        yield source[order[start : start + batch_size]]


def images_for_training(data: ImageData, device: torch.device) -> torch.Tensor:
    """The training images where batches are best gathered: on a CUDA device when they fit, else on the CPU."""
    if device.type != "cuda" or data.binarize_from is not None:  # dynamic: batches are drawn on the CPU
        return data.images
    free, _ = torch.cuda.mem_get_info(device)
    if data.images.numel() * data.images.element_size() > DATA_ON_DEVICE_FRACTION * free:
        return data.images
    return data.images.to(device)


def adam(
    parameters: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999)
) -> torch.optim.Adam:
    """Adam; on CUDA PyTorch's fused implementation: one kernel for every parameter instead of a few per tensor,
    which is much of a small model's step there. The CPU keeps the reference implementation, and so its results."""
    parameters = list(parameters)
    on_cuda = bool(parameters) and all(parameter.device.type == "cuda" for parameter in parameters)
    return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=True if on_cuda else None)


def adam_with_cosine_decay(
    parameters: Iterable[torch.nn.Parameter], lr: float, *, epochs: int, examples: int, batch_size: int
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.CosineAnnealingLR]:
    """Adam whose learning rate falls to zero on a cosine over every update of the run (Loshchilov & Hutter 2017,
    "SGDR", without restarts); step the scheduler once per update."""
    optimizer = adam(parameters, lr=lr)
    updates = epochs * -(-examples // batch_size)  # ceil: the last, short batch is an update too
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(updates, 1))


def train_epochs(
    step: Callable[[torch.Tensor], Mapping[str, float | torch.Tensor]],
    train: ImageData,
    ctx: FitContext,
    *,
    epochs: int,
    batch_size: int,
    desc: str = "train",
    check_every: int | None = None,
) -> list[dict[str, float]]:
    """Call ``step(batch)`` on every minibatch for ``epochs`` epochs and return the per-epoch curve.

    ``step`` receives a uint8 batch already on ``ctx.device`` and returns its losses, as floats or as detached
    scalar tensors (these let a GPU run ahead: nothing waits for it until the losses are checked). The mean of
    each loss over an epoch becomes one point of the curve, which also goes to ``ctx.on_curve``. A loss that
    is NaN or infinite stops training with TrainingDiverged, so that the runner records the cell as failed; it
    is noticed within ``check_every`` steps (default: every step on the CPU, CUDA_DIVERGENCE_CHECK_STEPS on
    CUDA) and always by the end of its epoch.
    """
    from tqdm.auto import tqdm

    if check_every is None:
        check_every = CUDA_DIVERGENCE_CHECK_STEPS if ctx.device.type == "cuda" else 1
    if ctx.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # batch shapes repeat: let cuDNN pick its fastest kernels once
    images = images_for_training(train, ctx.device)
    curve: list[dict[str, float]] = []
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not ctx.progress, leave=False)
    for epoch in bar:
        totals = EpochTotals(epoch)
        for batch in iterate_minibatches(train, batch_size, ctx.generator, images=images):
            totals.add(step(batch.to(ctx.device, non_blocking=True)))
            if totals.batches % check_every == 0:
                totals.check_finite()
        point = totals.means()
        curve.append({"epoch": float(epoch), **point})
        ctx.on_curve(epoch, point)
        bar.set_postfix({name: f"{value:.4g}" for name, value in point.items()})
    return curve


def fit_by_minimizing(
    model: torch.nn.Module,
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    train: ImageData,
    ctx: FitContext,
    *,
    lr: float,
    epochs: int,
    batch_size: int,
    dims: int,
    curve_name: str,
    grad_clip: float | None = None,
    desc: str = "train",
) -> list[dict[str, float]]:
    """Fit ``model`` by minimizing ``loss_of(batch)``, a mean loss in nats per image, and return the curve.

    The step every likelihood model of genbench takes: Adam with a cosine decay to zero over the run
    (``adam_with_cosine_decay``); the loss computed under ``ctx.autocast()``; its gradient taken per dimension
    (``loss / dims``), so that the learning rate and ``grad_clip`` (a maximal gradient norm) do not depend on the
    image size; the loss, in nats per image, recorded as ``curve_name``. The model is in training mode while it
    fits and in evaluation mode afterwards.
    """
    optimizer, schedule = adam_with_cosine_decay(
        model.parameters(), lr, epochs=epochs, examples=len(train), batch_size=batch_size
    )
    model.train()

    def step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        with ctx.autocast():
            loss = loss_of(batch)
        optimizer.zero_grad(set_to_none=True)
        (loss / dims).backward()  # type: ignore[no-untyped-call]
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        schedule.step()
        return {curve_name: loss.detach()}  # a tensor: train_epochs sums it without waiting for a GPU

    curve = train_epochs(step, train, ctx, epochs=epochs, batch_size=batch_size, desc=desc)
    model.eval()
    return curve


class EpochTotals:
    """Sums of each loss over an epoch's steps, kept in float64 where the losses are (on the GPU: no waiting).

    The sums are exactly those of Python floats added in the same order (a float32 loss is exact in float64,
    and float64 addition rounds the same on every device), so the curve does not depend on where it was summed.
    """

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.batches = 0
        self.sums: dict[str, torch.Tensor] = {}

    def add(self, losses: Mapping[str, float | torch.Tensor]) -> None:
        for name, value in losses.items():
            if isinstance(value, torch.Tensor):
                loss = value.detach().to(torch.float64)
            else:
                loss = torch.tensor(float(value), dtype=torch.float64)
            # Started from 0.0 as the Python sum was, so that even a loss of -0.0 sums to the same value.
            self.sums[name] = self.sums.get(name, 0.0) + loss
        self.batches += 1

    def check_finite(self) -> None:
        """A sum is finite exactly when every loss added to it was (float32 losses cannot overflow float64)."""
        for name, total in self.sums.items():
            value = total.item()
            if not math.isfinite(value):
                raise TrainingDiverged(f"{name} became {value} in epoch {self.epoch}")

    def means(self) -> dict[str, float]:
        self.check_finite()
        return {name: total.item() / max(self.batches, 1) for name, total in self.sums.items()}
