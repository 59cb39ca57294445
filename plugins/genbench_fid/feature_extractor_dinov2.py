"""``dinov2``: the 1024-d CLS token of DINOv2 ViT-L/14 (Oquab et al. 2023) at 224x224, as dgm-eval computes it.

Stein et al. (NeurIPS 2023, "Exposing flaws of generative model evaluation metrics") found that Inception
features disagree with human judgement of modern generative models, and that the Fréchet distance on these
features agrees with it; their code, layer6ai-labs/dgm-eval, defines the features: images resized to 224x224 with
bicubic interpolation (``DINOv2Encoder.transform`` in ``dgm_eval/models/dinov2.py``), normalised with the ImageNet
mean (0.485, 0.456, 0.406) and deviation (0.229, 0.224, 0.225), and the network's output, which for DINOv2 is the
CLS token after the final LayerNorm. FID computed on them is the literature's FD_DINOv2.

The architecture is timm's ``vit_large_patch14_dinov2``, built for 224x224 (16x16 patches). The published
weights carry position embeddings for 518x518 (37x37 patches); they are resampled once, as DINOv2's own forward
pass resamples them for a 224 image (``interpolate_pos_encoding`` in facebookresearch/dinov2: bicubic, without
antialiasing, to a grid of 16 + 0.1 to avoid a floating-point off-by-one), so the features equal those of the
torch.hub model that dgm-eval runs. Weights: see ``feature_extractor_pretrained``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from genbench import Dataset, EvalContext
from genbench_fid.feature_extractor_pretrained import (
    Preprocessing,
    PublishedWeights,
    check_images,
    library,
    load_into,
    read_weights,
    weights_identity,
    weights_path,
)

WEIGHTS = PublishedWeights(
    extractor="dinov2",
    network="DINOv2 ViT-L/14",
    option="dinov2_weights",
    variable="GENBENCH_DINOV2_WEIGHTS",
    # timm's pretrained config of vit_large_patch14_dinov2.lvd142m names this hub repository (hf_hub_id).
    repo="timm/vit_large_patch14_dinov2.lvd142m",
    filename="model.safetensors",
)
#: dgm-eval's input: 224x224, bicubic, ImageNet mean and standard deviation (dgm_eval/models/dinov2.py).
PREPROCESSING = Preprocessing(size=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), center_crop=False)
#: DINOv2's interpolate_pos_encoding adds 0.1 to the target grid before computing the scale factor.
POSITION_OFFSET = 0.1


@dataclass(frozen=True)
class Architecture:
    timm_name: str = "vit_large_patch14_dinov2"
    patch_size: int = 14
    depth: int | None = None  # None: the published 24 blocks (tests build shallower networks of the same kind)

    def build(self) -> torch.nn.Module:
        timm = library("timm", WEIGHTS.extractor)
        depth = {} if self.depth is None else {"depth": self.depth}
        network: torch.nn.Module = timm.create_model(
            self.timm_name, pretrained=False, img_size=PREPROCESSING.size, num_classes=0, **depth
        )
        return network


ARCHITECTURE = Architecture()


def resample_position_embedding(position: torch.Tensor, grid: int) -> torch.Tensor:
    """(1, 1 + s², d) position embeddings (the CLS token's first) for a grid x grid patch image, as DINOv2's
    forward pass makes them from an s x s grid: bicubic with the scale factor (grid + 0.1) / s."""
    side = math.isqrt(position.shape[1] - 1)
    if side == grid:
        return position
    dim = position.shape[2]
    patches = position[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2).float()
    scale = (grid + POSITION_OFFSET) / side
    resampled = torch.nn.functional.interpolate(patches, scale_factor=(scale, scale), mode="bicubic")
    assert resampled.shape[-2:] == (grid, grid), resampled.shape
    resampled = resampled.permute(0, 2, 3, 1).reshape(1, grid * grid, dim).to(position.dtype)
    return torch.cat([position[:, :1], resampled], dim=1)


def dinov2_network(state: dict[str, torch.Tensor], path: Any, architecture: Architecture) -> torch.nn.Module:
    """timm's ViT with the file's tensors, its position embeddings resampled to the 224x224 grid."""
    grid = PREPROCESSING.size // architecture.patch_size
    if "pos_embed" in state:
        state = {**state, "pos_embed": resample_position_embedding(state["pos_embed"], grid)}
    return load_into(architecture.build, state, path, WEIGHTS)


def cls_features(network: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The CLS token after the final LayerNorm: timm's forward_features, then its head's pre-logits (global_pool
    'token', no fc_norm), which is DINOv2's ``x_norm_clstoken``."""
    features: torch.Tensor = network.forward_head(network.forward_features(inputs), pre_logits=True)  # type: ignore[operator]
    return features


def check_dinov2(dataset: Dataset, ctx: EvalContext) -> None:
    """Before any cell runs: gray or RGB images, timm installed, and a weights file found (no download)."""
    check_images(dataset, WEIGHTS.extractor)
    library("timm", WEIGHTS.extractor)
    weights_path(WEIGHTS, ctx)


def load_dinov2(dataset: Dataset, ctx: EvalContext) -> tuple[Any, dict[str, Any]]:
    """The extractor: uint8 images -> float64 (n, 1024) CLS features on the CPU."""
    check_images(dataset, WEIGHTS.extractor)
    timm = library("timm", WEIGHTS.extractor)
    path = weights_path(WEIGHTS, ctx)
    network = dinov2_network(read_weights(path, WEIGHTS), path, ARCHITECTURE).to(ctx.device)
    levels = dataset.train.levels

    @torch.inference_mode()
    def features(images: torch.Tensor) -> torch.Tensor:
        return cls_features(network, PREPROCESSING(images, levels, ctx.device)).double().cpu()

    identity = {
        "network": f"DINOv2 ViT-L/14, timm {timm.__version__} {ARCHITECTURE.timm_name}",
        "layer": "CLS token after the final LayerNorm, 1024-d",
        "preprocessing": PREPROCESSING.describe() + " (dgm-eval)",
        "position_embedding": f"resampled to {PREPROCESSING.size // ARCHITECTURE.patch_size}x"
        f"{PREPROCESSING.size // ARCHITECTURE.patch_size} as DINOv2's forward does (bicubic, offset 0.1)",
        **weights_identity(path),
    }
    return features, identity
