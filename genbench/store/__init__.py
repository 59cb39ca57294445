"""The store: the one owner of the results directory's layout (records, checkpoints, run.json, results.csv).

    <run>/run.json              command, settings, package versions, git revision, device, times, cell ids
    <run>/cells/<cell>.json     one CellRecord per cell
    <run>/checkpoints/<key>.*   safetensors tensors + a JSON sidecar, loaded without unpickling
    <run>/samples/<cell>.png    a grid of samples
    <run>/results.csv           one row per cell of the latest invocation

Every write goes to a temporary file that is then renamed over the target, so a crash leaves either the old
file or the new one, never half of one; temporary files that a killed run left behind are removed when the
next run starts (``remove_stale_temporaries``).

Every cell record, checkpoint and cached file carries its SHA-256: a JSON file in its own ``sha256`` field (of
its canonical JSON without that field), a safetensors file in the ``tensors_sha256`` field of its JSON sidecar.
Reading verifies it. A file that fails its check, does not parse or does not fit its schema is never used: it
is reported in one warning line (``DamagedFileWarning``), moved aside to ``<name>.corrupt`` (never deleted)
and computed again (``read_checked_json``, ``load_checked_tensors``, ``set_aside``).

    layout      RunDirectory: where each file of a run lives, reading and writing it; the shared cache folder
    records     the schemas a run.json, a cell record and a checkpoint must fit to be read
    frame       the results table (results.csv) from the records, and that table printed for a terminal

The file primitives beneath them (atomic writes, checksums, checked tensors) are ``genbench.toolkit.files``.
"""

from __future__ import annotations

from genbench.store.frame import format_table, load_results, records_frame
from genbench.store.layout import RunDirectory, check_writable_folder, read_records
from genbench.store.records import BASE_COLUMNS, DAMAGED, NOT_APPLICABLE_COLUMN, damaged_row

__all__ = [
    "BASE_COLUMNS",
    "DAMAGED",
    "NOT_APPLICABLE_COLUMN",
    "RunDirectory",
    "check_writable_folder",
    "damaged_row",
    "format_table",
    "load_results",
    "read_records",
    "records_frame",
]
