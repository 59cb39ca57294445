"""Sample quality against the held-out test split: ``fid`` and ``kid``, and the feature extractors they use.

Extractors are plugins too (``inception``, the standard; ``classifier``, trained on a labelled data set's own
labels), so a third party can add one and every feature-based metric can use it by name.
"""

from __future__ import annotations

import genbench
from genbench_fid.feature_extractor_classifier import check_classifier, load_classifier
from genbench_fid.feature_extractor_inception import check_inception, load_inception
from genbench_fid.metric_fid import KEY_METRIC_FID, FidConfig, check_fid, compute_fid
from genbench_fid.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, KidConfig, check_kid, compute_kid

SAMPLE = frozenset({genbench.SAMPLE})


@genbench.hookimpl
def genbench_metrics() -> list[genbench.MetricSpec]:
    return [
        genbench.MetricSpec(
            KEY_METRIC_FID,
            "Fréchet distance of sample and test-split features (extractor: classifier if labelled, else inception)",
            (genbench.Column(KEY_METRIC_FID, "distance²", higher_is_better=False),),
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
            ),
            SAMPLE,
            compute_kid,
            KidConfig,
            check=check_kid,
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


@genbench.hookimpl
def genbench_feature_extractors() -> list[genbench.ExtractorSpec]:
    return [
        genbench.ExtractorSpec(
            "inception",
            "InceptionV3 pool3, 2048-d: the standard FID features (torch-fidelity; weights downloaded or a local file)",
            load_inception,
            check=check_inception,
        ),
        genbench.ExtractorSpec(
            "classifier",
            "penultimate features of a small CNN trained (once, seeded, cached) on the data set's own labels",
            load_classifier,
            check=check_classifier,
        ),
    ]
