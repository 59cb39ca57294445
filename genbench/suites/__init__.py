"""Named suites: versioned presets shipped inside the package, one TOML file each, for the protocols of published
tables (``genbench run --suite NAME``, ``genbench suites``).

A suite file has the layout of a ``--config`` file (top-level run settings, ``[model.NAME]`` and ``[metric.NAME]``
option tables) plus ``name``, ``version`` and ``description``, and a ``[reference]`` table of the published numbers
it is comparable to, each with its citation. Layers apply in the order suite < config file < command line; option
tables merge key by key, so a config file or flag changes one option of a suite and keeps the rest.

Only the standard library and genbench's config are imported: listing suites must not wait for torch to load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from genbench.config import apply_suite, check_setting_names, read_suite
from genbench.contract import GenbenchError
from genbench.contract.published import PROTOCOL_PARTS, PublishedRow
from genbench.contract.request import RunRequest

#: Keys that describe a suite rather than set up a run.
METADATA_KEYS = ("name", "version", "description", "reference")


@dataclass(frozen=True)
class Suite:
    """One packaged suite: what it is called, its version, and the run settings it applies."""

    name: str
    version: int
    description: str
    #: The run settings, in the layout of a --config file.
    settings: dict[str, Any]
    #: Published numbers this suite's protocol is comparable to, with citations (documentation, never compared).
    reference: dict[str, Any]
    #: The TOML file itself, for ``genbench suites NAME``.
    text: str

    @property
    def sha256(self) -> str:
        """The file's hash, recorded with every run so that a changed preset is never mistaken for the old one."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    def provenance(self) -> dict[str, Any]:
        """What run.json records: the suite's name, version and file hash, and its published rows (the report
        sets them beside the run's numbers, as they were when the run was made)."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256[:16], "reference": self.reference}


def suite_files() -> dict[str, str]:
    """Suite name (the file's stem) -> the TOML text, for every suite shipped in this package."""
    folder = resources.files(__name__)
    return {
        entry.name.removesuffix(".toml"): entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    }


def suite_names() -> list[str]:
    return sorted(suite_files())


def load_suite(name: str) -> Suite:
    """The packaged suite ``name``; an unknown name is a one-line error with "did you mean" and the list."""
    files = suite_files()
    if name not in files:
        from genbench.registry import unknown_name_message  # here, not at the top: it pulls in pluggy

        raise GenbenchError(unknown_name_message("suite", name, sorted(files)) + " List them with: genbench suites")
    return parse_suite(name, files[name])


def parse_suite(name: str, text: str) -> Suite:
    """A suite from its TOML text, with its metadata checked and its run settings checked like a --config file's."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise GenbenchError(f"suite {name!r} is not valid TOML: {error}") from error
    metadata = {key: data.pop(key, None) for key in METADATA_KEYS}
    if metadata["name"] != name:
        raise GenbenchError(f"suite file {name}.toml says name = {metadata['name']!r}; the two must agree")
    if not isinstance(metadata["version"], int) or isinstance(metadata["version"], bool):
        raise GenbenchError(f"suite {name!r} needs an integer version, got {metadata['version']!r}")
    if not isinstance(metadata["description"], str) or not metadata["description"]:
        raise GenbenchError(f"suite {name!r} needs a description")
    reference = metadata["reference"] or {}
    if not isinstance(reference, dict):
        raise GenbenchError(f"suite {name!r}: [reference] must be a table")
    check_setting_names(data, f"suite {name!r}")
    for key, table in reference.items():
        check_published_row(name, key, table)
    return Suite(name, metadata["version"], metadata["description"], data, reference, text)


#: What a ``[reference.NAME]`` row may hold (``genbench.contract.published`` says what each means).
ROW_KEYS = frozenset(
    {"model", "metric", "value", "unit", "source", "beside", "spread", "spread_meaning", "note", "unmatched"}
) | frozenset(PROTOCOL_PARTS)


def check_published_row(suite: str, key: str, table: Any) -> None:
    """A published row is a table with its number, its source and only the protocol parts genbench knows."""
    if not isinstance(table, dict):
        raise GenbenchError(f"suite {suite!r}: [reference.{key}] must be a table")
    unknown = sorted(set(table) - ROW_KEYS)
    if unknown:
        raise GenbenchError(f"suite {suite!r}: [reference.{key}] has unknown keys {unknown}; known: {sorted(ROW_KEYS)}")
    try:
        PublishedRow.from_table(key, table)
    except (KeyError, TypeError, ValueError) as error:
        raise GenbenchError(f"suite {suite!r}: [reference.{key}] is incomplete or malformed ({error!r})") from None


def layered_request(suite: str | None, config: Path | None, given: Mapping[str, Any] | None = None) -> RunRequest:
    """The one layering of a run's settings, for the command line and ``genbench.run`` alike: defaults <
    packaged suite < config file < ``given`` (the flags, or the API's arguments).

    ``given`` holds ``RunRequest`` fields, already parsed; a value of None is one not given. Option tables merge
    key by key: a config file's ``[metric.fid] n_samples = 500`` changes that one option of the suite's
    ``[metric.fid]`` and keeps its extractor and reference split; a flag's option table does the same over both.
    Plugins are added to those the layers load, and checkpoints and sample sets to those they name. A suite's
    option tables for models and metrics that the final request does not run are dropped.
    """
    request = RunRequest()
    if suite is not None:
        chosen = load_suite(suite)
        apply_suite(request, chosen.settings, Path(f"suite:{suite}"))
        request.suite = chosen.provenance()
    if config is not None:
        below = request.model_options, request.metric_options, request.sample_options
        apply_suite(request, read_suite(config), config)
        request.model_options = merged_tables(below[0], request.model_options)
        request.metric_options = merged_tables(below[1], request.metric_options)
        request.sample_options = merged_tables(below[2], request.sample_options)
    flags = {key: value for key, value in (given or {}).items() if value is not None}
    unknown = sorted(set(flags) - {f.name for f in dataclasses.fields(RunRequest)})
    if unknown:
        raise TypeError(f"layered_request: {unknown} are not RunRequest fields")
    request.model_options = merged_tables(request.model_options, flags.pop("model_options", {}))
    request.metric_options = merged_tables(request.metric_options, flags.pop("metric_options", {}))
    request.sample_options = merged_tables(request.sample_options, flags.pop("sample_options", {}))
    request.plugins = list(dict.fromkeys([*request.plugins, *flags.pop("plugins", [])]))
    request.checkpoints.update(flags.pop("checkpoints", {}))
    request.sample_sets.update(flags.pop("sample_sets", {}))
    for key, value in flags.items():
        setattr(request, key, value)
    drop_unused_suite_options(request, suite, config)
    return request


def merged_tables(lower: dict[str, dict[str, Any]], upper: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-name option tables of ``lower`` with those of ``upper`` laid over them, option by option."""
    names = list(dict.fromkeys([*lower, *upper]))
    return {name: {**lower.get(name, {}), **upper.get(name, {})} for name in names}


def suites_table() -> list[tuple[str, str, str]]:
    """(name, version, description) of every packaged suite, for ``genbench suites``."""
    rows = []
    for name in suite_names():
        suite = load_suite(name)
        rows.append((suite.name, f"v{suite.version}", suite.description))
    return rows


def drop_unused_suite_options(request: RunRequest, suite: str | None, config: Path | None) -> None:
    """Drop a suite's option tables for models and metrics that the final request does not run.

    ``--suite cifar10 --models gan`` narrows the suite; its [model.pixelcnn] table is then no mistake of the
    user's. Tables from a config file are kept, so that ``prepare`` still reports those as unused.
    """
    if suite is None:
        return
    settings = load_suite(suite).settings
    from_config = read_suite(config) if config is not None else {}
    for label, options, used in (
        ("model", request.model_options, request.models),
        ("metric", request.metric_options, request.metrics),
    ):
        if used is None:  # every installed metric runs
            continue
        if label == "model" and not used and not request.sample_sets:  # the default models, chosen by prepare
            continue
        suite_only = set(settings.get(label, {})) - set(from_config.get(label, {}))
        for name in suite_only - set(used):
            del options[name]
