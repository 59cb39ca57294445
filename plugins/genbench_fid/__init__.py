"""Sample quality from features of generated images: ``fid``, ``kid``, ``is`` (Inception Score) and
``precision_recall``, and the feature extractors they use. Within a cell they share one set of samples.

Extractors are plugins too (``inception``, the standard; ``classifier``, trained on a labelled data set's own
labels), so a third party can add one and every feature-based metric can use it by name.
"""

from __future__ import annotations

import genbench
from genbench_fid.feature_extractor_classifier import check_classifier, load_classifier
from genbench_fid.feature_extractor_inception import check_inception, load_inception
from genbench_fid.metric_fid import (
    KEY_METRIC_FD_INFINITY,
    KEY_METRIC_FID,
    REFERENCE_OPTION,
    FidConfig,
    check_fid,
    compute_fid,
)
from genbench_fid.metric_is import KEY_METRIC_IS_MEAN, KEY_METRIC_IS_STD, IsConfig, compute_is
from genbench_fid.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, KidConfig, check_kid, compute_kid
from genbench_fid.metric_prc import (
    KEY_METRIC_PRECISION,
    KEY_METRIC_RECALL,
    PrecisionRecallConfig,
    compute_precision_recall,
)
from genbench_fid.sample_features import evaluation_columns, extractor_check

SAMPLE = frozenset({genbench.SAMPLE})


@genbench.hookimpl
def genbench_metrics() -> list[genbench.MetricSpec]:
    return [
        genbench.MetricSpec(
            KEY_METRIC_FID,
            "Fréchet distance of sample and real features (extractor: classifier if labelled, else inception)",
            (
                genbench.Column(KEY_METRIC_FID, "distance²", higher_is_better=False, rank=0),
                *evaluation_columns(KEY_METRIC_FID, "distance²"),
                genbench.Column(
                    KEY_METRIC_FD_INFINITY, "distance²", False, "FID extrapolated to 1/N = 0", optional=True
                ),
            ),
            SAMPLE,
            compute_fid,
            FidConfig,
            check=check_fid,
        ),
        genbench.MetricSpec(
            KEY_METRIC_KID_MEAN,
            "kernel inception distance: unbiased polynomial-kernel MMD² over subsets (Binkowski et al. 2018)",
            (
                genbench.Column(KEY_METRIC_KID_MEAN, "MMD²", higher_is_better=False),
                genbench.Column(KEY_METRIC_KID_STD, "MMD²", higher_is_better=False, description="spread over subsets"),
                *evaluation_columns(KEY_METRIC_KID_MEAN, "MMD²"),
            ),
            SAMPLE,
            compute_kid,
            KidConfig,
            check=check_kid,
        ),
        genbench.MetricSpec(
            KEY_METRIC_IS_MEAN,
            "Inception Score exp(E KL(p(y|x) || p(y))) over 10 splits (Salimans et al. 2016), via torch-fidelity",
            (
                genbench.Column(KEY_METRIC_IS_MEAN, "score", higher_is_better=True),
                genbench.Column(KEY_METRIC_IS_STD, "score", higher_is_better=False, description="spread over splits"),
                *evaluation_columns(KEY_METRIC_IS_MEAN, "score"),
            ),
            SAMPLE,
            compute_is,
            IsConfig,
            check=extractor_check(IsConfig, KEY_METRIC_IS_MEAN),
        ),
        genbench.MetricSpec(
            "precision_recall",
            "improved precision and recall, k = 3 nearest-neighbour balls (Kynkäänniemi et al. 2019)",
            (
                genbench.Column(KEY_METRIC_PRECISION, "fraction", higher_is_better=True),
                genbench.Column(KEY_METRIC_RECALL, "fraction", higher_is_better=True),
                *evaluation_columns(KEY_METRIC_PRECISION, "fraction"),
                *evaluation_columns(KEY_METRIC_RECALL, "fraction"),
            ),
            SAMPLE,
            compute_precision_recall,
            PrecisionRecallConfig,
            check=extractor_check(PrecisionRecallConfig, "precision_recall"),
        ),
    ]


@genbench.hookimpl
def genbench_addoption(options: genbench.OptionGroup) -> None:
    options.addoption(
        "--inception-weights",
        dest="inception_weights",
        metavar="PATH",
        help="a local file of the FID InceptionV3 weights, for fid and kid offline (or GENBENCH_INCEPTION_WEIGHTS)",
    )
    options.addoption(
        "--fid-reference",
        dest=REFERENCE_OPTION,
        metavar="NPZ",
        help="precomputed FID reference statistics (mu, sigma in pytorch-fid's .npz layout; see genbench stats)",
    )


@genbench.hookimpl
def genbench_feature_extractors() -> list[genbench.ExtractorSpec]:
    return [
        genbench.ExtractorSpec(
            "inception",
            "InceptionV3 pool3, 2048-d: the standard FID features (torch-fidelity; weights downloaded or a local file)",
            load_inception,
            check=check_inception,
            default_rank=1,
        ),
        genbench.ExtractorSpec(
            "classifier",
            "penultimate features of a small CNN trained (once, seeded, cached) on the data set's own labels",
            load_classifier,
            check=check_classifier,
            # On labelled data a classifier trained on the data's own labels sees what Inception cannot in 8x8 digits.
            default_rank=0,
            needs_labels=True,
        ),
    ]
