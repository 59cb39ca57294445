"""Sample quality from features of generated images: ``fid``, ``kid``, ``is`` (Inception Score) and
``precision_recall``, and the feature extractors they use. Within a cell they share one set of samples.

Extractors are plugins too (``inception``, the standard; ``classifier``, trained on a labelled data set's own
labels), so a third party can add one and every feature-based metric can use it by name.
"""

from __future__ import annotations

import genbench
from genbench_fid.feature_extractor_classifier import check_classifier, load_classifier
from genbench_fid.feature_extractor_clip import check_clip, load_clip
from genbench_fid.feature_extractor_dinov2 import check_dinov2, load_dinov2
from genbench_fid.feature_extractor_inception import check_inception, load_inception
from genbench_fid.metric_cmmd import KEY_METRIC_CMMD, CmmdConfig, compute_cmmd
from genbench_fid.metric_density_coverage import (
    KEY_METRIC_COVERAGE,
    KEY_METRIC_DENSITY,
    KEY_METRIC_DENSITY_COVERAGE,
    DensityCoverageConfig,
    compute_density_coverage,
)
from genbench_fid.metric_fid import (
    FID_EXTRACTOR,
    KEY_METRIC_FID,
    REFERENCE_OPTION,
    FidConfig,
    check_fid,
    compute_fid,
    distance_columns,
    fid_columns,
)
from genbench_fid.metric_fid_intra import (
    KEY_METRIC_CLASSES_MISSED,
    KEY_METRIC_INTRA_FID,
    IntraFidConfig,
    check_intra_fid,
    compute_intra_fid,
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
            "Fréchet distance of sample and real features (extractor: classifier if labelled, else inception); "
            "written as fid on InceptionV3 features, else as fd_<extractor> (fd_classifier)",
            # The columns of an FID proper; a run names them from its extractor (fid_columns).
            distance_columns(FID_EXTRACTOR),
            SAMPLE,
            compute_fid,
            FidConfig,
            check=check_fid,
            columns_for=fid_columns,
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
        genbench.MetricSpec(
            KEY_METRIC_DENSITY_COVERAGE,
            "density and coverage, k = 5 nearest-neighbour balls around real features (Naeem et al. 2020)",
            (
                genbench.Column(KEY_METRIC_DENSITY, "ratio", higher_is_better=True, description="about 1 if alike"),
                genbench.Column(KEY_METRIC_COVERAGE, "fraction", higher_is_better=True),
                *evaluation_columns(KEY_METRIC_DENSITY, "ratio"),
                *evaluation_columns(KEY_METRIC_COVERAGE, "fraction"),
            ),
            SAMPLE,
            compute_density_coverage,
            DensityCoverageConfig,
            check=extractor_check(DensityCoverageConfig, KEY_METRIC_DENSITY_COVERAGE),
        ),
        genbench.MetricSpec(
            KEY_METRIC_CMMD,
            "CMMD: biased RBF-kernel MMD² (sigma 10, x1000) of CLIP ViT-L/14-336 embeddings (Jayasumana et al. 2024)",
            (
                genbench.Column(KEY_METRIC_CMMD, "MMD² x 1000", higher_is_better=False),
                *evaluation_columns(KEY_METRIC_CMMD, "MMD² x 1000"),
            ),
            SAMPLE,
            compute_cmmd,
            CmmdConfig,
            check=extractor_check(CmmdConfig, KEY_METRIC_CMMD),
            # CLIP's weights are fetched by hand, and a ViT-L/14 at 336 px costs seconds per image on a CPU.
            in_default_run=False,
        ),
        genbench.MetricSpec(
            KEY_METRIC_INTRA_FID,
            "intra-class FID: mean over classes of the FID within a class; generated images classed by the classifier",
            (
                genbench.Column(KEY_METRIC_INTRA_FID, "distance²", higher_is_better=False),
                genbench.Column(
                    KEY_METRIC_CLASSES_MISSED,
                    "classes",
                    higher_is_better=False,
                    description="classes with too few generated images for an FID",
                ),
            ),
            SAMPLE,
            compute_intra_fid,
            IntraFidConfig,
            check=check_intra_fid,
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
        "--dinov2-weights",
        dest="dinov2_weights",
        metavar="PATH",
        help="the DINOv2 ViT-L/14 weights (safetensors) for extractor dinov2 (or GENBENCH_DINOV2_WEIGHTS; "
        "else the Hugging Face cache)",
    )
    options.addoption(
        "--clip-weights",
        dest="clip_weights",
        metavar="PATH",
        help="the CLIP ViT-L/14-336 weights (safetensors) for extractor clip and cmmd (or GENBENCH_CLIP_WEIGHTS; "
        "else the Hugging Face cache)",
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
        genbench.ExtractorSpec(
            "dinov2",
            "DINOv2 ViT-L/14 CLS token at 224 px, 1024-d (dgm-eval; FD_DINOv2 of Stein et al. 2023); local weights",
            load_dinov2,
            check=check_dinov2,
        ),
        genbench.ExtractorSpec(
            "clip",
            "CLIP ViT-L/14-336 image embedding, L2-normalised, 768-d: CMMD's features; local weights",
            load_clip,
            check=check_clip,
        ),
    ]
