"""Reading runs for a leaderboard: run directories, their cell records, and the row each cell counts in."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbench.contract import CellRecord, GenbenchError
from genbench.store.layout import RunDirectory, read_records


@dataclass(frozen=True)
class Run:
    """One run directory as read from disk: its run.json and the records of the cells it lists."""

    root: Path
    info: dict[str, Any]
    records: tuple[CellRecord, ...]
    #: Cells that run.json lists but that have no record (yet): an interrupted or running run.
    missing: tuple[str, ...] = ()
    #: (cell id, why its record is damaged: a failed checksum, not JSON, not a record): skipped.
    damaged: tuple[tuple[str, str], ...] = ()

    @property
    def threads(self) -> str:
        """'1 torch thread'; 'up to 2 torch threads per worker (executor local)' where workers ran the cells."""
        threads = (self.info.get("device") or {}).get("torch_threads")
        if threads is None:
            return "torch threads not recorded"
        count = f"{threads} torch thread{'s' if threads != 1 else ''}"
        executor = (self.info.get("execution") or {}).get("executor") or "serial"
        return count if executor == "serial" else f"up to {count} per worker (executor {executor})"

    @property
    def hardware(self) -> str:
        device = self.info.get("device") or {}
        return " ".join(str(device[key]) for key in ("type", "name") if device.get(key)) or "unknown"


def find_run_dirs(paths: Sequence[Path]) -> list[Path]:
    """Each path is a run directory (holding run.json), its results.csv, or a folder of run directories."""
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise GenbenchError(f"{path} does not exist; give run directories (results/<run>) or a folder of them")
        if path.is_file():
            path = path.parent
        if (path / "run.json").is_file():
            found.append(path)
            continue
        children = sorted(child for child in path.iterdir() if (child / "run.json").is_file())
        if not children:
            raise GenbenchError(f"{path} holds no run directories (folders with a run.json), e.g. results/<run>")
        found.extend(children)
    return list(dict.fromkeys(found))


def read_run(root: Path) -> Run:
    directory = RunDirectory(root)
    info = directory.read_run()
    stored = read_records(directory, info.get("cells", []))
    return Run(root, info, tuple(stored.records), tuple(stored.missing), tuple(stored.damaged.items()))


@dataclass(frozen=True)
class Entry:
    """One cell as the leaderboard sees it: its record, its run, and the row (data set, model) it counts in."""

    record: CellRecord
    run: Run
    dataset: str
    model: str


def dataset_label(record: CellRecord) -> str:
    """Binarized data are another data set (other levels, other numbers), so they get a table of their own."""
    return f"{record.dataset} (binarized)" if record.dataset_provenance.get("binarized") else record.dataset


def model_labels(records: Sequence[CellRecord]) -> list[str]:
    """The model's name, plus the config fields that differ where one model appears with several configs."""
    configs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if _label_fields(record) not in configs[record.model]:
            configs[record.model].append(_label_fields(record))
    labels = []
    for record in records:
        variants = configs[record.model]
        differing = sorted({key for config in variants for key in config if _differs(variants, key)})
        details = ", ".join(f"{key}={_label_fields(record).get(key)}" for key in differing)
        labels.append(f"{record.model} ({details})" if details else record.model)
    return labels


def _label_fields(record: CellRecord) -> dict[str, Any]:
    """The config, and where the model came from: weights from two files are two rows, as two configs are."""
    origin = record.provenance.get("origin")
    made = f"{origin.get('file')} ({str(origin.get('sha256'))[:8]})" if isinstance(origin, dict) else "training"
    # Evaluation-time options (a sweep of steps, say) make rows of their own, as configs do.
    return {**record.config, **record.sample_options, "from": made}


def _differs(configs: list[dict[str, Any]], key: str) -> bool:
    return len({canonical(config.get(key)) for config in configs}) > 1


def canonical(value: Any) -> str:
    """One spelling per value (sorted keys), so that values from different files compare equal when they are."""
    return json.dumps(value, sort_keys=True, default=str)


def label_entries(runs: Sequence[Run]) -> list[Entry]:
    """Every cell of every run, with the row (data set, model) it counts in."""
    pairs = [(record, run) for run in runs for record in run.records]
    labels = model_labels([record for record, _ in pairs])
    return [
        Entry(record, run, dataset_label(record), model) for (record, run), model in zip(pairs, labels, strict=True)
    ]


def latest_per_seed(entries: Sequence[Entry]) -> tuple[list[Entry], list[str]]:
    """One cell per (data set, model, seed), the one that finished last, and a note for each cell left out."""
    latest: dict[tuple[str, str, int], Entry] = {}
    notes = []
    for entry in entries:
        key = (entry.dataset, entry.model, entry.record.seed)
        earlier = latest.get(key)
        if earlier is not None:
            entry, dropped = sorted([earlier, entry], key=lambda e: e.record.finished, reverse=True)
            notes.append(
                f"{entry.model} seed {entry.record.seed} on {entry.dataset} is in {dropped.run.root} and "
                f"{entry.run.root}: the later, from {entry.run.root}, is used"
            )
        latest[key] = entry
    return list(latest.values()), notes


def missing_notes(runs: Sequence[Run]) -> list[str]:
    notes = [f"{r.root}: {len(r.missing)} cells have no record yet (interrupted or running)" for r in runs if r.missing]
    return notes + [
        f"{run.root}: damaged record of cell {cell_id} skipped ({why}); rerun the run's command to recompute it"
        for run in runs
        for cell_id, why in run.damaged
    ]
