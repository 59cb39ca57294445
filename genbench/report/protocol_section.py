"""The protocol section every renderer shows: how each number of the leaderboard was measured, each thing once.

Its parts, in order: the data sets; the machine (hardware and thread count, once where every run agrees, per run
where they differ); the feature extractors, each identity listed once and named, so that the metrics refer to it
by name; the metrics (columns measured the same way share a line, a spread sits beside its column); the models'
configs; the plugins; the runs.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from genbench.contract import CellRecord
from genbench.report.leaderboard import Leaderboard
from genbench.report.protocol import plain
from genbench.report.runs import Run
from genbench.report.tables import column_header

#: A provenance field that identifies a component measured with (a feature extractor's weights and network) ends so;
#: the section lists each identity once and the metrics name it.
IDENTITY_SUFFIX = "_identity"
#: What the Machine section says of the thread count.
THREADS_MATTER = (
    "bit-identical numbers need the same thread count (OMP_NUM_THREADS, or torch.set_num_threads), as well as the "
    "same libraries and hardware: with other threads, sums are added in another order, and FID or a likelihood "
    "can differ in the last digits, a GAN's FID by points after training; times differ in any case"
)

Section = tuple[str, list[tuple[str, str]]]


def protocol_sections(leaderboard: Leaderboard) -> list[Section]:
    """The protocol of every number: (section title, [(subject, description)])."""
    datasets = [
        (dataset, _fields_text(leaderboard.protocols.get((dataset, "data set"), {})))
        for dataset in leaderboard.datasets
    ]
    identities = identity_names(leaderboard)
    extractors = [(i.name, f"{_fields_text(i.fields)}; used by {', '.join(i.users)}") for i in identities]
    runs = [(str(run.root), _run_text(run)) for run in leaderboard.runs]
    models = [(model, _fields_text(config)) for model, config in _model_configs(leaderboard).items()]
    return [
        ("Data sets", datasets),
        ("Machine", machine_lines(leaderboard.runs)),
        *([("Feature extractors", extractors)] if extractors else []),
        ("Metrics", metric_lines(leaderboard, {identity.key: identity.name for identity in identities})),
        ("Models", models),
        ("Plugins", plugin_lines(leaderboard.runs)),
        ("Runs", runs),
    ]


def machine_lines(runs: Sequence[Run]) -> list[tuple[str, str]]:
    """Hardware and threads: one line where every run agrees, else one per kind of machine with its runs; then why
    the thread count is part of the protocol."""
    machines: dict[str, list[str]] = defaultdict(list)
    for run in runs:
        machines[f"{run.hardware}, {run.threads}"].append(str(run.root))
    if len(machines) == 1:
        lines = [(next(iter(machines)), "every run" if len(runs) > 1 else str(runs[0].root))]
    else:
        lines = [(machine, f"runs {', '.join(roots)}") for machine, roots in machines.items()]
    return [*lines, ("threads", THREADS_MATTER)]


@dataclass(frozen=True)
class Identity:
    """A component the metrics measured with (a feature extractor), as its ``*_identity`` provenance field says."""

    name: str
    #: The field's value as the protocols hold it (canonical JSON): how a metric's line finds its name.
    key: str
    fields: dict[str, Any]
    #: The columns that used it: 'digits · fid'.
    users: list[str]


def identity_names(leaderboard: Leaderboard) -> list[Identity]:
    """Each distinct identity a protocol records (``*_identity`` fields: a feature extractor's), once: named by its
    own ``name``, with its data sets where two identities share one name."""
    found: dict[str, tuple[dict[str, Any], list[str], set[str]]] = {}
    for (dataset, column), fields in leaderboard.protocols.items():
        for value in (v for k, v in fields.items() if k.endswith(IDENTITY_SUFFIX)):
            identity = _parsed(value)
            if identity is not None and column not in leaderboard.companions:
                identity, users, datasets = found.setdefault(value, (identity, [], set()))
                users.append(f"{dataset} · {column}")
                datasets.add(dataset)
    named: dict[str, int] = defaultdict(int)
    for identity, _, _ in found.values():
        named[str(identity.get("name", "extractor"))] += 1
    result = []
    for key, (identity, users, datasets) in found.items():
        name = str(identity.get("name", "extractor"))
        if named[name] > 1:
            name = f"{name} ({', '.join(sorted(datasets))})"
        result.append(Identity(name, key, identity, users))
    return result


def _parsed(value: str) -> dict[str, Any] | None:
    """An identity as the protocol holds it (canonical JSON), read back; None if it is not one object (a value per
    model, say), in which case it is shown in full where it is."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def metric_lines(leaderboard: Leaderboard, identity_names: Mapping[str, str]) -> list[tuple[str, str]]:
    """One line per data set and way of measuring: columns that share a protocol share a line (precision and
    recall); a spread or evaluation count whose protocol is its column's is named beside it; an identity is
    referred to by its name in the Feature extractors section."""
    return [(subject, text) for subject, text, _ in _metric_groups(leaderboard, identity_names)]


def metric_anchors(leaderboard: Leaderboard) -> dict[tuple[str, str], str]:
    """(data set, column) -> the id of its line in the Metrics section ('protocol-metric-3'), so that a table's
    header can link to how its column was measured."""
    names = {identity.key: identity.name for identity in identity_names(leaderboard)}
    return {
        key: f"protocol-metric-{index}"
        for index, (_, _, columns) in enumerate(_metric_groups(leaderboard, names))
        for key in columns
    }


def _metric_groups(
    leaderboard: Leaderboard, identity_names: Mapping[str, str]
) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """The Metrics section's lines: (subject, text, the (data set, column) pairs the line describes)."""
    lines: dict[tuple[str, str], list[str]] = defaultdict(list)
    described: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    companions = leaderboard.companions
    for dataset, column in leaderboard.protocols:
        if column == "data set":
            continue
        fields = leaderboard.protocols[(dataset, column)]
        companion = companions.get(column)
        if companion is not None and fields == leaderboard.protocols.get((dataset, companion.of)):
            continue  # named beside its column, below
        header = column_header(column, leaderboard.specs.get(column))
        beside = [name for name, c in companions.items() if c.of == column and (dataset, name) in leaderboard.protocols]
        beside = [name for name in beside if leaderboard.protocols[(dataset, name)] == fields]
        if beside:
            header += f" (with {', '.join(beside)})"
        key = (dataset, _column_text(leaderboard, column, fields, identity_names))
        lines[key].append(header)
        described[key] += [(dataset, column), *((dataset, name) for name in beside)]
    return [
        (f"{dataset} · {', '.join(headers)}", text, described[(dataset, text)])
        for (dataset, text), headers in lines.items()
    ]


def _column_text(
    leaderboard: Leaderboard, column: str, fields: Mapping[str, str], identity_names: Mapping[str, str]
) -> str:
    spec = leaderboard.specs.get(column)
    description = f"{spec.description}. " if spec is not None and spec.description else ""
    shown = dict(fields)
    for key, value in fields.items():
        name = identity_names.get(value) if key.endswith(IDENTITY_SUFFIX) else None
        if name is not None:
            del shown[key]
            shown[key.removesuffix(IDENTITY_SUFFIX)] = f"{name}, listed under Feature extractors"
    return description + (_fields_text(shown) or "no protocol recorded")


def _fields_text(fields: Mapping[str, Any]) -> str:
    return "; ".join(f"{key}: {plain(value)}" for key, value in fields.items())


def plugin_lines(runs: Sequence[Run]) -> list[tuple[str, str]]:
    """Each plugin the runs loaded: its distribution (or module), version and source hash; once per distinct code."""
    lines: dict[tuple[str, str], None] = {}
    for run in runs:
        for plugin in run.info.get("plugins") or []:
            if not isinstance(plugin, dict):
                continue
            origin = plugin.get("distribution") or f"module {plugin.get('module')}"
            version = f" {plugin['version']}" if plugin.get("version") else ""
            source = plugin.get("source_hash") or "unknown"
            lines[(str(plugin.get("name")), f"{origin}{version}, source sha256 {source}")] = None
    return list(lines)


def _run_text(run: Run) -> str:
    info = run.info
    packages = ", ".join(f"{name} {version}" for name, version in run_packages(info).items())
    parts = [
        f"git revision: {info.get('git_revision') or 'unknown'}",
        f"device: {run.hardware}, {run.threads}",
        f"python: {info.get('python', 'unknown')}",
        f"packages: {packages or 'unknown'}",
        f"started: {info.get('started', 'unknown')}",
        f"command: {' '.join(map(str, info.get('command', [])))}",
    ]
    return "; ".join(parts)


def run_packages(info: Mapping[str, Any]) -> dict[str, str]:
    """The distributions a run's numbers depend on, with their versions: those run.json records by name
    (genbench, torch, numpy, ...), then each other distribution that a working plugin came from (a third-party
    plugin, recorded only in run.json's plugins). A broken plugin computed nothing, so its distribution is not
    listed; a plugin loaded with -p has no distribution (the Plugins section names its module)."""
    packages = {str(name): str(version) for name, version in (info.get("packages") or {}).items()}
    listed = {_distribution_key(name) for name in packages}
    for plugin in info.get("plugins") or []:
        if not isinstance(plugin, dict) or plugin.get("error") or not plugin.get("distribution"):
            continue
        name = str(plugin["distribution"])
        if _distribution_key(name) not in listed:  # genbench's own built-ins are listed already
            listed.add(_distribution_key(name))
            packages[name] = str(plugin.get("version") or "(version unknown)")
    return packages


def _distribution_key(name: str) -> str:
    """One spelling per distribution name (PEP 503): genbench_made, Genbench-Made and genbench.made are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _model_configs(leaderboard: Leaderboard) -> dict[str, dict[str, Any]]:
    return {entry.model: {**entry.record.config, **_origin_fields(entry.record)} for entry in leaderboard.entries}


def _origin_fields(record: CellRecord) -> dict[str, str]:
    """Where a model made elsewhere came from (genbench.runner.external): the kind, the file and its SHA-256."""
    origin = record.provenance.get("origin")
    if not isinstance(origin, dict):
        return {}
    return {"origin": f"{origin.get('kind', 'file')} {origin.get('file')}, sha256 {origin.get('sha256')}"}
