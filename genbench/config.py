"""What the user asked for, resolved: defaults < config file < command line; and the hashes that name cells.

Nothing here touches the disk except reading a config file: every mistake is found before a run starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbench.types import GenbenchError

DEFAULT_MODELS = ("vae", "gan", "pixelcnn")
DEFAULT_DATASET = "digits"
#: The model plugin that ``--sample-set NAME=PATH`` makes a named instance of (looked up by name, never imported).
SAMPLES_MODEL = "samples"
DEVICES = ("auto", "cpu", "cuda")
#: Bumped when the meaning of a checkpoint changes, so old ones are not reused by mistake.
CHECKPOINT_FORMAT = 1


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
    #: Model name -> a safetensors file to load instead of training (--checkpoint vae=PATH).
    checkpoints: dict[str, Path] = field(default_factory=dict)
    #: Instance name -> a .npz or image folder, each served by the ``samples`` model as a row of its own.
    sample_sets: dict[str, Path] = field(default_factory=dict)

    def run_name(self) -> str:
        """The default run directory name: the same request resumes in the same directory."""
        if self.name:
            return self.name
        binarized = "-binarized" if self.binarize else ""
        # Weights from a file are another experiment than training: they get a directory of their own.
        models = [f"{name}-checkpoint" if name in self.checkpoints else name for name in self.models]
        return f"{self.dataset}{binarized}-{'+'.join([*models, *self.sample_sets])}"


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
    known = {f.name for f in dataclasses.fields(RunRequest)} - {"model_options", "metric_options", "plugin_options"}
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
            request.checkpoints.update(_pop_checkpoints(request.model_options, path))
        elif key in ("checkpoints", "sample_sets"):
            getattr(request, key).update(_path_table(value, key, path))
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


def _pop_checkpoints(tables: dict[str, dict[str, Any]], path: Path) -> dict[str, Path]:
    """``checkpoint = "..."`` under [model.NAME] is a run setting for that model, not a field of its config."""
    found = {}
    for name, options in tables.items():
        if "checkpoint" in options:
            value = options.pop("checkpoint")
            if not isinstance(value, str) or not value:
                raise GenbenchError(f"--config {path}: [model.{name}] checkpoint must be a path, got {value!r}")
            found[name] = Path(value).expanduser()
    return found


def _path_table(value: Any, key: str, path: Path) -> dict[str, Path]:
    if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
        raise GenbenchError(f'--config {path}: {key} must be a table of NAME = "PATH", e.g. {key} = {{ x = "a" }}')
    return {str(name): Path(item).expanduser() for name, item in value.items()}


def parse_assignment(text: str, flag: str, example: str) -> tuple[str, Path]:
    """'vae=w.safetensors' -> ('vae', Path('w.safetensors')); anything else is a one-line error."""
    name, _, value = text.partition("=")
    name = name.strip()
    if not NAME_PATTERN.match(name) or not value.strip():
        raise GenbenchError(f"{flag} {text!r} is malformed: give NAME=PATH, e.g. {flag} {example}")
    return name, Path(value.strip()).expanduser()


def parse_assignments(texts: list[str], flag: str, example: str) -> dict[str, Path]:
    """Repeated NAME=PATH flags as a dict; one name given twice is an error rather than a silent choice."""
    found: dict[str, Path] = {}
    for text in texts:
        name, value = parse_assignment(text, flag, example)
        if name in found:
            raise GenbenchError(f"{flag} names {name!r} twice ({found[name]} and {value}); give each name once")
        found[name] = value
    return found


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


def checkpoint_key(model: str, config: Any, data_provenance: dict[str, Any], seed: int) -> str:
    """What determines a trained model: the model, its config, the exact data and the seed (not the device)."""
    data = {k: data_provenance.get(k) for k in ("dataset", "fingerprint", "levels", "shape", "split")}
    return stable_hash(
        {"format": CHECKPOINT_FORMAT, "model": model, "config": dataclasses.asdict(config), "data": data, "seed": seed}
    )


def cell_id(model: str, dataset: str, seed: int, checkpoint: str, evaluation: dict[str, Any]) -> str:
    """A cell is its checkpoint plus how it is evaluated (metrics and their options), hashed into its name."""
    suffix = stable_hash({"checkpoint": checkpoint, "evaluation": evaluation}, length=10)
    return f"{model}-{dataset}-seed{seed}-{suffix}"
