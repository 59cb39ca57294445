"""What the user asked for, resolved: defaults < config file < command line; and the hashes that name cells.

Nothing here touches the disk except reading a config file: every mistake is found before a run starts.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genbench.contract import GenbenchError
from genbench.contract.request import (
    RunRequest,
)
from genbench.toolkit.checks import check_value, field_hints, non_finite_paths, shown

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+$")
#: Run names are folder names; file systems allow 255 bytes, and cell files inside need room too.
RUN_NAME_LENGTH = 100
#: Seeds seed numpy's generator too, whose seeds are 32-bit.
SEED_LIMIT = 2**32
#: RunRequest fields that a suite file gives as tables of their own ([model.NAME], [metric.NAME]) or not at all.
#: ``rerun`` is a flag of one run, never a setting a suite file keeps.
NOT_SUITE_SETTINGS = frozenset(
    {"model_options", "metric_options", "sample_options", "plugin_options", "rerun", "suite"}
)


def parse_names(text: str, flag: str, names: str = "vae,gan,pixelcnn") -> list[str]:
    """'vae,gan' -> ['vae', 'gan']; anything else is a one-line error that shows the expected form (with ``names``)."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item or not NAME_PATTERN.match(item) for item in items):
        listed = ", ".join(f'"{name}"' for name in names.split(","))
        example = f"{flag} {names}" if flag.startswith("-") and " " not in flag else f"[{listed}]"
        raise GenbenchError(f"{flag} {shown(text)} is malformed: give comma-separated names, e.g. {example}")
    return check_unique(items, flag)


def check_unique(items: list[Any], flag: str) -> list[Any]:
    """``items`` unchanged, or an error naming what is given twice (a typo more often than a wish)."""
    repeated = sorted({str(item) for item in items if items.count(item) > 1})
    if repeated:
        raise GenbenchError(f"{flag} gives {', '.join(repeated)} more than once; give each once")
    return items


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]."""
    try:
        seeds = [int(item) for item in text.split(",")]
    except ValueError:
        raise GenbenchError(
            f"--seeds {shown(text)} is not a comma-separated list of integers, e.g. --seeds 0,1,2"
        ) from None
    return check_seeds(seeds, "--seeds")


def check_seeds(seeds: list[int], flag: str) -> list[int]:
    """Seeds are distinct and fit in 32 bits (numpy's generators take no more)."""
    outside = [seed for seed in seeds if not 0 <= seed < SEED_LIMIT]
    if outside:
        raise GenbenchError(f"{flag}: seed {outside[0]} is out of range; seeds must be in [0, 2**32)")
    return check_unique(seeds, flag)


def check_run_name(name: str, flag: str = "--name") -> str:
    """A run name is one folder inside the results directory: never a path that leads out of it."""
    # A leading dot would hide the run (and ".cache" is where genbench keeps its caches beside the runs).
    if not NAME_PATTERN.match(name) or name.startswith(".") or len(name) > RUN_NAME_LENGTH:
        raise GenbenchError(
            f"{flag} {shown(name)} is not a run name: use up to {RUN_NAME_LENGTH} letters, digits, '.', '_' and "
            "'-', not starting with '.' (one folder name, not a path), e.g. --name mnist-baseline"
        )
    return name


def read_suite(path: Path) -> dict[str, Any]:
    """A suite file (TOML): top-level run settings, plus [model.NAME] and [metric.NAME] option tables."""
    if not path.is_file():
        raise GenbenchError(f"--config {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # -sig: a byte-order mark is no mistake
    except UnicodeDecodeError as error:
        raise GenbenchError(f"--config {path} is not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise GenbenchError(f"--config {path} is not valid TOML: {error}") from error
    except OSError as error:
        raise GenbenchError(f"--config {path} cannot be read: {error.strerror}") from None
    check_setting_names(data, f"--config {path}")
    return data


def check_setting_names(data: Mapping[str, Any], where: str) -> None:
    """Every top-level key of a suite or --config file is a setting; the others are one line naming them all."""
    unknown = sorted(set(data) - suite_setting_names())
    if unknown:
        raise GenbenchError(f"{where}: unknown settings {unknown}; known: {sorted(suite_setting_names())}")


def suite_setting_names() -> set[str]:
    """The top-level keys a suite or --config file may set: the request's plain fields and the option tables."""
    return {f.name for f in dataclasses.fields(RunRequest)} - NOT_SUITE_SETTINGS | {"model", "metric", "sample"}


def apply_suite(request: RunRequest, suite: dict[str, Any], path: Path) -> None:
    """Fill ``request`` from a suite file's settings (the command line is applied after, so it wins).

    Each setting is checked against RunRequest's annotation; a list of names or seeds may also be given in
    the command line's comma-separated form ("vae,gan").
    """
    hints = field_hints(RunRequest)
    for key, value in suite.items():
        if key in ("model", "metric"):
            setattr(request, f"{key}_options", _option_tables(value, key, path))
            if key == "model":
                request.checkpoints.update(_pop_checkpoints(request.model_options, path))
            continue
        if key == "sample":  # [sample.ddpm] steps = [10, 50, 100]: a value or a list of values per option
            request.sample_options = {
                model: {option: value if isinstance(value, list) else [value] for option, value in table.items()}
                for model, table in _option_tables(value, key, path).items()
            }
            continue
        if key in ("checkpoints", "sample_sets"):
            getattr(request, key).update(_path_table(value, key, path))
            continue
        what = f"--config {path}: {key}"
        if key in ("models", "metrics", "plugins", "log"):
            names = value if isinstance(value, str) else check_value(value, list[str], what)
            if names == [] and key not in ("plugins", "log"):
                raise GenbenchError(f'{what} is an empty list; name at least one, e.g. {key} = ["vae"]')
            if names == [] and key == "log":
                request.log = []  # no trackers: a config file switches off the log of the suite below it
            elif names != []:
                given = names if isinstance(names, str) else ",".join(names)
                setattr(
                    request, key, parse_names(given, what, "tensorboard,mlflow" if key == "log" else "vae,gan,pixelcnn")
                )
        elif key == "seeds":
            seeds = parse_seeds(value) if isinstance(value, str) else check_value(value, list[int], what)
            request.seeds = check_seeds(seeds, what)
        else:
            setattr(request, key, check_value(value, hints[key], what))
    if request.epochs is not None and request.epochs < 1:
        raise GenbenchError(f"--config {path}: epochs must be at least 1, got {request.epochs}")
    if request.name is not None:
        check_run_name(request.name, f"--config {path}: name")


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


def check_request(request: RunRequest) -> None:
    """A request made in Python (``genbench.run``) gets the checks that the CLI and suite files get."""
    for name, hint in field_hints(RunRequest).items():
        setattr(request, name, check_value(getattr(request, name), hint, name))
    check_unique(request.models, "models")
    if request.metrics is not None:
        check_unique(request.metrics, "metrics")
    check_seeds(request.seeds, "seeds")
    check_unique(request.log, "log")
    if request.name is not None:
        check_run_name(request.name)
    for dest, value in request.plugin_options.items():
        if non_finite_paths(value):  # it would name the cell and go into run.json, which holds no NaN
            raise GenbenchError(f"the {dest} option is {shown(value)}; give a finite number")


def resolve_config(config_class: type, options: dict[str, Any], owner: str, epochs: int | None = None) -> Any:
    """An instance of ``config_class`` with ``options`` applied, each checked against the field's annotation.

    The instance is built with every option at once, so a config's own ``__post_init__`` check (raising
    ValueError, say "k must be at least 1") sees the final values; its message becomes a one-line error.
    """
    hints = field_hints(config_class)
    checked = {}
    for key, value in options.items():
        if key not in hints:
            raise GenbenchError(f"{owner} has no option {shown(key)}; its options: {', '.join(hints)}")
        checked[key] = check_value(value, hints[key], f"{owner} option {key!r}")
    if epochs is not None and "epochs" in hints:
        checked["epochs"] = epochs
    try:
        return config_class(**checked)
    except (ValueError, GenbenchError) as error:
        raise GenbenchError(f"{owner}: {error}") from None


def parse_sample_options(texts: list[str]) -> dict[str, dict[str, list[Any]]]:
    """--sample-option ddpm.steps=10,50,100 (repeatable) -> {"ddpm": {"steps": ["10", "50", "100"]}}; the values
    are checked and typed against the model's options class when the run is prepared."""
    options: dict[str, dict[str, list[Any]]] = {}
    for text in texts:
        target, equals, values = text.partition("=")
        model, dot, option = target.partition(".")
        if not equals or not dot or not NAME_PATTERN.match(model) or not option.isidentifier() or not values.strip():
            raise GenbenchError(
                f"--sample-option {shown(text)} is malformed: give MODEL.OPTION=VALUE[,VALUE...], "
                "e.g. --sample-option ddpm.steps=10,50,100"
            )
        options.setdefault(model, {})[option] = [value.strip() for value in values.split(",")]
    return options
