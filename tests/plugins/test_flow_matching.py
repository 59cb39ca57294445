"""Flow matching on tiny U-Nets: the conformance kit, the level grid, the dequantized likelihood against a closed
form, the OT coupling against brute force, NFE per solver, every supported shape, and a sweep that trains once."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import genbench
from conftest import cpu_context
from genbench import DataInfo, GenbenchError, ImageData, LikelihoodEstimate
from genbench.testing import MODEL, load_plugins, model_checks
from genbench_flow_matching import (
    FlowMatching,
    FlowMatchingConfig,
    FlowMatchingSampling,
    optimal_transport_order,
)

TINY: dict[str, Any] = {"base_channels": 4}


def tiny(info: DataInfo, **overrides: Any) -> FlowMatching:
    torch.manual_seed(0)
    return FlowMatching(FlowMatchingConfig(**{**TINY, "epochs": 1, **overrides}), info)


def estimate_of(model: FlowMatching, x: torch.Tensor, **settings: Any) -> LikelihoodEstimate:
    estimate = model.likelihoods[0].compute(x, **settings)
    assert isinstance(estimate, LikelihoodEstimate)
    return estimate


def images(info: DataInfo, n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, info.levels, (n, *info.shape), generator=generator, dtype=torch.uint8)


# ------------------------------------------------------------------------------------ conformance


def conformance_cases() -> list[Any]:
    spec = load_plugins().get(MODEL, "flow_matching")
    gray = model_checks(spec, TINY, shape=DataInfo((1, 8, 8), 17))
    color = model_checks(spec, {**TINY, "coupling": "ot"}, shape=DataInfo((3, 7, 7), 5))
    # The normalization check solves the likelihood's ODE for 16 draws of every image of two tiny shapes: tens of
    # seconds on one thread, so slow; the three-channel model is fitted anew, so all of its checks are slow.
    return [
        pytest.param(check, id=f"1x8x8-{check.name}", marks=[pytest.mark.slow] if check.name == "normalized" else [])
        for check in gray
    ] + [pytest.param(check, id=f"3x7x7-ot-{check.name}", marks=pytest.mark.slow) for check in color]


@pytest.mark.parametrize("check", conformance_cases())
def test_flow_matching_conforms_with_its_dequantized_bound(check: Any) -> None:
    check.run()  # raises ConformanceError on a failure; skips the importance-weighted convergence (not its kind)


def test_spec_declares_a_dequantized_likelihood_and_sample_options() -> None:
    spec = load_plugins().get(MODEL, "flow_matching")
    assert spec.sample_options_class is FlowMatchingSampling
    (likelihood,) = tiny(DataInfo((1, 8, 8), 17)).likelihoods
    assert likelihood.kind == genbench.DEQUANTIZED and likelihood.is_bound
    assert dict(likelihood.settings) == {"draws": 2, "rtol": 1e-5, "atol": 1e-5}


# ------------------------------------------------------------------------------------ the level grid


@pytest.mark.parametrize("levels", [2, 5, 17, 256])
def test_every_dequantized_value_quantizes_back_to_its_level(levels: int) -> None:
    model = tiny(DataInfo((1, 1, levels), levels))
    x = torch.arange(levels, dtype=torch.uint8).view(1, 1, 1, levels).expand(9, 1, 1, levels)
    # From just inside each bin's lower edge to just below its upper one: exactly on an edge, float rounding of
    # (k + u) * 2 / levels - 1 may land either side (a set of measure zero for a sample or a likelihood).
    u = torch.linspace(1e-4, 1 - 1e-4, 9).view(9, 1, 1, 1).expand_as(x)
    y = model.dequantized(x, u)
    assert float(y.min()) > -1.0 and float(y.max()) < 1.0
    assert torch.equal(model.quantized(y), x)
    outside = model.quantized(torch.tensor([-5.0, -1.0, 1.0, 7.0]))
    assert outside.tolist() == [0, 0, levels - 1, levels - 1]


# ------------------------------------------------------------------ the likelihood against a closed form

MU, SCALE = 0.3, 0.5


def gaussian_flow(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The OT flow from N(0, I) at t = 0 to N(MU, SCALE^2 I) at t = 1 (Lipman et al. 2023, eq. 20): per-sample t."""
    t = t.view(-1, *[1] * (x.dim() - 1))
    sigma = 1 - t + t * SCALE
    return (SCALE - 1) / sigma * (x - t * MU) + MU


def expected_bound(model: FlowMatching, x: torch.Tensor) -> torch.Tensor:
    """E_u[log N(y; MU, SCALE^2)] + D log w for y uniform on each value's bin [a, a + w): per value, the Gaussian's
    log-density at the bin's centre less the bin's variance w^2 / 12 over 2 SCALE^2, summed over the image."""
    width = model.bin_width
    centre = model.dequantized(x, torch.full(x.shape, 0.5))
    per_value = -0.5 * ((centre - MU).square() + width**2 / 12) / SCALE**2 - math.log(SCALE * math.sqrt(2 * math.pi))
    return per_value.flatten(1).sum(1) + x[0].numel() * math.log(width)


def test_dequantized_likelihood_of_a_gaussian_flow_matches_the_closed_form(monkeypatch: pytest.MonkeyPatch) -> None:
    info = DataInfo((1, 2, 3), 4)
    model = tiny(info)
    monkeypatch.setattr(model, "network", gaussian_flow)
    x = images(info, 48)
    estimate = estimate_of(model, x, draws=4)
    expected = expected_bound(model, x).double()
    z = (estimate.log_p.double() - expected) / estimate.stderr.double()
    # The divergence of this flow is the same for every probe, so the only noise is u's: each estimate is a mean of
    # four draws and its standard error is their spread. Centred on the closed form, not merely close to it:
    assert int((z.abs() > 4).sum()) <= 2
    assert abs(float((estimate.log_p.double() - expected).mean())) < 4 * float(estimate.stderr.double().mean()) / 6
    assert bool((estimate.log_p < 0).all())


def test_the_likelihood_is_a_fixed_function_of_weights_and_data() -> None:
    info = DataInfo((1, 7, 7), 3)
    model = tiny(info)
    x = images(info, 3)
    first, second = (estimate_of(model, x, rtol=1e-3, atol=1e-3) for _ in range(2))
    assert torch.equal(first.log_p, second.log_p) and bool((first.stderr > 0).all())
    with pytest.raises(ValueError, match="draws must be at least 2"):
        model.likelihoods[0].compute(x, draws=1)


# ------------------------------------------------------------------------------------ the OT coupling


def test_optimal_transport_order_is_the_cheapest_pairing() -> None:
    generator = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(6, 1, 2, 2, generator=generator), torch.randn(6, 1, 2, 2, generator=generator)

    def cost(order: Any) -> float:
        return float((x1 - x0[list(order)]).square().sum())

    best = min(itertools.permutations(range(6)), key=cost)
    found = optimal_transport_order(x0, x1)
    assert cost(found.tolist()) == pytest.approx(cost(best))
    assert sorted(found.tolist()) == list(range(6))


# ------------------------------------------------------------------------ network evaluations per sample


@pytest.mark.parametrize(("solver", "steps", "nfe"), [("euler", 4, 4), ("midpoint", 3, 6), ("rk4", 2, 8)])
def test_fixed_step_solvers_report_steps_times_stages(solver: str, steps: int, nfe: int) -> None:
    model = tiny(DataInfo((1, 7, 7), 5))
    model.sample_options = FlowMatchingSampling(solver=solver, steps=steps)  # type: ignore[arg-type]
    calls = count_network_calls(model)
    model.sample(3, torch.Generator().manual_seed(0))
    assert model.network_evaluations == nfe == len(calls)


def test_dopri5_reports_the_evaluations_it_spent_in_the_last_sampling() -> None:
    model = tiny(DataInfo((1, 7, 7), 5))
    model.sample_options = FlowMatchingSampling(solver="dopri5", rtol=1e-3, atol=1e-3)
    assert model.network_evaluations is None  # nothing measured yet
    calls = count_network_calls(model)
    model.sample(3, torch.Generator().manual_seed(0))
    assert model.network_evaluations == len(calls) > 0


def count_network_calls(model: FlowMatching) -> list[int]:
    calls: list[int] = []
    model.net.register_forward_hook(lambda module, args, output: calls.append(len(args[0])))
    return calls


# ------------------------------------------------------------------------------------ shapes and options


@pytest.mark.parametrize(("shape", "levels"), [((1, 7, 7), 2), ((3, 8, 8), 256), ((1, 28, 28), 17), ((3, 64, 64), 256)])
def test_trains_and_samples_in_range_on_every_supported_shape(shape: tuple[int, int, int], levels: int) -> None:
    info = DataInfo(shape, levels)
    model = tiny(info, batch_size=4)
    model.fit(ImageData(images(info, 4), levels), cpu_context())
    model.sample_options = FlowMatchingSampling(solver="euler", steps=2)
    samples = model.sample(3, torch.Generator().manual_seed(0))
    assert samples.dtype == torch.uint8 and tuple(samples.shape) == (3, *shape)
    assert int(samples.max()) < levels


def test_ot_coupling_trains() -> None:
    info = DataInfo((1, 7, 7), 5)
    model = tiny(info, coupling="ot", batch_size=8)
    curve: list[float] = []
    ctx = cpu_context()
    ctx.on_curve = lambda step, values: curve.append(values["cfm_loss"])
    model.fit(ImageData(images(info, 16), 5), ctx)
    assert len(curve) == 1 and math.isfinite(curve[0])


@pytest.mark.parametrize(
    ("cls", "options", "match"),
    [
        (FlowMatchingConfig, {"coupling": "sinkhorn"}, "coupling must be one of independent, ot"),
        (FlowMatchingConfig, {"sigma_min": 1.0}, "sigma_min must be in"),
        (FlowMatchingConfig, {"base_channels": 0}, "base_channels"),
        (FlowMatchingSampling, {"solver": "heun"}, "solver must be one of dopri5, euler"),
        (FlowMatchingSampling, {"steps": 0}, "steps"),
        (FlowMatchingSampling, {"rtol": 0.0}, "rtol"),
    ],
)
def test_bad_options_are_value_errors(cls: type, options: dict[str, Any], match: str) -> None:
    with pytest.raises((ValueError, GenbenchError), match=match):  # both are the user's one-line error
        cls(**options)


# ------------------------------------------------------------------------------------ a sweep of steps


@pytest.mark.slow  # trains on the digits and samples three times
def test_a_sweep_of_steps_trains_once_and_reports_each_nfe(tmp_path: Path) -> None:
    frame = genbench.run(
        ["flow_matching"],
        metrics=["sample_time"],
        model_options={"flow_matching": {**TINY, "epochs": 1}},
        sample_options={"flow_matching": {"solver": ["euler"], "steps": [4, 8, 16]}},
        results_dir=tmp_path,
    )
    run_dir = Path(frame.attrs["run_dir"])
    assert (frame["status"] == "ok").all() and len(frame) == 3
    records = [json.loads(path.read_text()) for path in (run_dir / "cells").glob("flow_matching-*.json")]
    records.sort(key=lambda record: record["sample_options"]["steps"])
    assert len({record["checkpoint_key"] for record in records}) == 1
    assert len(list((run_dir / "checkpoints").glob("*.safetensors"))) == 1
    assert [record["provenance"]["sample_time"]["nfe"] for record in records] == [4, 8, 16]
    table = (run_dir / "leaderboard.md").read_text().split("### Quality and sample time against network evaluations")[1]
    assert [line.split(" | ")[1] for line in table.splitlines() if line.startswith("| flow_matching")] == [
        "4",
        "8",
        "16",
    ]
