"""The protocol check: numbers are ranked side by side only when they were measured the same way.

``check_protocols`` raises GenbenchError naming the column, the runs and cells, and the fields that differ
(see the package docstring for which fields count), and returns each column's agreed protocol for the report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from genbench.contract import CellRecord, GenbenchError
from genbench.report.aggregate import TRAIN_TIME
from genbench.report.runs import Entry, canonical

#: Provenance fields that record what a measurement found or where it cached things, not how it measured.
MEASUREMENT_FIELDS = frozenset(
    {
        "seconds",
        "elapsed",
        "duration",
        "wall_time",
        "cache",
        "cache_path",
        "cached",
        "nll_stderr",
        "seconds_per_nfe",
        "evaluations",  # each of a metric's repeated evaluations (the column holds their mean)
        "fd_infinity_fids",  # the FIDs that FD-infinity's line was fitted to
        "per_class",  # intra_fid's FID and image counts of each class
        "worst_class",
        "classes_missed",
    }
)
#: Provenance fields that describe the model's own estimator (its likelihood, of which kind, with which settings;
#: its sampler and the network evaluations a sample costs): compared per model, not across models.
PER_MODEL_FIELDS = frozenset({"method", "kind", "likelihood", "settings", "sampler", "nfe"})


def check_protocols(entries: Sequence[Entry], columns: Sequence[str]) -> dict[tuple[str, str], dict[str, str]]:
    """Refuse numbers measured differently; return, per (data set, column), its protocol for the report."""
    protocols: dict[tuple[str, str], dict[str, str]] = {}
    by_dataset: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_dataset[entry.dataset].append(entry)
    for dataset, group in by_dataset.items():
        protocols[(dataset, "data set")] = _agreed(
            "the data set", dataset, [(e, _protocol_fields(e.record.dataset_provenance)) for e in group]
        )
        for column in columns:
            measured = [(e, column_protocol(e, column)) for e in group if _measured(e.record, column)]
            if measured:
                protocols[(dataset, column)] = _agreed(f"column {column!r}", dataset, measured)
    return protocols


def _measured(record: CellRecord, column: str) -> bool:
    value = record.train_time if column == TRAIN_TIME else record.metrics.get(column)
    return record.status == "ok" and value is not None


def column_protocol(entry: Entry, column: str) -> dict[str, Any]:
    """How one cell measured one column (see the module docstring for which fields count)."""
    if column == TRAIN_TIME:
        return {"device": entry.record.device, "hardware": entry.run.hardware}
    metric = metric_of_column(column, entry)
    fields = _protocol_fields(entry.record.provenance.get(metric, {}) if metric else {})
    if "device" in fields:
        fields["hardware"] = entry.run.hardware
    return fields


def metric_of_column(column: str, entry: Entry) -> str | None:
    """The metric that wrote a column: run.json's column_metrics, else the metric named like the column or its
    longest prefix (kid -> kid_std)."""
    declared = entry.run.info.get("column_metrics", {}).get(column)
    if declared:
        return str(declared)
    candidates = [name for name in entry.record.provenance if column == name or column.startswith(f"{name}_")]
    return max(candidates, key=len) if candidates else None


def _protocol_fields(provenance: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in provenance.items() if key not in MEASUREMENT_FIELDS}


def _agreed(what: str, dataset: str, measured: list[tuple[Entry, dict[str, Any]]]) -> dict[str, str]:
    """The one value of each field (per model for PER_MODEL_FIELDS), or a GenbenchError naming what differs."""
    values: dict[str, dict[str, list[Entry]]] = defaultdict(lambda: defaultdict(list))
    shown: dict[str, Any] = {}
    for entry, fields in measured:
        for key, value in fields.items():
            scope = f"{key} of {entry.model}" if key in PER_MODEL_FIELDS else key
            values[scope][canonical(value)].append(entry)
            shown[canonical(value)] = value
    differing = {scope: found for scope, found in values.items() if len(found) > 1}
    if differing:
        _refuse(what, dataset, differing, shown)
    # field -> value -> the models it holds for ([] for a field that is one value across models)
    agreed: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for scope, found in sorted(values.items()):
        key, _, model = scope.partition(" of ")
        models = agreed[key][plain(shown[next(iter(found))])]
        models += [model] if model else []
    return {
        key: "; ".join(f"{value} ({', '.join(models)})" if models else value for value, models in found.items())
        for key, found in agreed.items()
    }


def _refuse(what: str, dataset: str, differing: dict[str, dict[str, list[Entry]]], shown: dict[str, Any]) -> NoReturn:
    details = []
    for scope, found in differing.items():
        sides = [f"{scope}={plain(shown[value])} in {_where(entries)}" for value, entries in found.items()]
        details.append(" vs ".join(sides))
    raise GenbenchError(
        f"refusing to rank {what} on {dataset} side by side: its protocol differs in "
        f"{', '.join(differing)}: {'; '.join(details)}. Rerun with the same settings, or report these runs separately"
    )


def _where(entries: list[Entry]) -> str:
    """'results/a (vae seeds 0, 1), results/b (gan seed 0)'."""
    seeds: dict[tuple[Path, str], list[int]] = defaultdict(list)
    for entry in entries:
        seeds[(entry.run.root, entry.model)].append(entry.record.seed)
    parts = []
    for (root, model), hit in seeds.items():
        label = "seed" if len(hit) == 1 else "seeds"
        parts.append(f"{root} ({model} {label} {', '.join(map(str, sorted(hit)))})")
    return ", ".join(parts)


def plain(value: Any) -> str:
    """A protocol value as the report shows it: text as it is, anything else as canonical JSON."""
    return value if isinstance(value, str) else canonical(value)
