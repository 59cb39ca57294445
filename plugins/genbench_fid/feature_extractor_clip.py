"""``clip``: the 768-d image embedding of OpenAI's CLIP ViT-L/14 at 336x336, L2-normalised, as CMMD computes it.

Jayasumana et al. (2024) measure CMMD on these embeddings; their code (google-research/google-research, ``cmmd``)
reads each image, crops the largest centred square, resizes it to 336x336 with PIL's bicubic filter
(``io_util.py``), scales it to [0, 1], normalises it with CLIP's mean (0.48145466, 0.4578275, 0.40821073) and
deviation (0.26862954, 0.26130258, 0.27577711) (scenic's ``clip/model.py``, ``IMAGE_MEAN``/``IMAGE_STD``), and
takes the image tower's projected embedding divided by its norm (scenic's ``CLIP.__call__`` normalises by
default, and ``embedding.py`` calls it that way).

The network is open_clip's ``ViT-L-14-336`` with QuickGELU activations, which OpenAI's weights were trained with
(open_clip's pretrained config of ``('ViT-L-14-336', 'openai')`` sets ``quick_gelu``; without it the same
weights give other features). Only the image tower is kept; its features are open_clip's
``CLIP.encode_image(normalize=True)``. Weights: see ``feature_extractor_pretrained``; the file open_clip itself
fetches holds both towers, and the text tower's tensors are skipped.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
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
    extractor="clip",
    network="CLIP ViT-L/14-336 (OpenAI)",
    option="clip_weights",
    variable="GENBENCH_CLIP_WEIGHTS",
    # open_clip's pretrained config of ('ViT-L-14-336', 'openai') names this hub repository; open_clip prefers
    # the safetensors file in it (HF_SAFE_WEIGHTS_NAME).
    repo="timm/vit_large_patch14_clip_336.openai",
    filename="open_clip_model.safetensors",
)
#: CMMD's input: a centred square, 336x336, PIL bicubic, CLIP's mean and deviation (see the module docstring).
PREPROCESSING = Preprocessing(
    size=336,
    mean=(0.48145466, 0.4578275, 0.40821073),
    std=(0.26862954, 0.26130258, 0.27577711),
    center_crop=True,
)
#: The prefix of the image tower's tensors in open_clip's state dict.
VISUAL = "visual."


@dataclass(frozen=True)
class Architecture:
    open_clip_name: str = "ViT-L-14-336"
    vision_layers: int | None = None  # None: the published 24 blocks (tests build shallower networks of the kind)
    text_layers: int | None = None  # the text tower is built (on the meta device, at no cost) and dropped

    def config(self) -> dict[str, Any]:
        open_clip = library("open_clip", WEIGHTS.extractor)
        config: dict[str, Any] = copy.deepcopy(open_clip.get_model_config(self.open_clip_name))
        if self.vision_layers is not None:
            config["vision_cfg"]["layers"] = self.vision_layers
        if self.text_layers is not None:
            config["text_cfg"]["layers"] = self.text_layers
        return config

    def build_clip(self) -> torch.nn.Module:
        open_clip = library("open_clip", WEIGHTS.extractor)
        network: torch.nn.Module = open_clip.CLIP(**self.config(), quick_gelu=True)
        return network

    def build_image_tower(self) -> torch.nn.Module:
        tower: torch.nn.Module = self.build_clip().visual  # type: ignore[assignment]
        return tower


ARCHITECTURE = Architecture()


def image_tower(state: dict[str, torch.Tensor], path: Path, architecture: Architecture) -> torch.nn.Module:
    """open_clip's image tower with the file's ``visual.*`` tensors."""
    visual = {name.removeprefix(VISUAL): tensor for name, tensor in state.items() if name.startswith(VISUAL)}
    return load_into(architecture.build_image_tower, visual, path, WEIGHTS)


def image_embeddings(tower: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """open_clip's ``CLIP.encode_image(inputs, normalize=True)``: the projected embedding over its L2 norm."""
    return torch.nn.functional.normalize(tower(inputs), dim=-1)


def check_clip(dataset: Dataset, ctx: EvalContext) -> None:
    """Before any cell runs: gray or RGB images, open_clip installed, and a weights file found (no download)."""
    check_images(dataset, WEIGHTS.extractor)
    library("open_clip", WEIGHTS.extractor)
    weights_path(WEIGHTS, ctx)


def load_clip(dataset: Dataset, ctx: EvalContext) -> tuple[Any, dict[str, Any]]:
    """The extractor: uint8 images -> float64 (n, 768) unit-norm embeddings on the CPU."""
    check_images(dataset, WEIGHTS.extractor)
    open_clip = library("open_clip", WEIGHTS.extractor)
    path = weights_path(WEIGHTS, ctx)
    tower = image_tower(read_weights(path, WEIGHTS), path, ARCHITECTURE).to(ctx.device)
    levels = dataset.train.levels

    @torch.inference_mode()
    def features(images: torch.Tensor) -> torch.Tensor:
        return image_embeddings(tower, PREPROCESSING(images, levels, ctx.device)).double().cpu()

    identity = {
        "network": f"CLIP ViT-L/14-336 (OpenAI weights, QuickGELU), open_clip {open_clip.__version__}",
        "layer": "image embedding (projection), L2-normalised, 768-d",
        "preprocessing": PREPROCESSING.describe() + " (CMMD reference code)",
        **weights_identity(path),
    }
    return features, identity
