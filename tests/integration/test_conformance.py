"""genbench.testing: every installed plugin passes the conformance checks, and each check fails where it should.

The first tests are parametrized over every registered plugin, so a newly registered one is checked without
editing this file; plugins that need a setting (a file, weights) get it from SETTINGS.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import TESTS
from genbench import DatasetOptions
from genbench.errors import PluginOutputError
from genbench.registry import DATASET, EXTRACTOR, METRIC, MODEL, Registry, load_plugins
from genbench.testing import (
    FAIL,
    PASS,
    SKIP,
    Outcome,
    checks_for,
    dataset_checks,
    extractor_checks,
    metric_checks,
    model_checks,
)
from genbench.testing.core import synthetic_images
from genbench.testing.subject import DEFAULT_SHAPE

INSTALLED = load_plugins()


#: Plugins whose conformance takes more than about 10 s here (FID trains its classifier; Inception is large;
#: DINOv2 and CLIP are ViT-L/14s; DDPM's and flow matching's ODE likelihoods are solved for every tiny image).
SLOW_TO_CHECK = frozenset({"fid", "inception", "dinov2", "clip", "ddpm", "flow_matching"})
#: Extractors whose setting is a file too large to make for every test here (random ViT-L/14 weights, about
#: 1.2 GB): made by the module's ``random_vit_weights`` only when their own check runs.
VIT_WEIGHTS = {"dinov2": "dinov2_weights", "clip": "clip_weights"}


def every(kind: Any) -> list[Any]:
    return [
        pytest.param(name, marks=pytest.mark.slow) if name in SLOW_TO_CHECK else name for name in INSTALLED.names(kind)
    ]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, random_inception_weights: Path) -> dict[str, dict[str, Any]]:
    """What the built-ins that need files get: a sample file, tiny MNIST and CIFAR-10 files, a folder, weights."""
    root = tmp_path_factory.mktemp("settings")
    samples = root / "samples.npz"
    np.savez(samples, images=synthetic_images(DEFAULT_SHAPE, 20)[0].numpy())
    from data_files import write_amat, write_folder, write_idx

    write_folder(root / "cifar")
    raw = root / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))
    write_amat(root / "binarized_mnist")
    from PIL import Image

    (root / "folder").mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (5, 5), dtype=np.uint8), mode="L").save(root / "folder" / f"{i}.png")
    weights = {"inception_weights": str(random_inception_weights)}
    return {
        "samples": {"model_options": {"path": str(samples)}},
        "mnist": {"dataset_options": DatasetOptions(root=root / "mnist")},
        "mnist_dynamic": {"dataset_options": DatasetOptions(root=root / "mnist")},
        "binarized_mnist": {"dataset_options": DatasetOptions(root=root / "binarized_mnist")},
        "cifar10": {"dataset_options": DatasetOptions(root=root / "cifar")},
        "folder": {"dataset_options": DatasetOptions(root=root / "folder")},
        "inception": {"plugin_options": weights},
        "fid": {"plugin_options": weights},
        "kid": {"plugin_options": weights},
        "is": {"plugin_options": weights},
        "precision_recall": {"plugin_options": weights},
        # cmmd's own computation, on the classifier FID trains anyway (its default, clip, is checked as an extractor)
        "cmmd": {"plugin_options": weights, "metric_options": {"extractor": "classifier"}},
    }


@pytest.fixture(scope="module")
def random_vit_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The dinov2 and clip networks at their published size with random weights, as safetensors files."""
    from safetensors.torch import save_file

    from genbench_fid.feature_extractor_clip import ARCHITECTURE as CLIP
    from genbench_fid.feature_extractor_dinov2 import ARCHITECTURE as DINOV2

    folder = tmp_path_factory.mktemp("vit-weights")
    paths = {}
    for name, network in (("dinov2", DINOV2.build()), ("clip", CLIP.build_clip())):
        paths[name] = str(folder / f"{name}.safetensors")
        save_file({key: value.contiguous() for key, value in network.state_dict().items()}, paths[name])
    return paths


def outcomes(name: str, settings: dict[str, dict[str, Any]], cache: Path) -> list[Outcome]:
    checks = checks_for(name, INSTALLED, cache_dir=cache, **settings.get(name, {}))
    return [check.outcome() for check in checks]


def assert_conforms(results: list[Outcome]) -> None:
    failed = [o.line() for o in results if o.status == FAIL]
    assert not failed, "\n".join(failed)
    unset = [o.line() for o in results if o.status == SKIP and "needs a setting" in o.detail]
    assert not unset, "give this plugin its setting in SETTINGS:\n" + "\n".join(unset)
    assert any(o.status == PASS for o in results)


@pytest.mark.parametrize("name", every(MODEL))
def test_every_model_conforms(name: str, settings: dict[str, dict[str, Any]], shared_cache: Path) -> None:
    assert_conforms(outcomes(name, settings, shared_cache))


@pytest.mark.slow
@pytest.mark.parametrize("name", every(METRIC))
def test_every_metric_conforms(name: str, settings: dict[str, dict[str, Any]], shared_cache: Path) -> None:
    assert_conforms(outcomes(name, settings, shared_cache))


@pytest.mark.parametrize("name", every(DATASET))
def test_every_dataset_conforms(name: str, settings: dict[str, dict[str, Any]], shared_cache: Path) -> None:
    assert_conforms(outcomes(name, settings, shared_cache))


@pytest.mark.parametrize("name", every(EXTRACTOR))
def test_every_extractor_conforms(
    name: str, settings: dict[str, dict[str, Any]], shared_cache: Path, request: pytest.FixtureRequest
) -> None:
    if name in VIT_WEIGHTS:
        weights = {VIT_WEIGHTS[name]: request.getfixturevalue("random_vit_weights")[name]}
        settings = {**settings, name: {"plugin_options": weights}}
    assert_conforms(outcomes(name, settings, shared_cache))


# ------------------------------------------------------------------------------- the checks can fail


@pytest.fixture(scope="module")
def broken() -> Iterator[Registry]:
    yield load_plugins(["conformance_plugins"], autoload=False)


def statuses(checks: list[Any]) -> dict[str, str]:
    return {check.name: check.outcome().status for check in checks}


def test_a_model_with_likelihood_and_bound_passes_every_check(broken: Registry) -> None:
    assert set(statuses(model_checks(broken.get(MODEL, "mixture"))).values()) == {PASS}


@pytest.mark.parametrize(
    ("model", "failing"),
    [
        ("unnormalized", {"normalized"}),
        # Above the exact likelihood at every k: its probabilities sum to e^0.5 too.
        ("bound_above", {"normalized", "elbo_below_log_likelihood"}),
        ("wide_samples", {"sample"}),
        ("forgets_weights", {"checkpoint"}),
        ("unseeded", {"determinism"}),
        ("undeclared", {"capabilities"}),
        ("overstated_bound", {"normalized"}),
        ("exact_halved", {"normalized"}),
        ("biased_estimate", {"normalized"}),
        ("unknown_kind", {"capabilities", "normalized"}),
    ],
)
def test_each_model_check_catches_its_mistake(broken: Registry, model: str, failing: set[str]) -> None:
    results = statuses(model_checks(broken.get(MODEL, model)))
    assert {name for name, status in results.items() if status == FAIL} == failing


@pytest.mark.parametrize("model", ["variational", "heavy_tailed_bound", "estimated"])
def test_a_correct_declared_bound_or_estimate_passes_every_check(broken: Registry, model: str) -> None:
    # heavy_tailed_bound's one sum of exp(bound) over every image is far from 1 (log-normal weights of sigma 2, like
    # a diffusion model's paths): a check of one draw within a tolerance would fail it.
    results = statuses(model_checks(broken.get(MODEL, model)))
    assert results.pop("elbo_below_log_likelihood") == SKIP  # none says converges_with_k
    assert set(results.values()) == {PASS}


def normalized_detail(registry: Registry, model: str) -> str:
    (check,) = [check for check in model_checks(registry.get(MODEL, model)) if check.name == "normalized"]
    return check.outcome().detail


def test_a_bound_is_checked_one_sided_and_exact_and_estimates_two_sided_each_named(broken: Registry) -> None:
    overstated = normalized_detail(broken, "overstated_bound")
    assert overstated.startswith("sum of exp(variational bound 'vlb') over all 256 images of 1x2x2, 4 levels is 1.6")
    assert "overstates the likelihood" in overstated
    # Below 1 is what a bound may be, but not an exact likelihood or an unbiased estimate.
    assert "variational bound 'vlb': 0.8" in normalized_detail(broken, "variational")
    assert normalized_detail(broken, "exact_halved").startswith("sum of exp(exact 'exact') over all 256 images")
    assert "is 0.500000, not 1 within 0.001: not normalized" in normalized_detail(broken, "exact_halved")
    biased = normalized_detail(broken, "biased_estimate")
    assert biased.startswith("sum of exp(stochastic estimate 'ode') over all 256 images of 1x2x2, 4 levels is 0.81")
    assert "4 standard errors of the sum" in biased
    # The importance-weighted bound a model's elbo implies is checked with k = 2, and its convergence with k.
    mixture = {check.name: check.outcome().detail for check in model_checks(broken.get(MODEL, "mixture"))}
    assert "exact 'exact': 1.00000 over all 256 images" in mixture["normalized"]
    assert "importance-weighted bound 'iwae'" in mixture["normalized"]
    assert mixture["elbo_below_log_likelihood"].startswith("importance-weighted bound 'iwae': k=16 - k=1 = ")


def test_metric_checks_catch_an_undeclared_column_and_a_swallowed_reason(broken: Registry) -> None:
    assert statuses(metric_checks(broken.get(METRIC, "extra_column"), broken))["columns"] == FAIL
    swallowed = statuses(metric_checks(broken.get(METRIC, "swallowed"), broken))
    assert swallowed == {"prepare_check": SKIP, "columns": PASS, "not_applicable": FAIL}


def test_dataset_and_extractor_checks_catch_a_moving_split_and_batch_dependence(broken: Registry) -> None:
    assert statuses(dataset_checks(broken.get(DATASET, "reshuffled")))["fixed_split"] == FAIL
    assert statuses(extractor_checks(broken.extractor("batch_normalized"), broken))["features"] == FAIL


def test_check_run_raises_for_pytest_and_skips_what_does_not_apply(broken: Registry) -> None:
    checks = {check.name: check for check in model_checks(broken.get(MODEL, "unnormalized"))}
    with pytest.raises(AssertionError, match="not normalized"):
        checks["normalized"].run()
    assert "1x8x8" in checks["fit"].run()
    gan_like = {check.name: check for check in model_checks(INSTALLED.get(MODEL, "gan"), {"width": 4})}
    with pytest.raises(pytest.skip.Exception, match="neither"):
        gan_like["normalized"].run()


# ------------------------------------------------------------------------------------- the command


def genbench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1", "PATH": ""}
    command = [sys.executable, "-m", "genbench.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow
def test_plugins_check_prints_one_line_per_check_and_exits_by_the_outcome() -> None:
    ok = genbench("plugins", "check", "independent")
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[0].startswith("PASS  model independent: fit - ")
    assert any(line.startswith("SKIP  model independent: elbo_below_log_likelihood") for line in lines)
    assert lines[-1] == "8 checks: 0 failed, 1 skipped"

    bad = genbench("plugins", "check", "unnormalized", "-p", "conformance_plugins")
    assert bad.returncode == 1
    assert any(line.startswith("FAIL  model unnormalized: normalized - sum of exp") for line in bad.stdout.splitlines())


@pytest.mark.slow
def test_plugins_check_reads_a_data_set_from_data_root(tmp_path: Path) -> None:
    from data_files import write_idx

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 4)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))
    without = genbench("plugins", "check", "mnist")
    assert without.returncode == 0 and without.stdout.startswith("SKIP  data set mnist: images - needs a setting")
    given = genbench("plugins", "check", "mnist", "--data-root", str(tmp_path))
    assert given.returncode == 0, given.stdout
    assert given.stdout.splitlines()[:2] == [
        "PASS  data set mnist: images - 12 train + 4 test uint8 images (1, 28, 28), 256 levels, JSON provenance",
        "PASS  data set mnist: fixed_split - two loads under different global seeds give identical train and test "
        "splits",
    ]


@pytest.mark.slow
def test_plugins_check_takes_the_options_a_plugin_needs(tmp_path: Path) -> None:
    samples = tmp_path / "images.npz"
    np.savez(samples, images=synthetic_images(DEFAULT_SHAPE, 12)[0].numpy())
    result = genbench("plugins", "check", "samples", "--option", f"path={samples}", "--option", "file_levels=17")
    assert result.returncode == 0, result.stdout
    assert "PASS  model samples: sample - " in result.stdout and "needs a setting" not in result.stdout


@pytest.mark.slow
def test_plugins_check_of_an_unknown_name_is_one_line_and_exit_2() -> None:
    result = genbench("plugins", "check", "pixelcn")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Did you mean 'pixelcnn'?" in result.stderr


def test_samples_off_the_cpu_are_refused_where_metrics_use_them() -> None:
    from genbench.toolkit.features import FeatureExtractor, generated_features

    class OnMeta:
        capabilities = frozenset({"sample"})

        def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
            return torch.zeros(n, *DEFAULT_SHAPE.shape, dtype=torch.uint8, device="meta")

    extractor = FeatureExtractor("flat", lambda images: images.flatten(1).double(), {})
    with pytest.raises(PluginOutputError, match=r"\(2, 1, 8, 8\) on meta; expected a uint8 tensor .* on the CPU"):
        generated_features(OnMeta(), extractor, 2, 2, torch.Generator(), DEFAULT_SHAPE.shape)  # type: ignore[arg-type]


def test_synthetic_tensors_are_seeded() -> None:
    assert torch.equal(synthetic_images(DEFAULT_SHAPE, 5)[0], synthetic_images(DEFAULT_SHAPE, 5)[0])


def test_determinism_is_checked_on_the_cpu_whatever_the_device(registry: Registry) -> None:
    # On a GPU two identical fits may differ in the last bits (cuDNN's per-process choices), so the check of a
    # model's seeding runs its fits on the CPU; asked for with a CUDA device, it needs no GPU and says so.
    from genbench.testing.models import check_determinism
    from genbench.testing.subject import ModelSubject

    subject = ModelSubject(registry.get(MODEL, "independent"), {}, torch.device("cuda"))
    message = check_determinism(subject, DEFAULT_SHAPE)
    assert "(on the CPU; GPU kernels may round differently run to run)" in message
    assert "identical state_dict" in message
