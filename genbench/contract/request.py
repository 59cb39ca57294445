"""What a user asks a run for, as plain data: names, not yet looked up; folders; seeds; options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DATASET = "digits"
DEVICES = ("auto", "cpu", "cuda")
#: Bumped when the meaning of a checkpoint changes, so old ones are not reused by mistake.
CHECKPOINT_FORMAT = 2


@dataclass
class RunRequest:
    """Everything a run needs, as the user gave it (names, not yet looked up)."""

    #: Empty: the models that plugins declare as defaults (``ModelSpec.default_rank``), or none with sample sets.
    models: list[str] = field(default_factory=list)
    #: None means every installed metric.
    metrics: list[str] | None = None
    dataset: str = DEFAULT_DATASET
    data_root: Path | None = None
    download: bool = False
    binarize: bool = False
    #: Run a suite on data whose files are incomplete (a missing split, fewer images than published); every
    #: number of such a run is then marked not comparable with the suite's published ones.
    allow_incomplete_data: bool = False
    seeds: list[int] = field(default_factory=lambda: [0])
    #: Overrides the ``epochs`` field of every model config that has one.
    epochs: int | None = None
    device: str = "auto"
    results_dir: Path = Path("results")
    name: str | None = None
    #: Per-model evaluation-time options, each a list of values: {"ddpm": {"steps": [10, 50, 100]}}; one
    #: evaluation (one cell) per combination, of one trained model (``ModelSpec.sample_options_class``).
    sample_options: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    #: Per-model and per-metric options: {"vae": {"latent_dim": 8}}.
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Modules to load as plugins, like pytest's -p.
    plugins: list[str] = field(default_factory=list)
    #: Values of options that plugins added to the command line (genbench_addoption), by dest.
    plugin_options: dict[str, Any] = field(default_factory=dict)
    #: Model name -> a safetensors file to load instead of training (--checkpoint vae=PATH).
    checkpoints: dict[str, Path] = field(default_factory=dict)
    #: Instance name -> a .npz or image folder, each served by the ``samples`` model as a row of its own.
    sample_sets: dict[str, Path] = field(default_factory=dict)
    #: Recompute on purpose: None reuses finished cells; [] retrains and evaluates every cell again; a list of
    #: model names does so for those models' cells only (--rerun, --rerun vae).
    rerun: list[str] | None = None
    #: Trackers to switch on (--log tensorboard,mlflow): names of tracker plugins. They record what the run
    #: measures elsewhere and change no number, so they are no part of a cell's id.
    log: list[str] = field(default_factory=list)
    #: The packaged suite this request started from (name, version, file hash), recorded in run.json; None: none.
    suite: dict[str, Any] | None = None

    def run_name(self) -> str:
        """The default run directory name: the same request resumes in the same directory."""
        if self.name:
            return self.name
        binarized = "-binarized" if self.binarize else ""
        # Weights from a file are another experiment than training: they get a directory of their own.
        models = [f"{name}-checkpoint" if name in self.checkpoints else name for name in self.models]
        return f"{self.dataset}{binarized}-{'+'.join([*models, *self.sample_sets])}"
