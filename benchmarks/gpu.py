"""How fast the built-ins are on one device: one table, for a GPU or (with --device cpu) a CPU.

    python benchmarks/gpu.py                   # MNIST-sized data (1x28x28, 256 levels), the best device
    python benchmarks/gpu.py --device cpu --quick

For each built-in model on MNIST-sized data: training steps per second, images sampled per second at batch 1
and 64 (every PixelCNN sampler its config offers, with and without its CUDA graph on CUDA, for the default and a
paper-sized net; DDPM's DDIM 10 and 50 steps and ancestral sampler, flow matching's Euler 8 and 32 steps,
midpoint 16 and dopri5, each with its network evaluations per image), likelihood images per second (the first
likelihood a model declares, the one the nll metric reports, at the metric's settings),
then feature extraction (the FID classifier, and InceptionV3 when GENBENCH_INCEPTION_WEIGHTS names its weights)
and the wall time of the default run (`genbench run --models vae,gan,pixelcnn` on the digits). Data are random
uint8 images: speed does not depend on what the pixels show. Every measurement is time-boxed (--budget seconds
after one untimed warm-up call, which CUDA needs for its kernels and cuDNN's autotuning), so the whole script
takes a few minutes on a GPU. --quick shrinks everything (8x8 images, 17 levels, short budgets, and a run of
the independent model with the bpd metric in place of the default run) to check that the script works, in
about a minute on a CPU; its numbers say nothing about MNIST.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genbench import DataInfo, FitContext, ImageData, LikelihoodEstimate, likelihoods_of
from genbench.registry import load_plugins
from genbench.testing import MODEL

REPO = Path(__file__).resolve().parents[1]
MODELS = ("vae", "gan", "pixelcnn", "ddpm", "flow_matching", "realnvp")
SAMPLE_BATCHES = (1, 64)


@dataclass(frozen=True)
class Settings:
    """What one invocation measures on: the image shape and levels, and how long each measurement may take."""

    shape: tuple[int, int, int]  # MNIST's 1x28x28, or 1x8x8 with --quick
    levels: int  # 256 for MNIST, 17 (the digits) with --quick
    budget: float  # seconds of timed work per measurement, after the warm-up call
    train_images: int  # size of the synthetic training set (the most one training measurement can use)
    feature_batch: int  # images per feature-extractor call
    default_run: list[str]  # the arguments of the timed `genbench run`


FULL = Settings((1, 28, 28), 256, 4.0, 60_000, 256, ["--models", "vae,gan,pixelcnn"])
# --quick times a run of the independent model only: the same machinery (plugins, data, records, leaderboard)
# in seconds, where the three built-ins would take most of a minute on a CPU.
QUICK = Settings((1, 8, 8), 17, 0.3, 512, 64, ["--models", "independent", "--epochs", "1", "--metrics", "bpd"])


@dataclass
class Row:
    model: str
    measurement: str
    value: float
    unit: str
    note: str = ""


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(work: Callable[[], int], device: torch.device, budget: float) -> tuple[float, str]:
    """Items per second of ``work`` (which returns how many items it did), timed for about ``budget`` seconds.

    One call is a warm-up; when that call alone takes the whole budget, it is the measurement (so a slow
    sampler costs one call, not two), and the note says so.
    """
    synchronize(device)
    start = time.perf_counter()
    items = work()
    synchronize(device)
    first = time.perf_counter() - start
    if first >= budget:
        return items / first, "1 call, warm-up included"
    items, calls, start = 0, 0, time.perf_counter()
    while True:
        items += work()
        calls += 1
        synchronize(device)
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            return items / elapsed, f"{calls} calls"


def synthetic_images(n: int, settings: Settings, seed: int = 0) -> ImageData:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, settings.levels, (n, *settings.shape), generator=generator, dtype=torch.uint8)
    return ImageData(images, settings.levels, torch.randint(0, 10, (n,), generator=generator))


def sampler_variants(config: Any, device: torch.device) -> list[tuple[str, Any]]:
    """The config once per sampler it offers: PixelCNN's ``sampler`` field where it exists (and on CUDA the cached
    sampler with and without its CUDA graph), else the one sampler."""
    names = {field.name for field in dataclasses.fields(config)}
    if "sampler" not in names:
        return [("", config)]
    variants = [(" (cached)", dataclasses.replace(config, sampler="cached"))]
    if device.type == "cuda" and "cuda_graph" in names:
        variants = [
            (" (cached, CUDA graph)", dataclasses.replace(config, sampler="cached", cuda_graph=True)),
            (" (cached, eager)", dataclasses.replace(config, sampler="cached", cuda_graph=False)),
        ]
    return [*variants, (" (plain)", dataclasses.replace(config, sampler="plain"))]


# The evaluation-time samplers measured for a model that declares them (``ModelSpec.sample_options_class``): the
# ones its suites and sweeps use, from cheapest to dearest; the table gives each one's network evaluations (NFE).
SAMPLE_OPTIONS: dict[str, list[dict[str, Any]]] = {
    "ddpm": [{"sampler": "ddim", "steps": 10}, {"sampler": "ddim", "steps": 50}, {"sampler": "ancestral"}],
    "flow_matching": [
        {"solver": "euler", "steps": 8},
        {"solver": "euler", "steps": 32},
        {"solver": "midpoint", "steps": 16},
        {"solver": "dopri5"},
    ],
}


def sample_option_variants(name: str, spec: Any) -> list[tuple[str, Any]]:
    """One instance of the model's sample options per sampler measured (``SAMPLE_OPTIONS``), or its defaults."""
    if spec.sample_options_class is None:
        return [("", None)]
    chosen = SAMPLE_OPTIONS.get(name, [{}])
    return [
        (" (" + ", ".join(f"{key}={value}" for key, value in options.items()) + ")" if options else "",
         spec.sample_options_class(**options))
        for options in chosen
    ]  # fmt: skip


def sampling_rows(name: str, spec: Any, base: Any, settings: Settings, device: torch.device, label: str) -> list[Row]:
    """Images sampled per second at each batch size, once per sampler the config or the sample options offer, with
    the network evaluations per image where the model reports them."""
    info = DataInfo(settings.shape, settings.levels)
    rows = []
    for variant, config in sampler_variants(base, device):
        model = spec.factory(config, info).to(device).eval()
        for option_text, options in sample_option_variants(name, spec):
            if options is not None:
                model.sample_options = options
            for batch in SAMPLE_BATCHES:
                generator = torch.Generator().manual_seed(0)

                def draw(model: Any = model, batch: int = batch, generator: torch.Generator = generator) -> int:
                    return len(model.sample(batch, generator))

                value, note = rate(draw, device, settings.budget)
                nfe = getattr(model, "network_evaluations", None)
                if nfe is not None:  # after sampling: an adaptive solver reports what the last draw took
                    note = f"NFE {nfe}, {note}"
                what = f"sampling{label}{variant}{option_text}, batch {batch}"
                rows.append(Row(name, what, value, "images/s", note))
    return rows


# A "paper-sized" MNIST PixelCNN (van den Oord et al. 2016a/b use 128 feature maps, 12-15 layers and a
# 1024-wide head; 512 here as in the first measurement of the plain sampler: 4.7 s per image at batch 1 on an H200).
PAPER_PIXELCNN = {"channels": 128, "layers": 12, "head_channels": 512, "first_kernel": 7}


def training_rate(spec: Any, settings: Settings, device: torch.device) -> tuple[float, str]:
    """Optimizer steps per second of one epoch of ``fit``, on as many batches as fill the budget."""
    config = dataclasses.replace(spec.config_class(), epochs=1)
    batch = config.batch_size
    info = DataInfo(settings.shape, settings.levels)
    data = synthetic_images(settings.train_images, settings)

    def fit(batches: int) -> float:
        model = spec.factory(config, info)
        model.to(device)
        subset = ImageData(data.images[: batches * batch], data.levels)
        ctx = FitContext(device, 0, torch.Generator().manual_seed(0))
        synchronize(device)
        start = time.perf_counter()
        model.fit(subset, ctx)
        synchronize(device)
        return time.perf_counter() - start

    warmup_batches = 3
    fit(warmup_batches)  # the first call pays for CUDA's kernels and cuDNN's autotuning: not a rate
    estimate = warmup_batches / fit(warmup_batches)
    batches = int(min(max(estimate * settings.budget, warmup_batches), settings.train_images // batch))
    return batches / fit(batches), f"{batches} steps of batch {batch}"


def model_rows(name: str, registry: Any, settings: Settings, device: torch.device) -> list[Row]:
    from genbench_likelihood import NllConfig

    spec = registry.get(MODEL, name)
    info = DataInfo(settings.shape, settings.levels)
    rows = []
    steps, note = training_rate(spec, settings, device)
    rows.append(Row(name, "training", steps, "steps/s", note))
    base = dataclasses.replace(spec.config_class(), epochs=1)
    rows += sampling_rows(name, spec, base, settings, device, "")
    if name == "pixelcnn" and settings.shape == FULL.shape:  # not with --quick: minutes on a CPU
        paper = dataclasses.replace(base, **PAPER_PIXELCNN)
        rows += sampling_rows(name, spec, paper, settings, device, ", paper-sized")
    model = spec.factory(base, info).to(device).eval()
    batch_images = synthetic_images(NllConfig.batch_size, settings, seed=1).images.to(device)
    declared = likelihoods_of(model)
    if not declared:
        return rows
    # The first likelihood a model declares is the one the nll metric reports; an importance-weighted bound at the
    # metric's k, as the nll metric computes it.
    likelihood = declared[0]
    settings_used = {**likelihood.settings, **({"k": NllConfig.k} if "k" in likelihood.settings else {})}

    def compute() -> int:
        result = likelihood.compute(batch_images, **settings_used)
        return len(result.log_p if isinstance(result, LikelihoodEstimate) else result)

    with torch.no_grad():
        value, note = rate(compute, device, settings.budget)
    what = f"{likelihood.kind} {likelihood.name!r}" + "".join(f", {k}={v}" for k, v in settings_used.items())
    rows.append(Row(name, "likelihood", value, "images/s", f"{what}, batch {len(batch_images)}, {note}"))
    return rows


def feature_rows(settings: Settings, device: torch.device) -> list[Row]:
    from genbench_fid.feature_extractor_classifier import Classifier, ClassifierConfig, scaled

    images = synthetic_images(settings.feature_batch, settings, seed=2).images
    classifier = Classifier(settings.shape[0], 10, ClassifierConfig()).to(device).eval()

    def classify() -> int:
        with torch.inference_mode():
            return len(classifier.body(scaled(images, settings.levels).to(device)).double().cpu())

    value, note = rate(classify, device, settings.budget)
    rows = [Row("fid", "classifier features", value, "images/s", f"batch {len(images)}, {note}")]
    weights = os.environ.get("GENBENCH_INCEPTION_WEIGHTS")
    if not weights:
        rows.append(Row("fid", "inception features", float("nan"), "images/s", "GENBENCH_INCEPTION_WEIGHTS not set"))
        return rows
    from genbench_fid.feature_extractor_inception import as_rgb_255, inception_network

    network = inception_network(Path(weights)).to(device).eval()

    def inception() -> int:
        with torch.inference_mode():
            (pool3,) = network(as_rgb_255(images, settings.levels).to(device))
            return len(pool3.double().cpu())

    value, note = rate(inception, device, settings.budget)
    rows.append(Row("fid", "inception features", value, "images/s", f"batch {len(images)}, {note}"))
    return rows


def default_run_row(settings: Settings, device: torch.device) -> Row:
    """Wall time of `genbench run` on the digits in a fresh folder (training, every metric, files)."""
    with tempfile.TemporaryDirectory() as folder:
        args = [*settings.default_run, "--device", device.type, "--results-dir", folder]
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "genbench.cli", "run", *args], capture_output=True, text=True, cwd=folder
        )
        seconds = time.perf_counter() - start
    note = "genbench run " + " ".join(settings.default_run)
    if result.returncode != 0:
        note += f" (exit {result.returncode}: {result.stderr.strip().splitlines()[-1:]})"
    return Row("run", "default run wall time", seconds, "s", note)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"


def git_revision() -> str:
    result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def format_table(rows: list[Row]) -> str:
    lines = ["| model | measurement | value | unit | how |", "| --- | --- | ---: | --- | --- |"]
    for row in rows:
        value = "n/a" if row.value != row.value else f"{row.value:.4g}"
        lines.append(f"| {row.model} | {row.measurement} | {value} | {row.unit} | {row.note} |")
    return "\n".join(lines)


def resolve(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu.py: --device cuda, but PyTorch sees no CUDA GPU")
    return torch.device(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--quick", action="store_true", help="tiny shapes and budgets: checks the script runs")
    parser.add_argument("--budget", type=float, help="seconds per measurement (default: 4, or 0.3 with --quick)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated built-ins to measure")
    parser.add_argument("--no-default-run", action="store_true", help="skip timing `genbench run`")
    args = parser.parse_args(argv)
    device = resolve(args.device)
    settings = QUICK if args.quick else FULL
    if args.budget is not None:
        settings = dataclasses.replace(settings, budget=args.budget)
    registry = load_plugins()
    started = time.perf_counter()
    rows = [row for name in args.models.split(",") for row in model_rows(name, registry, settings, device)]
    rows += feature_rows(settings, device)
    if not args.no_default_run:
        rows.append(default_run_row(settings, device))
    c, h, w = settings.shape
    print(f"device: {device_name(device)}; torch {torch.__version__}; genbench commit {git_revision()}")
    print(
        f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; data: random uint8 {c}x{h}x{w}, "
        f"{settings.levels} levels; {settings.budget:g} s per measurement{'; --quick' if args.quick else ''}"
    )
    print()
    print(format_table(rows))
    print(f"\n({time.perf_counter() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
