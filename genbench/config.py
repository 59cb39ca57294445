"""What the user asked for, resolved: defaults < config file < command line; and the hashes that name cells.

Nothing here touches the disk except reading a config file: every mistake is found before a run starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbench.types import GenbenchError

DEFAULT_MODELS = ("vae", "gan", "pixelcnn")
DEFAULT_DATASET = "digits"
DEVICES = ("auto", "cpu", "cuda")
#: Bumped when the meaning of a checkpoint changes, so old ones are not reused by mistake.
CHECKPOINT_FORMAT = 2


@dataclass
class RunRequest:
    """Everything a run needs, as the user gave it (names, not yet looked up)."""

    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    #: None means every installed metric.
    metrics: list[str] | None = None
    dataset: str = DEFAULT_DATASET
    data_root: Path | None = None
    download: bool = False
    binarize: bool = False
    seeds: list[int] = field(default_factory=lambda: [0])
    #: Overrides the ``epochs`` field of every model config that has one.
    epochs: int | None = None
    device: str = "auto"
    results_dir: Path = Path("results")
    name: str | None = None
    #: Per-model and per-metric options: {"vae": {"latent_dim": 8}}.
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Modules to load as plugins, like pytest's -p.
    plugins: list[str] = field(default_factory=list)
    #: Values of options that plugins added to the command line (genbench_addoption), by dest.
    plugin_options: dict[str, Any] = field(default_factory=dict)
    #: Recompute on purpose: None reuses finished cells; [] retrains and evaluates every cell again; a list of
    #: model names does so for those models' cells only (--rerun, --rerun vae).
    rerun: list[str] | None = None

    def run_name(self) -> str:
        """The default run directory name: the same request resumes in the same directory."""
        if self.name:
            return self.name
        binarized = "-binarized" if self.binarize else ""
        return f"{self.dataset}{binarized}-{'+'.join(self.models)}"


NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+$")


def parse_names(text: str, flag: str) -> list[str]:
    """'vae,gan' -> ['vae', 'gan']; anything else is a one-line error that shows the expected form."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item or not NAME_PATTERN.match(item) for item in items):
        raise GenbenchError(f"{flag} {text!r} is malformed: give comma-separated names, e.g. {flag} vae,gan,pixelcnn")
    return list(dict.fromkeys(items))


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]."""
    try:
        seeds = [int(item) for item in text.split(",")]
    except ValueError:
        raise GenbenchError(f"--seeds {text!r} is not a comma-separated list of integers, e.g. --seeds 0,1,2") from None
    if any(seed < 0 for seed in seeds):
        raise GenbenchError(f"--seeds {text!r}: seeds must be non-negative")
    return list(dict.fromkeys(seeds))


def read_suite(path: Path) -> dict[str, Any]:
    """A suite file (TOML): top-level run settings, plus [model.NAME] and [metric.NAME] option tables."""
    if not path.is_file():
        raise GenbenchError(f"--config {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise GenbenchError(f"--config {path} is not valid TOML: {error}") from error
    not_settings = {"model_options", "metric_options", "plugin_options", "rerun"}  # tables, or a flag of one run
    known = {f.name for f in dataclasses.fields(RunRequest)} - not_settings
    unknown = sorted(set(data) - known - {"model", "metric"})
    if unknown:
        raise GenbenchError(
            f"--config {path}: unknown settings {unknown}; known: {sorted(known | {'model', 'metric'})}"
        )
    return data


def apply_suite(request: RunRequest, suite: dict[str, Any], path: Path) -> None:
    """Fill ``request`` from a suite file's settings (the command line is applied after, so it wins)."""
    for key, value in suite.items():
        if key == "model":
            request.model_options = _option_tables(value, "model", path)
        elif key == "metric":
            request.metric_options = _option_tables(value, "metric", path)
        elif key in ("models", "metrics", "plugins"):
            setattr(request, key, parse_names(value if isinstance(value, str) else ",".join(map(str, value)), key))
        elif key == "seeds":
            request.seeds = parse_seeds(value if isinstance(value, str) else ",".join(map(str, value)))
        elif key in ("data_root", "results_dir"):
            setattr(request, key, Path(str(value)).expanduser())
        else:
            setattr(request, key, value)


def _option_tables(value: Any, label: str, path: Path) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise GenbenchError(f"--config {path}: [{label}.NAME] must be tables of options, e.g. [{label}.vae]")
    return {name: dict(options) for name, options in value.items()}


def resolve_config(config_class: type, options: dict[str, Any], owner: str, epochs: int | None = None) -> Any:
    """An instance of ``config_class`` with ``options`` applied, each checked against the field's type."""
    config = config_class()
    fields = {f.name: f for f in dataclasses.fields(config)}
    for key, value in options.items():
        if key not in fields:
            raise GenbenchError(f"{owner} has no option {key!r}; its options: {', '.join(fields)}")
        default = getattr(config, key)
        setattr(config, key, _checked(value, default, f"{owner} option {key!r}"))
    if epochs is not None and "epochs" in fields:
        config.epochs = epochs
    return config


def _checked(value: Any, default: Any, what: str) -> Any:
    """``value`` if it has the type of the field's default (an int is accepted for a float), else an error."""
    if default is None:
        return value
    expected = type(default)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if expected is float and is_number:
        return float(value)
    if expected is int and is_number and isinstance(value, int):
        return value
    if expected in (list, tuple) and isinstance(value, list | tuple):
        return expected(value)
    if expected not in (int, float, list, tuple) and isinstance(value, expected):
        return value
    raise GenbenchError(f"{what} must be a {expected.__name__} like {default!r}, got {value!r}")


def stable_hash(data: Any, length: int = 16) -> str:
    """A short hash of JSON-able data, independent of dict order."""
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def checkpoint_key(
    model: str, config: Any, data_provenance: dict[str, Any], seed: int, *, code: Mapping[str, Any]
) -> str:
    """What determines a trained model: the model, its config, the exact data, the seed (not the device), and
    the code that trains it and loads the data (genbench's version, the model's and data set's plugin sources)."""
    data = {k: data_provenance.get(k) for k in ("dataset", "fingerprint", "levels", "shape", "split")}
    return stable_hash(
        {
            "format": CHECKPOINT_FORMAT,
            "model": model,
            "config": dataclasses.asdict(config),
            "data": data,
            "seed": seed,
            "code": dict(code),
        }
    )


def cell_id(model: str, dataset: str, seed: int, checkpoint: str, evaluation: dict[str, Any]) -> str:
    """A cell is its checkpoint plus how it is evaluated (metrics, their options and their plugins' code), hashed
    into its name."""
    suffix = stable_hash({"checkpoint": checkpoint, "evaluation": evaluation}, length=10)
    return f"{model}-{dataset}-seed{seed}-{suffix}"
