"""Conformance checks of a model plugin: what the runner and the metrics rely on, on tiny data, in seconds.

The model is built and fitted as the runner does it (global seeds, the factory, ``to(device)``, ``fit`` with a
seeded CPU generator), with its default config, one epoch, and any options the author gives. Likelihoods are
checked for normalization by enumerating every image of tiny shapes: sum_x p(x) = 1.
"""

from __future__ import annotations

import functools
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from genbench.config import resolve_config
from genbench.contract import (
    CAPABILITIES,
    ELBO,
    LOG_LIKELIHOOD,
    SAMPLE,
    DataInfo,
    FitContext,
    GenerativeModel,
    ImageData,
    ModelSpec,
)
from genbench.runner.cell import curve_point, seed_everything
from genbench.store.layout import RunDirectory
from genbench.testing.core import Check, ConformanceError, Skipped, all_images, options_text, require, synthetic_images

#: The shape most checks use: the digits' (one channel, 8x8, 17 levels).
DEFAULT_SHAPE = DataInfo((1, 8, 8), 17)
#: Shapes small enough to enumerate every image: 256 gray images of 4 levels, 64 RGB images of 2 levels (the
#: channels of one pixel exercise an autoregressive model's order within a pixel).
ENUMERATION_SHAPES = (DataInfo((1, 2, 2), 4), DataInfo((3, 1, 2), 2))
#: Images to fit on: one or two minibatches, so that fitting is a few steps.
TRAIN_IMAGES = 64
#: A normalized exact likelihood sums to 1 up to float32 rounding over a few hundred images.
EXACT_TOLERANCE = 1e-3
#: Importance samples for the bound's normalization check; mean_k w_k is an unbiased estimate of p(x), so
#: sum_x exp(elbo_k(x)) estimates 1 with a Monte-Carlo error that shrinks like 1/sqrt(k).
ELBO_K = 256
ELBO_TOLERANCE = 0.05


class ModelSubject:
    """The model under test: its config, and fitted instances, built once per shape and seed and shared."""

    def __init__(self, spec: ModelSpec, options: Mapping[str, Any], device: torch.device) -> None:
        self.spec, self.options, self.device = spec, dict(options), device
        self._fitted: dict[tuple[DataInfo, int], tuple[GenerativeModel, list[dict[str, float]]]] = {}

    @functools.cached_property
    def config(self) -> Any:
        """The default config with the author's options, and one epoch unless the options say otherwise."""
        epochs = None if "epochs" in self.options else 1
        return resolve_config(self.spec.config_class, self.options, f"model {self.spec.name!r}", epochs=epochs)

    def build(self, info: DataInfo, seed: int) -> tuple[GenerativeModel, torch.Generator]:
        generator = seed_everything(seed)  # as the runner does, before the factory, so initialization is seeded
        model = self.spec.factory(self.config, info)  # a GenbenchError (a file it needs) skips the check
        model.to(self.device)
        return model, generator

    def fit(self, info: DataInfo, seed: int) -> tuple[GenerativeModel, list[dict[str, float]]]:
        """A freshly built model fitted on ``TRAIN_IMAGES`` synthetic images, and its curve."""
        model, generator = self.build(info, seed)
        curve: list[dict[str, float]] = []
        ctx = FitContext(
            self.device, seed, generator, on_curve=lambda step, values: curve.append(curve_point(step, values))
        )
        images, _ = synthetic_images(info, TRAIN_IMAGES, seed=seed)
        model.fit(ImageData(images, info.levels), ctx)
        return model, curve

    def fitted(self, info: DataInfo = DEFAULT_SHAPE, seed: int = 0) -> tuple[GenerativeModel, list[dict[str, float]]]:
        if (info, seed) not in self._fitted:
            self._fitted[(info, seed)] = self.fit(info, seed)
        return self._fitted[(info, seed)]

    def batch(self, info: DataInfo = DEFAULT_SHAPE, n: int = 6) -> torch.Tensor:
        """Held-out images of the training distribution, on the device, as the likelihood metrics pass them."""
        return synthetic_images(info, n, seed=99)[0].to(self.device)


def model_checks(
    spec: ModelSpec,
    options: Mapping[str, Any] | None = None,
    *,
    device: str | torch.device = "cpu",
    shape: DataInfo = DEFAULT_SHAPE,
    enumeration_shapes: Sequence[DataInfo] = ENUMERATION_SHAPES,
) -> list[Check]:
    """The checks of one model: pass ``options`` (config fields) to make it tiny, e.g. ``{"hidden": 8}``."""
    subject = ModelSubject(spec, options or {}, torch.device(device))
    checks: dict[str, Callable[[], str]] = {
        "fit": lambda: check_fit(subject, shape),
        "capabilities": lambda: check_capabilities(subject, shape),
        "sample": lambda: check_sample(subject, shape),
        "log_likelihood": lambda: check_log_likelihood(subject, shape),
        "normalized": lambda: check_normalized(subject, shape, enumeration_shapes),
        "elbo_below_log_likelihood": lambda: check_elbo_bound(subject, shape, enumeration_shapes[0]),
        "checkpoint": lambda: check_checkpoint(subject, shape),
        "determinism": lambda: check_determinism(subject, shape),
    }
    return [Check("model", spec.name, name, function) for name, function in checks.items()]


def check_fit(subject: ModelSubject, info: DataInfo) -> str:
    model, curve = subject.fitted(info)
    capabilities = getattr(model, "capabilities", None)
    if not isinstance(capabilities, frozenset):
        raise ConformanceError(f"capabilities must be a frozenset, got {capabilities!r}")
    unknown = set(capabilities) - CAPABILITIES
    require(not unknown, f"unknown capabilities {sorted(unknown)}; use a subset of {sorted(CAPABILITIES)}")
    names = sorted({name for point in curve for name in point if name != "step"})
    return (
        f"built and fitted with {options_text(subject.options)} (one epoch unless set) on {TRAIN_IMAGES} images of "
        f"{shape_text(info)}; curve: {len(curve)} points of {', '.join(names) or 'nothing'}"
    )


def check_capabilities(subject: ModelSubject, info: DataInfo) -> str:
    """A declared capability's method works; an undeclared one is absent or raises NotImplementedError."""
    model, _ = subject.fitted(info)
    x = subject.batch(info)
    calls: dict[str, Callable[[], Any]] = {
        SAMPLE: lambda: model.sample(2, torch.Generator().manual_seed(0)),
        LOG_LIKELIHOOD: lambda: model.log_likelihood(x),
        ELBO: lambda: model.elbo(x, k=1),
    }
    for capability, call in calls.items():
        declared = capability in model.capabilities
        with torch.no_grad():
            try:
                call()
            except (NotImplementedError, AttributeError) as error:
                require(not declared, f"declares {capability!r} but {capability}() raised {type(error).__name__}")
                continue
        require(declared, f"{capability}() works but {capability!r} is not in capabilities; declare it")
    return f"declares {sorted(model.capabilities)}, and exactly these methods work"


def check_sample(subject: ModelSubject, info: DataInfo) -> str:
    model, _ = subject.fitted(info)
    if SAMPLE not in model.capabilities:
        raise Skipped("no 'sample' capability")
    for n in (1, 5):  # one image catches a squeezed batch dimension and batch statistics of one
        with torch.no_grad():
            images = model.sample(n, torch.Generator().manual_seed(0))
        require(isinstance(images, torch.Tensor), f"sample({n}) returned {type(images).__name__}, not a tensor")
        require(
            images.dtype == torch.uint8 and tuple(images.shape) == (n, *info.shape),
            f"sample({n}) returned {images.dtype} {tuple(images.shape)}; expected uint8 {(n, *info.shape)}",
        )
        require(images.device.type == "cpu", f"sample({n}) returned a tensor on {images.device}; return it on the CPU")
        require(int(images.max()) < info.levels, f"sample({n}) has value {int(images.max())} >= {info.levels} levels")
    return f"uint8 {(5, *info.shape)} on the CPU, values in [0, {info.levels})"


def check_log_likelihood(subject: ModelSubject, info: DataInfo) -> str:
    model, _ = subject.fitted(info)
    present = [c for c in (LOG_LIKELIHOOD, ELBO) if c in model.capabilities]
    if not present:
        raise Skipped("neither 'log_likelihood' nor 'elbo'")
    x = subject.batch(info)
    for capability in present:
        values = likelihood(model, capability, x)
        require(
            values.shape == (len(x),) and values.is_floating_point(),
            f"{capability} returned {values.dtype} {tuple(values.shape)}; expected a float tensor ({len(x)},)",
        )
        require(bool(torch.isfinite(values).all()), f"{capability} returned non-finite values {values.tolist()}")
        # A probability of a discrete value is at most 1, and so is every bound's (or its estimate's) mean.
        require(float(values.max()) <= 1e-4, f"{capability} is positive ({float(values.max()):.4g}): log p(x) <= 0")
        alone = likelihood(model, capability, x[:1])
        require(
            torch.allclose(alone.cpu(), values[:1].cpu(), rtol=1e-4, atol=1e-3) or capability == ELBO,
            f"{capability} of an image depends on the rest of its batch ({float(alone[0]):.6g} alone, "
            f"{float(values[0]):.6g} in a batch of {len(x)}); the nll metric batches freely",
        )
    return f"{' and '.join(present)}: ({len(x)},) float, finite, <= 0 nats, batch-independent"


def likelihood(model: GenerativeModel, capability: str, x: torch.Tensor, k: int = 1) -> torch.Tensor:
    with torch.no_grad():
        return model.log_likelihood(x) if capability == LOG_LIKELIHOOD else model.elbo(x, k=k)


def check_normalized(subject: ModelSubject, shape: DataInfo, shapes: Sequence[DataInfo]) -> str:
    """sum_x p(x) = 1 over every image of tiny shapes: a likelihood of discrete values is a distribution."""
    if not {LOG_LIKELIHOOD, ELBO} & subject.fitted(shape)[0].capabilities:
        raise Skipped("neither 'log_likelihood' nor 'elbo'")
    details = []
    for info in shapes:
        model, _ = subject.fitted(info)
        if LOG_LIKELIHOOD in model.capabilities:
            capability, k, tolerance = LOG_LIKELIHOOD, 1, EXACT_TOLERANCE
        elif ELBO in model.capabilities:
            capability, k, tolerance = ELBO, ELBO_K, ELBO_TOLERANCE
        else:
            raise Skipped("neither 'log_likelihood' nor 'elbo'")
        images = all_images(info).to(subject.device)
        values = torch.cat([likelihood(model, capability, part, k) for part in torch.split(images, 64)]).double().cpu()
        total = float(values.logsumexp(0).exp())
        what = (
            f"sum of exp({capability}{f', k={k}' if k > 1 else ''}) over all {len(images)} images of {shape_text(info)}"
        )
        require(abs(total - 1) <= tolerance, f"{what} is {total:.6f}, not 1 within {tolerance}: not normalized")
        details.append(f"{total:.5f} over {len(images)} images of {shape_text(info)}")
    return f"sum of probabilities {'; '.join(details)}"


def check_elbo_bound(subject: ModelSubject, shape: DataInfo, info: DataInfo) -> str:
    """Where a model has both, its bound is below its exact log-likelihood, on average over every image."""
    if not {LOG_LIKELIHOOD, ELBO} <= subject.fitted(shape)[0].capabilities:
        raise Skipped("not both 'log_likelihood' and 'elbo'")
    model, _ = subject.fitted(info)
    images = all_images(info).to(subject.device)
    exact = likelihood(model, LOG_LIKELIHOOD, images).double().cpu()
    gaps = likelihood(model, ELBO, images).double().cpu() - exact
    # Each elbo(x) is one random draw of a bound that holds in expectation; allow three standard errors.
    allowance = 3 * float(gaps.std()) / math.sqrt(len(gaps)) + 1e-4
    mean_gap = float(gaps.mean())
    require(mean_gap <= allowance, f"elbo exceeds log_likelihood by {mean_gap:.4g} nats on average: not a bound")
    return f"elbo - log_likelihood = {mean_gap:.4g} nats on average over {len(images)} images"


def check_checkpoint(subject: ModelSubject, info: DataInfo) -> str:
    """Saved as the runner saves it, loaded into a model rebuilt from the config (seeded otherwise): same outputs."""
    model, _ = subject.fitted(info)
    state = model.state_dict()
    not_tensors = sorted(str(name) for name, value in state.items() if not isinstance(value, torch.Tensor))
    require(not not_tensors, f"state_dict holds non-tensors {not_tensors}: a checkpoint holds only tensors")
    with tempfile.TemporaryDirectory() as folder:
        directory = RunDirectory(Path(folder))
        directory.create()
        directory.save_checkpoint("conformance", state, {"curve": []})
        loaded = directory.load_checkpoint("conformance")
    assert loaded is not None
    seed_everything(1)  # initialized differently from the fitted model: every learned value must be in the file
    rebuilt = subject.spec.factory(subject.config, info)
    rebuilt.load_state_dict(loaded[0])
    rebuilt.to(subject.device)
    differing = differing_outputs(model, rebuilt, subject.batch(info))
    require(not differing, f"a model rebuilt from its config and loaded gives other {differing} than the original")
    return f"{len(state)} tensors saved as safetensors; the rebuilt model gives identical {outputs_text(model)}"


def check_determinism(subject: ModelSubject, info: DataInfo) -> str:
    """The same seed gives the same weights and samples, whatever the global random state was before.

    Checked on the CPU whatever the device: that the code draws only from ``ctx.generator`` and seeded
    initialization is what is checked, and on a GPU two identical fits may still differ in the last bits
    (cuDNN picks its algorithms per process, and some kernels add in a varying order).
    """
    on_gpu = subject.device.type != "cpu"
    if on_gpu:
        subject = ModelSubject(subject.spec, subject.options, torch.device("cpu"))
    first, _ = subject.fitted(info)
    torch.manual_seed(12345)  # disturb every global generator the runner seeds
    second, _ = subject.fit(info, seed=0)
    state_a, state_b = first.state_dict(), second.state_dict()
    require(state_a.keys() == state_b.keys(), "two fits with one seed have state_dicts with different keys")
    unequal = [name for name in state_a if not torch.equal(state_a[name], state_b[name])]
    require(not unequal, f"two fits with seed 0 differ in {unequal[:3]}: use only ctx.generator and seeded init")
    differing = differing_outputs(first, second, subject.batch(info))
    require(not differing, f"two fits with seed 0 give different {differing}")
    where = " (on the CPU; GPU kernels may round differently run to run)" if on_gpu else ""
    return f"two fits with seed 0{where}: identical state_dict ({len(state_a)} tensors) and {outputs_text(first)}"


def differing_outputs(a: GenerativeModel, b: GenerativeModel, x: torch.Tensor) -> list[str]:
    """The outputs (samples under one seed, likelihoods of ``x``) on which two models disagree."""
    differing = []
    with torch.no_grad():
        if SAMPLE in a.capabilities:
            draws = [m.sample(4, torch.Generator().manual_seed(7)) for m in (a, b)]
            if not torch.equal(*draws):
                differing.append("samples")
        for capability in (LOG_LIKELIHOOD, ELBO):
            if capability in a.capabilities and not torch.equal(
                likelihood(a, capability, x), likelihood(b, capability, x)
            ):
                differing.append(capability)
    return differing


def outputs_text(model: GenerativeModel) -> str:
    return ", ".join(c for c in (SAMPLE, LOG_LIKELIHOOD, ELBO) if c in model.capabilities) or "(no outputs)"


def shape_text(info: DataInfo) -> str:
    c, h, w = info.shape
    return f"{c}x{h}x{w}, {info.levels} levels"
