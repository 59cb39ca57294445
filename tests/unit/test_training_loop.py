"""The shared training loop: CPU results bit-identical to the loop it replaced, divergence still stops training,
and evaluation batches sized from device memory only on CUDA.

The reference below is the loop as it was before the GPU work (commit 78bb469, genbench/training.py), kept
verbatim but for ``float(value)``: the steps returned ``loss.item()`` then and return detached tensors now,
and ``float`` of a 0-d tensor is exactly what ``.item()`` gave. Running each model's ``fit`` once through it
and once through today's ``train_epochs`` must give the same weights, bit for bit, and the same curve.
(Before this commit the weights' SHA-256 of this very setting was also compared by hand between the old and
the new code: equal.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import pytest
import torch

import genbench.toolkit.training
import genbench_gan
import genbench_pixelcnn
import genbench_vae
from genbench import Dataset, FitContext, ImageData, TrainingDiverged
from genbench.toolkit import devices
from genbench.toolkit.training import EpochTotals, images_for_training, iterate_minibatches, train_epochs


def reference_train_epochs(
    step: Callable[[torch.Tensor], Mapping[str, Any]],
    train: ImageData,
    ctx: FitContext,
    *,
    epochs: int,
    batch_size: int,
    desc: str = "train",
) -> list[dict[str, float]]:
    """The old loop: batches gathered on the CPU, every loss turned into a Python float and checked each step."""
    curve: list[dict[str, float]] = []
    for epoch in range(1, epochs + 1):
        totals: dict[str, float] = {}
        batches = 0
        order = torch.randperm(len(train), generator=ctx.generator)
        for start in range(0, len(train), batch_size):
            batch = train.images[order[start : start + batch_size]]
            losses = step(batch.to(ctx.device, non_blocking=True))
            for name, value in losses.items():
                value = float(value)  # what the steps' loss.item() returned
                if not math.isfinite(value):
                    raise TrainingDiverged(f"{name} became {value} in epoch {epoch}")
                totals[name] = totals.get(name, 0.0) + value
            batches += 1
        point = {name: total / max(batches, 1) for name, total in totals.items()}
        curve.append({"epoch": float(epoch), **point})
        ctx.on_curve(epoch, point)
    return curve


MODELS = {
    "vae": (genbench_vae, lambda: genbench_vae.VAEConfig(epochs=2, hidden=32)),
    "pixelcnn": (genbench_pixelcnn, lambda: genbench_pixelcnn.PixelCNNConfig(epochs=2, channels=8, head_channels=8)),
    "gan": (genbench_gan, lambda: genbench_gan.GANConfig(epochs=1, width=8)),
}


def fit_once(module: ModuleType, config: Any, digits: Dataset, train: ImageData) -> tuple[dict[str, Any], list[Any]]:
    torch.manual_seed(0)
    model = module.genbench_models()[0].factory(config, digits.info)
    curve: list[dict[str, float]] = []
    ctx = FitContext(
        torch.device("cpu"), 0, torch.Generator().manual_seed(0), on_curve=lambda s, v: curve.append(dict(v))
    )
    model.fit(train, ctx)
    return model.state_dict(), curve


@pytest.mark.parametrize("name", list(MODELS))
def test_cpu_training_is_bit_identical_to_the_old_loop(
    name: str, digits: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, make_config = MODELS[name]
    train = ImageData(digits.train.images[:200], digits.train.levels)
    weights, curve = fit_once(module, make_config(), digits, train)
    # The loop is the toolkit's, reached through fit_by_minimizing or imported by the plugin itself.
    monkeypatch.setattr(genbench.toolkit.training, "train_epochs", reference_train_epochs)
    if hasattr(module, "train_epochs"):
        monkeypatch.setattr(module, "train_epochs", reference_train_epochs)
    reference_weights, reference_curve = fit_once(module, make_config(), digits, train)
    assert curve == reference_curve and len(curve) >= 1
    assert weights.keys() == reference_weights.keys()
    for key, tensor in weights.items():
        assert torch.equal(tensor, reference_weights[key]), key


def test_epoch_totals_sum_like_python_floats() -> None:
    values = [torch.tensor(x, dtype=torch.float32) for x in (0.1, 1e8, -3.25, 7.0 / 3.0, -0.0)]
    totals = EpochTotals(epoch=1)
    python_sum = 0.0
    for value in values:
        totals.add({"loss": value})
        python_sum += value.item()
    assert totals.means() == {"loss": python_sum / len(values)}


def loop_until_divergence(check_every: int | None, bad_step: int, steps_per_epoch: int = 8) -> tuple[int, str]:
    """Train on a constant loss that turns NaN at ``bad_step``; how many steps ran, and the error."""
    train = ImageData(torch.zeros(steps_per_epoch * 4, 1, 2, 2, dtype=torch.uint8), 2)
    ctx = FitContext(torch.device("cpu"), 0, torch.Generator().manual_seed(0))
    calls = 0

    def step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        nonlocal calls
        calls += 1
        return {"loss": torch.tensor(float("nan") if calls == bad_step else 1.0)}

    with pytest.raises(TrainingDiverged) as error:
        train_epochs(step, train, ctx, epochs=3, batch_size=4, check_every=check_every)
    return calls, str(error.value)


def test_divergence_stops_at_the_bad_step_on_the_cpu() -> None:
    assert loop_until_divergence(None, bad_step=3) == (3, "loss became nan in epoch 1")


def test_divergence_checked_every_n_steps_still_fires_by_the_epochs_end() -> None:
    assert loop_until_divergence(4, bad_step=3) == (4, "loss became nan in epoch 1")
    assert loop_until_divergence(1000, bad_step=10) == (16, "loss became nan in epoch 2")


def test_batches_from_images_elsewhere_come_in_the_same_order(digits: Dataset) -> None:
    copy = digits.train.images.clone()
    first = list(iterate_minibatches(digits.train, 64, torch.Generator().manual_seed(3)))
    second = list(iterate_minibatches(digits.train, 64, torch.Generator().manual_seed(3), images=copy))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_training_images_stay_put_on_the_cpu_and_when_cuda_memory_is_short(
    digits: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert images_for_training(digits.train, torch.device("cpu")) is digits.train.images
    size = digits.train.images.numel()
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (size, 10 * size))  # needs 4x free
    assert images_for_training(digits.train, torch.device("cuda")) is digits.train.images


def test_eval_batch_size_follows_free_cuda_memory_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert devices.eval_batch_size(torch.device("cpu"), 10**6, 128) == 128
    free = 10 * 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 2 * free))
    cuda = torch.device("cuda")
    per_item = 2**20
    expected = int(devices.EVAL_MEMORY_FRACTION * free) // per_item  # 4096 items of 1 MiB in 40% of 10 GiB
    assert devices.eval_batch_size(cuda, per_item, 128) == min(expected, devices.MAX_EVAL_BATCH) == 4096
    assert devices.eval_batch_size(cuda, 100 * per_item, 128) == int(devices.EVAL_MEMORY_FRACTION * free) // (
        100 * per_item
    )
    assert devices.eval_batch_size(cuda, 2 * free, 128) == 1  # too little memory: one at a time, not a crash
    assert devices.eval_batch_size(cuda, 1, 10_000) == 10_000  # a larger default than the cap is kept
