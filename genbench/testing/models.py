"""Conformance checks of a model plugin: what the runner and the metrics rely on, on tiny data, in seconds.

The model is built and fitted as the runner does it (global seeds, the factory, ``to(device)``, ``fit`` with a
seeded CPU generator), with its default config, one epoch, and any options the author gives.

The likelihoods checked are ``genbench.likelihoods_of(model)``: those the model declares, or those its
``log_likelihood`` and ``elbo`` imply. Each is checked for normalization over every image of tiny shapes, as its
kind allows, and every message names the likelihood by kind and name:

- exact: sum_x exp(log p(x)) = 1, two-sided, within float32 rounding;
- a bound (dequantized, variational, importance-weighted): sum_x exp(bound(x)) <= 1, one-sided. A bound is a
  random draw whose exp is at most p(x) in expectation, so the sum is averaged over draws (each image repeated in
  the batch) and may pass 1 by the Monte-Carlo error of that average and by float rounding, nothing else. An
  importance-weighted bound is checked with k = 2: cheap, and it still catches a sum of weights taken for a mean;
- a stochastic estimate: sum_x exp(estimate(x)) = 1, two-sided, within four standard errors of the sum (from the
  standard errors it reports) and float rounding.

A likelihood that says ``converges_with_k`` (an importance-weighted bound) is also checked to tighten from k = 1 to
k = 16 and, where the model has an exact likelihood, to stay below it on average.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from genbench.contract import (
    CAPABILITIES,
    ELBO,
    LIKELIHOOD_KINDS,
    LIKELIHOODS,
    LOG_LIKELIHOOD,
    SAMPLE,
    DataInfo,
    GenerativeModel,
    Likelihood,
    ModelSpec,
    likelihoods_of,
)
from genbench.runner.cell import seed_everything
from genbench.store.layout import RunDirectory
from genbench.testing.core import Check, ConformanceError, Skipped, options_text, require
from genbench.testing.likelihoods import check_convergence, check_log_likelihood, check_normalized, evaluate, label
from genbench.testing.subject import DEFAULT_SHAPE, ENUMERATION_SHAPES, TRAIN_IMAGES, ModelSubject, shape_text

#: The shape most checks use: the digits' (one channel, 8x8, 17 levels).


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
        # The name of earlier releases; it checks every likelihood that converges with k.
        "elbo_below_log_likelihood": lambda: check_convergence(subject, shape, enumeration_shapes[0]),
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
    """A declared capability's method works; an undeclared one is absent or raises NotImplementedError; declared
    likelihoods are well formed."""
    model, _ = subject.fitted(info)
    x = subject.batch(info)
    calls: dict[str, Callable[[], Any]] = {
        SAMPLE: lambda: model.sample(2, torch.Generator().manual_seed(0)),
        LOG_LIKELIHOOD: lambda: model.log_likelihood(x),
        ELBO: lambda: model.elbo(x, k=1),
    }
    serving = []
    for capability, call in calls.items():
        declared = capability in model.capabilities
        with torch.no_grad():
            try:
                call()
            except (NotImplementedError, AttributeError) as error:
                require(not declared, f"declares {capability!r} but {capability}() raised {type(error).__name__}")
                continue
        if not declared and capability in (LOG_LIKELIHOOD, ELBO) and LIKELIHOODS in model.capabilities:
            serving.append(f"{capability}()")  # a model that lists its likelihoods may compute one with it
            continue
        require(declared, f"{capability}() works but {capability!r} is not in capabilities; declare it")
    declared_likelihoods = getattr(model, LIKELIHOODS, None)
    if LIKELIHOODS in model.capabilities:
        require(declared_likelihoods is not None, f"declares {LIKELIHOODS!r} but has no `likelihoods` attribute")
        check_declared_likelihoods(declared_likelihoods)
    else:
        require(
            declared_likelihoods is None,
            f"has a `likelihoods` attribute but {LIKELIHOODS!r} is not in capabilities; declare it",
        )
    serve = f" ({' and '.join(serving)} too, undeclared: its likelihoods are those it lists)" if serving else ""
    return f"declares {sorted(model.capabilities)}, and exactly these methods work{serve}"


def check_declared_likelihoods(declared: Any) -> None:
    """A non-empty list of ``Likelihood`` of known kinds and distinct names; one that converges with k is a bound
    with a ``k`` setting."""
    require(
        isinstance(declared, list | tuple) and len(declared) > 0,
        f"`likelihoods` must be a non-empty list of genbench.Likelihood, got {declared!r}",
    )
    names = []
    for likelihood in declared:
        require(isinstance(likelihood, Likelihood), f"`likelihoods` holds {likelihood!r}, not a genbench.Likelihood")
        require(
            likelihood.kind in LIKELIHOOD_KINDS,
            f"likelihood {likelihood.name!r} is of kind {likelihood.kind!r}; use one of {list(LIKELIHOOD_KINDS)}",
        )
        require(callable(likelihood.compute), f"{label(likelihood)}: compute is not callable")
        require(
            not likelihood.converges_with_k or (likelihood.is_bound and "k" in likelihood.settings),
            f"{label(likelihood)} says converges_with_k: it must be a bound with a 'k' setting "
            f"(settings {dict(likelihood.settings)})",
        )
        names.append(likelihood.name)
    repeated = sorted({name for name in names if names.count(name) > 1})
    require(not repeated, f"likelihood names {repeated} appear more than once; a run selects a likelihood by name")


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
    """The outputs (samples under one seed, each likelihood of ``x``) on which two models disagree."""
    differing = []
    with torch.no_grad():
        if SAMPLE in a.capabilities:
            draws = [m.sample(4, torch.Generator().manual_seed(7)) for m in (a, b)]
            if not torch.equal(*draws):
                differing.append("samples")
    ours, theirs = likelihoods_of(a), likelihoods_of(b)
    if [label(likelihood) for likelihood in ours] != [label(likelihood) for likelihood in theirs]:
        return [*differing, "likelihoods"]
    for first, second in zip(ours, theirs, strict=True):
        (log_p_a, stderr_a), (log_p_b, stderr_b) = evaluate(first, x), evaluate(second, x)
        same_stderr = stderr_a is None or stderr_b is None or torch.equal(stderr_a, stderr_b)
        if not (torch.equal(log_p_a, log_p_b) and same_stderr):
            differing.append(label(first))
    return differing


def outputs_text(model: GenerativeModel) -> str:
    outputs = ([SAMPLE] if SAMPLE in model.capabilities else []) + [label(lik) for lik in likelihoods_of(model)]
    return ", ".join(outputs) or "(no outputs)"
