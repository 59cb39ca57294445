"""The runner's checks of what a model returns (genbench.runner.guard), on tiny fake models; and what the store
makes of a failed cell and of its metrics' times."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import genbench
from genbench import CellRecord, DataInfo, GenbenchError, Likelihood, LikelihoodEstimate, NotApplicable
from genbench.errors import PluginOutputError
from genbench.runner.guard import checked_model
from genbench.store.frame import records_frame
from genbench.store.records import record_problem
from genbench.toolkit.features import FeatureExtractor, extract_features

INFO = DataInfo((1, 2, 2), 17)  # D = 4 values of 17 levels: a uniform model's log p is -4 ln 17


class Fake:
    """A model that returns whatever it is given to return."""

    capabilities = frozenset({genbench.SAMPLE, genbench.LOG_LIKELIHOOD})
    sampler_name = "plain"  # a plugin's own attribute, which metrics read

    def __init__(self, images: Any = None, log_p: Any = None) -> None:
        self.images = images
        self.log_p = log_p

    def sample(self, n: int, generator: torch.Generator) -> Any:
        if self.images is None:
            raise NotApplicable("no images stored")
        return self.images

    def log_likelihood(self, x: torch.Tensor) -> Any:
        return self.log_p

    def state_dict(self) -> dict[str, Any]:
        return {"weights": torch.zeros(1)}


def uniform_log_p(n: int) -> torch.Tensor:
    return torch.full((n,), -INFO.dims * math.log(INFO.levels))


def checked(model: Any) -> Any:
    return checked_model(model, "fake", INFO)


def images(n: int = 3, top: int = 16, dtype: torch.dtype = torch.uint8, shape: tuple[int, ...] = INFO.shape) -> Any:
    return torch.full((n, *shape), top, dtype=dtype)


def test_correct_outputs_pass_unchanged_and_everything_else_is_the_models() -> None:
    model = Fake(images(), uniform_log_p(3))
    guarded = checked(model)
    assert guarded.sample(3, torch.Generator()) is model.images
    assert guarded.log_likelihood(images()) is model.log_p
    assert guarded.capabilities == model.capabilities and guarded.sampler_name == "plain"
    assert set(guarded.state_dict()) == {"weights"}
    assert not hasattr(guarded, "elbo")  # a method the model lacks is missing here too
    guarded.temperature = 0.5  # written to the model, where its own code reads it
    assert model.temperature == 0.5  # type: ignore[attr-defined]
    with pytest.raises(NotApplicable, match="no images stored"):
        checked(Fake()).sample(3, torch.Generator())


@pytest.mark.parametrize(
    ("returned", "sentence"),
    [
        (images(top=255), "sample(3) returned values up to 255 on data with 17 levels; expected uint8 in 0..16"),
        (images(dtype=torch.float32), r"sample(3) returned torch.float32 (3, 1, 2, 2) on cpu; expected a uint8 tensor"),
        (images(n=2), "sample(3) returned torch.uint8 (2, 1, 2, 2) on cpu; expected a uint8 tensor (3, 1, 2, 2)"),
        (images(shape=(3, 2, 2)), "returned torch.uint8 (3, 3, 2, 2) on cpu; expected a uint8 tensor (3, 1, 2, 2)"),
        (images().to("meta"), "returned torch.uint8 (3, 1, 2, 2) on meta; expected a uint8 tensor (3, 1, 2, 2) on the"),
        (images().numpy(), "sample(3) returned a ndarray; expected a uint8 tensor (3, 1, 2, 2) on the CPU in 0..16"),
    ],
    ids=["levels", "floats", "count", "channels", "device", "numpy"],
)
def test_a_wrong_sample_is_one_sentence_naming_model_call_and_expectation(returned: Any, sentence: str) -> None:
    with pytest.raises(PluginOutputError) as raised:
        checked(Fake(images=returned)).sample(3, torch.Generator())
    assert str(raised.value).startswith("model 'fake' ") and sentence in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("returned", "sentence"),
    [
        (-uniform_log_p(3), "returned log p up to 11.33 nats; expected log p <= 0"),
        (torch.tensor([-1.0, math.nan, -1.0]), "returned NaN or infinite log p for 1 of 3 images"),
        (torch.tensor([-1.0, -math.inf, -1.0]), "returned NaN or infinite log p for 1 of 3 images"),
        (uniform_log_p(3).sum(), "returned torch.float32 (); expected a float tensor (3,) of log p(x) in nats"),
        (uniform_log_p(3)[:, None], "returned torch.float32 (3, 1); expected a float tensor (3,)"),
        (torch.tensor([-1, -1, -1]), "returned torch.int64 (3,); expected a float tensor (3,)"),
        ([-1.0, -1.0, -1.0], "returned a list; expected a float tensor (3,) of log p(x) in nats"),
        # Over 4 times a uniform model's log2(17) = 4.09 bits/dim: the units are wrong, not the training.
        (torch.full((3,), -50.0), "returned 18.03 bits/dim on average, over 4 times a uniform model's 4.087"),
    ],
    ids=["positive", "nan", "infinite", "scalar", "column", "integers", "list", "units"],
)
def test_a_wrong_log_likelihood_is_one_sentence(returned: Any, sentence: str) -> None:
    with pytest.raises(PluginOutputError) as raised:
        checked(Fake(log_p=returned)).log_likelihood(images())
    assert str(raised.value).startswith("model 'fake' log_likelihood(3 images) ") and sentence in str(raised.value)


def test_float_rounding_just_above_zero_passes_and_a_poor_model_is_no_unit_mistake() -> None:
    rounding = torch.full((3,), 0.9e-4 * INFO.dims)  # a near-certain model, summed in float32
    poor = torch.full((3,), -3.9 * INFO.dims * math.log(INFO.levels))  # 3.9 times worse than uniform
    for log_p in (rounding, poor):
        assert checked(Fake(log_p=log_p)).log_likelihood(images()) is log_p


def test_elbo_and_declared_likelihoods_are_checked_with_their_settings_named() -> None:
    class Bound(Fake):
        capabilities = frozenset({genbench.ELBO, genbench.LIKELIHOODS})

        def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
            return -uniform_log_p(len(x))

        @property
        def likelihoods(self) -> list[Likelihood]:
            ode = LikelihoodEstimate(torch.full((3,), math.nan), torch.ones(3))
            return [Likelihood("ode", genbench.STOCHASTIC_ESTIMATE, lambda x, rtol: ode, {"rtol": 1e-5})]

    guarded = checked(Bound())
    with pytest.raises(PluginOutputError, match=r"^model 'fake' elbo\(3 images, k=100\) returned log p up to"):
        guarded.elbo(images(), k=100)
    (ode,) = guarded.likelihoods
    assert ode.name == "ode" and ode.settings == {"rtol": 1e-5}
    with pytest.raises(PluginOutputError, match=r"likelihoods\['ode'\]\.compute\(3 images, rtol=1e-05\) returned NaN"):
        ode.compute(images(), rtol=1e-5)
    assert [likelihood.name for likelihood in genbench.likelihoods_of(guarded)] == ["ode"]


def test_a_broken_output_is_not_a_user_mistake() -> None:
    # GenbenchError stops the run (exit 2); a plugin's broken output fails its cell only.
    assert not issubclass(PluginOutputError, GenbenchError)


@pytest.mark.parametrize(
    ("features", "sentence"),
    [
        (lambda x: torch.full((len(x), 2), math.nan), "returned NaN or infinite features for 3 of 3 images"),
        (lambda x: torch.zeros(len(x)), "returned shape (3,) for 3 images; it must return (n, d)"),
    ],
    ids=["nan", "shape"],
)
def test_broken_features_fail_the_cell_not_the_run(features: Any, sentence: str) -> None:
    extractor = FeatureExtractor("broken", features, {})
    with pytest.raises(PluginOutputError) as raised:
        extract_features(extractor, images(), batch_size=8)
    assert str(raised.value).startswith(f"feature extractor 'broken' {sentence}")


# ------------------------------------------------------------------------------------------ the store


def record(status: str, metric_times: dict[str, float]) -> CellRecord:
    return CellRecord(
        f"fake-digits-seed0-{status}",
        "fake",
        "digits",
        0,
        status,
        {},
        "key",
        metrics={"nll": 100.0},
        metric_times=metric_times,
    )


def test_a_failed_cells_values_stay_in_its_record_and_out_of_the_table() -> None:
    frame = records_frame([record("ok", {"nll": 1.5, "bpd": 0.25}), record("failed", {"nll": 2.0})], ["nll"])
    assert list(frame["nll"].isna()) == [False, True]
    assert list(frame["eval_time"]) == [1.75, 2.0]


def test_records_without_metric_times_still_load_and_show_no_eval_time() -> None:
    old = record("ok", {}).to_dict()
    del old["metric_times"]  # a record written before the field existed
    assert record_problem(old, old["cell_id"]) is None
    assert math.isnan(records_frame([CellRecord.from_dict(old)], ["nll"])["eval_time"][0])
    damaged = {**old, "metric_times": {"nll": "fast"}}
    assert record_problem(damaged, old["cell_id"]) == "not a cell record: a metric time is not a finite number"
