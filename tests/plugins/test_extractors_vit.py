"""The ``dinov2`` and ``clip`` extractors: the library's own network (timm, open_clip) with weights read from a
safetensors file, so their features equal the library's forward pass on the same input; images prepared as
dgm-eval and the CMMD code prepare a PNG; weights found from an option, a variable or the Hugging Face cache, never
downloaded, never unpickled; and a run without them stops before training, in one line that says how to get them.

Random weights stand in for the published ones, written to a file by the tests. The fast tests build networks
of the published kind with 2 blocks instead of 24 (timm's and open_clip's own configs, depth overridden); the
tests marked slow build the full ViT-L/14 once per module and run it on one image.
"""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import genbench_cli
from genbench import Dataset, EvalContext, GenbenchError, ImageData
from genbench.registry import Registry
from genbench.toolkit.features import load_extractor
from genbench_fid import feature_extractor_clip as clip_module
from genbench_fid import feature_extractor_dinov2 as dinov2_module
from genbench_fid.feature_extractor_pretrained import read_weights, weights_path
from genbench_fid.metric_fid import FidConfig

SHALLOW_DINOV2 = dinov2_module.Architecture(depth=2)
SHALLOW_CLIP = clip_module.Architecture(vision_layers=2, text_layers=1)


def save(network: torch.nn.Module, path: Path) -> Path:
    from safetensors.torch import save_file

    save_file({name: tensor.contiguous() for name, tensor in network.state_dict().items()}, str(path))
    return path


def context(dataset: Dataset, registry: Registry, cache: Path, **options: Any) -> EvalContext:
    generator = torch.Generator().manual_seed(0)
    return EvalContext(dataset, torch.device("cpu"), 0, generator, FidConfig(), registry, cache, options=options)


def random_images(n: int, channels: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(256, (n, channels, height, width), generator=generator, dtype=torch.uint8)


@pytest.fixture(autouse=True)
def no_weights_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An empty Hugging Face cache and no environment variables: only what a test gives is found."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    for module in (dinov2_module, clip_module):
        monkeypatch.delenv(module.WEIGHTS.variable, raising=False)


@pytest.fixture(scope="module")
def shallow_dinov2(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """timm's vit_large_patch14_dinov2 at 224 px with 2 blocks and random weights, and its safetensors file."""
    torch.manual_seed(0)
    network = SHALLOW_DINOV2.build().eval()
    return network, save(network, tmp_path_factory.mktemp("dinov2") / "shallow-dinov2.safetensors")


@pytest.fixture(scope="module")
def shallow_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """open_clip's ViT-L-14-336 (QuickGELU) with 2 image blocks, 1 text block, random weights, and its file."""
    torch.manual_seed(0)
    network = SHALLOW_CLIP.build_clip().eval()
    return network, save(network, tmp_path_factory.mktemp("clip") / "shallow-clip.safetensors")


# ------------------------------------------------------------------------ the library's own forward pass


def test_dinov2_features_are_timms_cls_token_on_the_same_input(shallow_dinov2: tuple[torch.nn.Module, Path]) -> None:
    reference, path = shallow_dinov2
    loaded = dinov2_module.dinov2_network(read_weights(path, dinov2_module.WEIGHTS), path, SHALLOW_DINOV2)
    inputs = dinov2_module.PREPROCESSING(random_images(2, 3, 8, 8), 256, torch.device("cpu"))
    with torch.inference_mode():
        ours = dinov2_module.cls_features(loaded, inputs)
        timms = reference.forward_head(reference.forward_features(inputs), pre_logits=True)
        tokens = reference.forward_features(inputs)
    assert ours.shape == (2, 1024)
    torch.testing.assert_close(ours, timms, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours, tokens[:, 0], rtol=0, atol=1e-6)  # the CLS token, after the final norm


def test_clip_features_are_open_clips_normalised_image_embedding(shallow_clip: tuple[torch.nn.Module, Path]) -> None:
    reference, path = shallow_clip
    tower = clip_module.image_tower(read_weights(path, clip_module.WEIGHTS), path, SHALLOW_CLIP)
    inputs = clip_module.PREPROCESSING(random_images(2, 3, 8, 8), 256, torch.device("cpu"))
    with torch.inference_mode():
        ours = clip_module.image_embeddings(tower, inputs)
        open_clips = reference.encode_image(inputs, normalize=True)  # type: ignore[operator]
    assert ours.shape == (2, 768)
    torch.testing.assert_close(ours, open_clips, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.norm(dim=1), torch.ones(2), rtol=0, atol=1e-6)


def test_the_openai_clip_weights_need_quick_gelu() -> None:
    import open_clip

    assert open_clip.get_pretrained_cfg("ViT-L-14-336", "openai")["quick_gelu"] is True
    tower = SHALLOW_CLIP.build_image_tower()
    assert "QuickGELU" in {type(module).__name__ for module in tower.modules()}


@pytest.mark.slow
@pytest.mark.parametrize(("module", "width"), [(dinov2_module, 1024), (clip_module, 768)])
def test_an_extractor_loads_through_its_plugin_from_the_option(
    module: Any,
    width: int,
    shallow_dinov2: tuple[torch.nn.Module, Path],
    shallow_clip: tuple[torch.nn.Module, Path],
    digits: Dataset,
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    network, path = shallow_dinov2 if module is dinov2_module else shallow_clip
    monkeypatch.setattr(module, "ARCHITECTURE", SHALLOW_DINOV2 if module is dinov2_module else SHALLOW_CLIP)
    ctx = context(digits, registry, tmp_path, **{module.WEIGHTS.option: str(path)})
    registry.extractor(module.WEIGHTS.extractor).check(digits, ctx)  # type: ignore[misc]
    extractor = load_extractor(module.WEIGHTS.extractor, ctx)
    images = digits.test.images[:2]
    features = extractor.features(images)
    assert features.shape == (2, width) and features.dtype == torch.float64
    inputs = module.PREPROCESSING(images, digits.test.levels, torch.device("cpu"))
    with torch.inference_mode():
        if module is dinov2_module:
            expected = network.forward_head(network.forward_features(inputs), pre_logits=True)
        else:
            expected = network.encode_image(inputs, normalize=True)  # type: ignore[operator]
    torch.testing.assert_close(features, expected.double(), rtol=0, atol=1e-6)
    assert extractor.identity["weights_file"] == path.name and len(extractor.identity["weights_sha256"]) == 16


@pytest.mark.slow
def test_fid_names_the_dinov2_distance(
    shallow_dinov2: tuple[torch.nn.Module, Path],
    digits: Dataset,
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from conftest import Replay
    from genbench_fid.metric_fid import compute_fid

    monkeypatch.setattr(dinov2_module, "ARCHITECTURE", SHALLOW_DINOV2)
    small = Dataset("small", ImageData(digits.train.images[:4], 17), ImageData(digits.test.images[:4], 17), {})
    ctx = context(small, registry, tmp_path, dinov2_weights=str(shallow_dinov2[1]))
    ctx.config = FidConfig(extractor="dinov2", n_samples=4, batch_size=4)
    result = compute_fid(Replay(small.test.images), ctx)
    assert result.provenance["extractor"] == "dinov2"
    assert result.provenance["distance"].startswith("FD_DINOv2: ")
    assert set(result.values) == {"fd_dinov2"} and result.values["fd_dinov2"] >= 0  # FD_DINOv2, not an FID


# ------------------------------------------------------------------------------------ images made input


def pil_bicubic(image: torch.Tensor, size: int) -> torch.Tensor:
    """(3, H, W) uint8 resized to size x size by PIL, as dgm-eval and the CMMD code (after its crop) do."""
    from PIL import Image

    resized = Image.fromarray(image.permute(1, 2, 0).numpy(), mode="RGB").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1)


@pytest.mark.parametrize("module", [dinov2_module, clip_module])
def test_the_resize_is_pils_bicubic_to_the_8_bit_level(module: Any) -> None:
    preprocessing = module.PREPROCESSING
    images = random_images(2, 3, 8, 12, seed=1)[..., 2:10] if module is clip_module else random_images(2, 3, 8, 12)
    ours = preprocessing(images, 256, torch.device("cpu"))
    mean, std = torch.tensor(preprocessing.mean).view(3, 1, 1), torch.tensor(preprocessing.std).view(3, 1, 1)
    for image, prepared in zip(images, ours, strict=True):
        pils = (pil_bicubic(image, preprocessing.size).float() / 255 - mean) / std
        levels = ((prepared - pils) * std * 255).abs()
        assert levels.max() <= 2 + 1e-4  # PIL computes in fixed point: a level or two apart, on a few pixels
        assert (levels < 1e-3).float().mean() > 0.99


def test_the_inputs_equal_the_libraries_own_transforms() -> None:
    """timm's eval transform for DINOv2 at 224 and open_clip's for ViT-L-14-336, on PIL images of square images."""
    import open_clip
    import timm.data
    from PIL import Image

    image = random_images(1, 3, 16, 16, seed=2)[0]
    pil = Image.fromarray(image.permute(1, 2, 0).numpy(), mode="RGB")
    dinov2 = dinov2_module.PREPROCESSING
    timms = timm.data.create_transform(
        input_size=(3, 224, 224), interpolation="bicubic", mean=dinov2.mean, std=dinov2.std, crop_pct=1.0
    )(pil)
    clip = clip_module.PREPROCESSING
    open_clips = open_clip.image_transform(336, is_train=False, mean=clip.mean, std=clip.std)(pil)
    for preprocessing, theirs in ((dinov2, timms), (clip, open_clips)):
        ours = preprocessing(image[None], 256, torch.device("cpu"))[0]
        std = torch.tensor(preprocessing.std).view(3, 1, 1)
        levels = ((ours - theirs) * std * 255).abs()
        assert levels.max() <= 2 + 1e-4 and (levels < 1e-3).float().mean() > 0.99


def test_gray_and_few_levels_become_8_bit_rgb() -> None:
    gray = torch.randint(17, (2, 1, 8, 8), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    stretched = (gray.float() * 255 / 16).round().to(torch.uint8).expand(-1, 3, -1, -1)
    for module in (dinov2_module, clip_module):
        prepare = module.PREPROCESSING
        torch.testing.assert_close(
            prepare(gray, 17, torch.device("cpu")), prepare(stretched, 256, torch.device("cpu")), rtol=0, atol=0
        )


def test_clip_crops_the_centred_square_first() -> None:
    wide = random_images(1, 3, 8, 12, seed=4)
    prepare = clip_module.PREPROCESSING
    torch.testing.assert_close(
        prepare(wide, 256, torch.device("cpu")), prepare(wide[..., 2:10], 256, torch.device("cpu")), rtol=0, atol=0
    )
    assert dinov2_module.PREPROCESSING(wide, 256, torch.device("cpu")).shape == (1, 3, 224, 224)  # dgm-eval: no crop


def cubic_convolution(t: float, a: float = -0.75) -> float:
    """Keys' cubic convolution kernel with torch's bicubic coefficient a = -0.75."""
    t = abs(t)
    if t <= 1:
        return (a + 2) * t**3 - (a + 3) * t**2 + 1
    return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a if t < 2 else 0.0


def test_position_embeddings_are_resampled_as_dinov2s_forward_does() -> None:
    """Rows of a 37x37 grid resampled to 16x16 sample the coordinates DINOv2's scale factor (16 + 0.1) / 37 gives
    (pixel centres, align_corners=False): computed here by hand with the cubic kernel, away from the border."""
    values = torch.sin(torch.arange(37, dtype=torch.float64) / 5)
    ramp = values.view(37, 1).expand(37, 37).reshape(1, 37 * 37, 1).float()
    position = torch.cat([torch.full((1, 1, 1), -5.0), ramp], dim=1)
    resampled = dinov2_module.resample_position_embedding(position, 16)
    assert resampled.shape == (1, 1 + 16 * 16, 1) and resampled[0, 0, 0] == -5.0
    grid = resampled[0, 1:, 0].view(16, 16)
    for row in range(1, 15):
        source = (row + 0.5) * 37 / 16.1 - 0.5
        base = math.floor(source)
        expected = sum(float(values[k]) * cubic_convolution(source - k) for k in range(base - 1, base + 3))
        assert float(grid[row, 7]) == pytest.approx(expected, abs=1e-5)
    assert dinov2_module.resample_position_embedding(resampled, 16) is resampled  # the right grid stays as it is


# --------------------------------------------------------------------------------------- where weights come from


@pytest.mark.parametrize("module", [dinov2_module, clip_module])
def test_without_weights_one_line_says_how_to_get_them(
    module: Any, digits: Dataset, registry: Registry, tmp_path: Path
) -> None:
    weights = module.WEIGHTS
    with pytest.raises(GenbenchError) as error:
        registry.extractor(weights.extractor).check(digits, context(digits, registry, tmp_path))  # type: ignore[misc]
    message = str(error.value)
    assert "\n" not in message
    assert f"hf download {weights.repo} {weights.filename}" in message
    assert weights.url in message and weights.flag in message and weights.variable in message
    assert str(tmp_path / "hf-cache") in message


def test_weights_are_found_in_the_hugging_face_cache_without_a_download(
    shallow_dinov2: tuple[torch.nn.Module, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = dinov2_module.WEIGHTS
    repo = tmp_path / "hf-cache" / ("models--" + weights.repo.replace("/", "--"))
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    (snapshot / weights.filename).symlink_to(shallow_dinov2[1])
    monkeypatch.setattr("huggingface_hub.hf_hub_download", lambda *a, **k: pytest.fail("downloaded"))
    ctx = EvalContext(None, torch.device("cpu"), 0, torch.Generator(), None, None, tmp_path)  # type: ignore[arg-type]
    assert weights_path(weights, ctx) == snapshot / weights.filename


def test_the_environment_variable_names_the_file(
    shallow_clip: tuple[torch.nn.Module, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(clip_module.WEIGHTS.variable, str(shallow_clip[1]))
    ctx = EvalContext(None, torch.device("cpu"), 0, torch.Generator(), None, None, tmp_path)  # type: ignore[arg-type]
    assert weights_path(clip_module.WEIGHTS, ctx) == shallow_clip[1]
    monkeypatch.setenv(clip_module.WEIGHTS.variable, str(tmp_path / "missing.safetensors"))
    with pytest.raises(GenbenchError, match=r"GENBENCH_CLIP_WEIGHTS=.*missing\.safetensors' is not a file"):
        weights_path(clip_module.WEIGHTS, ctx)


class Payload:
    """A pickle that would create a file when unpickled, as a malicious "weights" file could run any code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("module", [dinov2_module, clip_module])
def test_a_pickle_is_refused_without_running_it(
    module: Any, digits: Dataset, registry: Registry, tmp_path: Path
) -> None:
    marker, weights = tmp_path / "code-ran", tmp_path / "evil.pth"
    with weights.open("wb") as stream:
        pickle.dump(Payload(marker), stream)
    ctx = context(digits, registry, tmp_path, **{module.WEIGHTS.option: str(weights)})
    with pytest.raises(GenbenchError, match=r"is not a usable .* weights file .* it must be safetensors"):
        load_extractor(module.WEIGHTS.extractor, ctx)
    assert not marker.exists()


@pytest.mark.parametrize("module", [dinov2_module, clip_module])
def test_another_networks_weights_are_refused(module: Any, digits: Dataset, registry: Registry, tmp_path: Path) -> None:
    path = save(torch.nn.Linear(2, 2), tmp_path / "linear.safetensors")
    ctx = context(digits, registry, tmp_path, **{module.WEIGHTS.option: str(path)})
    with pytest.raises(GenbenchError, match=re.escape(f"does not hold the {module.WEIGHTS.network} weights")):
        load_extractor(module.WEIGHTS.extractor, ctx)


@pytest.mark.slow
@pytest.mark.parametrize(("config", "extractor"), [("[metric.fid]\nextractor = 'dinov2'\n", "dinov2"), ("", "clip")])
def test_a_run_without_weights_offline_stops_in_one_line_before_training(
    config: str, extractor: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    (tmp_path / "suite.toml").write_text(config)
    metrics = "fid" if extractor == "dinov2" else "cmmd"
    result = genbench_cli("run", "--models", "vae", "--metrics", metrics, "--config", "suite.toml", cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("genbench: error: "), lines
    assert f"the {extractor} feature extractor needs" in lines[0] and "hf download" in lines[0]
    assert not (tmp_path / "results").exists()  # nothing trained, nothing written


# ----------------------------------------------------------------------------- the published size (slow)


@pytest.fixture(scope="module")
def full_size(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[torch.nn.Module, Path]]:
    """Both networks at their published size (ViT-L/14, about 300 million weights each), random, and their files."""
    folder = tmp_path_factory.mktemp("full-size")
    torch.manual_seed(0)
    dinov2 = dinov2_module.ARCHITECTURE.build().eval()
    clip = clip_module.ARCHITECTURE.build_clip().eval()
    return {
        "dinov2": (dinov2, save(dinov2, folder / "dinov2.safetensors")),
        "clip": (clip, save(clip, folder / "clip.safetensors")),
    }


@pytest.mark.slow
@pytest.mark.parametrize("extractor", ["dinov2", "clip"])
def test_the_published_architecture_equals_the_librarys_forward_pass(
    extractor: str,
    full_size: dict[str, tuple[torch.nn.Module, Path]],
    digits: Dataset,
    registry: Registry,
    tmp_path: Path,
) -> None:
    network, path = full_size[extractor]
    module = dinov2_module if extractor == "dinov2" else clip_module
    loaded = load_extractor(extractor, context(digits, registry, tmp_path, **{module.WEIGHTS.option: str(path)}))
    image = digits.test.images[:1]
    inputs = module.PREPROCESSING(image, digits.test.levels, torch.device("cpu"))
    with torch.inference_mode():
        if extractor == "dinov2":
            expected = network.forward_head(network.forward_features(inputs), pre_logits=True)
        else:
            expected = network.encode_image(inputs, normalize=True)  # type: ignore[operator]
    torch.testing.assert_close(loaded.features(image), expected.double(), rtol=0, atol=1e-5)
