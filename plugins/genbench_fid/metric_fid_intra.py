"""``intra_fid``: intra-class FID, the mean over classes c of the FID between generated images of class c and real
images of class c (Miyato & Koyama 2018, "cGANs with Projection Discriminator"; PyTorch-StudioGAN's iFID).

A model that draws sharp digits of a single kind can have a fair FID and a poor intra-class FID: each class's
images are compared with that class's real images only, so a class rendered badly or with little variety shows.

Where the classes of generated images come from. StudioGAN asks a class-conditional generator for each class in
turn (``cal_intra_class_fid`` in its ``src/worker.py``). genbench's models are unconditional (the contract has no
class-conditional sampling), so every generated image is given the class that the ``classifier`` extractor's
head predicts for it: the small CNN trained, once and seeded, on the data set's own labels, whose test accuracy is
recorded with the number. That classifier is the judge of what a "3" is; its mistakes move images between
classes. Real images keep their labels. A data set without labels has no classes, and the metric gives N/A there.

The features compared are the metric's ``extractor`` (as FID's: the classifier itself on labelled data). A class
for which fewer than ``min_class_samples`` generated images were assigned is counted in
``intra_fid_classes_missed`` (the model seldom or never draws it) and left out of the mean; every class's FID and
counts are in the provenance. The reference is the ``reference_split`` (the test split; StudioGAN uses train).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from genbench import EvalContext, GenbenchError, GenerativeModel, MetricResult, NotApplicable
from genbench.toolkit.checks import require_at_least
from genbench.toolkit.features import FeatureExtractor, generated_features
from genbench.toolkit.stats import feature_statistics, frechet_distance
from genbench_fid.sample_features import (
    FeatureMetricConfig,
    FeaturesWithLogits,
    check_extractor,
    real_features,
    sample_count,
    shared_extractor,
    shared_sample_outputs,
    validate,
)

KEY_METRIC_INTRA_FID = "intra_fid"
KEY_METRIC_CLASSES_MISSED = "intra_fid_classes_missed"
#: The extractor whose head assigns generated images to classes.
LABELLER = "classifier"


@dataclass
class IntraFidConfig(FeatureMetricConfig):
    min_class_samples: int = 2  # generated images a class needs for its FID (a covariance needs two)

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, 2, "min_class_samples")


def _config(ctx: EvalContext) -> IntraFidConfig:
    config = ctx.config if isinstance(ctx.config, IntraFidConfig) else IntraFidConfig()
    validate(config, KEY_METRIC_INTRA_FID)
    if config.repeats != 1 or config.n_real is not None or config.bootstrap:
        raise GenbenchError(
            "intra_fid: repeats, n_real and bootstrap are not supported (one evaluation against every real image of "
            "each class); leave them unset for this metric"
        )
    return config


def check_intra_fid(ctx: EvalContext) -> None:
    """Before any cell runs: the options, and on labelled data the extractor and the classifier can load."""
    config = _config(ctx)
    if unlabelled_reason(ctx) is None:
        check_extractor(config, ctx, KEY_METRIC_INTRA_FID)
        check_extractor(dataclasses.replace(config, extractor=LABELLER), ctx, KEY_METRIC_INTRA_FID)


def unlabelled_reason(ctx: EvalContext) -> str | None:
    dataset = ctx.dataset
    if dataset.train.labels is None or dataset.test.labels is None:
        return (
            f"data set {dataset.name!r} has no labels: intra-class FID compares each class's generated images with "
            "that class's real ones"
        )
    return None


def compute_intra_fid(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    config = _config(ctx)
    reason = unlabelled_reason(ctx)
    if reason is not None:
        raise NotApplicable(reason)
    extractor = shared_extractor(config, ctx)
    labeller = shared_extractor(dataclasses.replace(config, extractor=LABELLER), ctx)
    real, reference = real_features(extractor, config, ctx)
    real_labels = getattr(ctx.dataset, config.reference_split).labels
    fake, fake_classes = generated_features_and_classes(model, extractor, labeller, real.shape[1], config, ctx)
    per_class = intra_class_distances(fake, fake_classes, real, real_labels, config.min_class_samples)
    measured = [entry["fid"] for entry in per_class.values() if entry["fid"] is not None]
    if not measured:
        raise NotApplicable(
            f"no class got {config.min_class_samples} of the {len(fake)} generated images from the classifier"
        )
    missed = [c for c, entry in per_class.items() if entry["fid"] is None]
    provenance = {
        "extractor": extractor.name,
        "extractor_identity": extractor.identity,
        "classes_from": (
            f"generated images: argmax of the '{LABELLER}' extractor's head (trained on the data set's labels); "
            "real images: their labels"
        ),
        "classifier_identity": labeller.identity,
        "n_real": len(real),
        "n_fake": len(fake),
        "min_class_samples": config.min_class_samples,
        "classes_missed": missed,
        "worst_class": max((c for c in per_class if c not in missed), key=lambda c: per_class[c]["fid"]),
        "per_class": per_class,
        "reference": f"{ctx.dataset.name} {config.reference_split} split, fingerprint {reference['fingerprint']}",
        "reference_features_key": reference["cache_key"],
        "batch_size": config.batch_size,
    }
    values = {KEY_METRIC_INTRA_FID: sum(measured) / len(measured), KEY_METRIC_CLASSES_MISSED: float(len(missed))}
    return MetricResult(values, provenance)


def intra_class_distances(
    fake: torch.Tensor, fake_classes: torch.Tensor, real: torch.Tensor, real_labels: torch.Tensor, min_fake: int
) -> dict[str, dict[str, Any]]:
    """For every class of the real labels: the FID of its generated and real features (None with fewer than
    ``min_fake`` generated images of it), and both counts. Keys are the class numbers as strings (JSON)."""
    per_class: dict[str, dict[str, Any]] = {}
    for label in sorted(set(real_labels.tolist())):
        real_c, fake_c = real[real_labels == label], fake[fake_classes == label]
        if len(real_c) < 2:
            raise GenbenchError(f"intra_fid: class {label} has {len(real_c)} real image(s); a covariance needs two")
        fid = None
        if len(fake_c) >= min_fake:
            mu_fake, sigma_fake = feature_statistics(fake_c)
            mu_real, sigma_real = feature_statistics(real_c)
            fid = frechet_distance(mu_fake, sigma_fake, mu_real, sigma_real)
        per_class[str(label)] = {"fid": fid, "n_fake": len(fake_c), "n_real": len(real_c)}
    return per_class


def generated_features_and_classes(
    model: GenerativeModel,
    extractor: FeatureExtractor,
    labeller: FeatureExtractor,
    width: int,
    config: IntraFidConfig,
    ctx: EvalContext,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (``width`` wide) of the generated images and the class the labeller gives each, from one set of
    samples.

    With the classifier as the extractor these are the cell's shared samples (FID's, KID's); with another
    extractor each batch goes through both networks before the next is drawn, so that the classes belong to the
    very images whose features are compared."""
    joint = labeller.features
    if not isinstance(joint, FeaturesWithLogits):
        raise GenbenchError(f"intra_fid: extractor {LABELLER!r} gives no class logits to assign classes with")
    if extractor.identity == labeller.identity:
        outputs = shared_sample_outputs(model, extractor, config, ctx)
        assert outputs.logits is not None
        return outputs.features, outputs.logits.argmax(dim=1)

    def features_and_logits(images: torch.Tensor) -> torch.Tensor:
        features = extractor.features(images).detach().to("cpu", torch.float64)
        return torch.cat([features, joint.both(images)[1].to("cpu", torch.float64)], dim=1)

    both = FeatureExtractor(extractor.name, features_and_logits, extractor.identity)
    n = sample_count(config, ctx)
    key = f"genbench_fid intra_fid samples {extractor.identity} {labeller.identity} n={n} batch={config.batch_size}"
    combined: torch.Tensor = ctx.remember(
        key,
        lambda: generated_features(
            model, both, n, config.batch_size, ctx.generator, ctx.dataset.test.shape, progress=ctx.progress
        ),
    )
    return combined[:, :width].contiguous(), combined[:, width:].argmax(dim=1)
