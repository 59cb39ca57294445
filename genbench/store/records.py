"""What a run folder's files must hold to be read: the schemas of run.json, cell records and checkpoints."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from genbench.contract import CellRecord, Column, GenbenchError
from genbench.toolkit.checks import check_fields, check_value

if TYPE_CHECKING:
    pass


#: The leading columns of every results table; metric columns follow in the order the metrics were asked for.
BASE_COLUMNS = ["model", "dataset", "seed", "status", "error", "train_time", "eval_time"]
NOT_APPLICABLE_COLUMN = "not_applicable"
#: The status ``show`` gives a cell whose record is damaged (a record on disk has "ok" or "failed").
DAMAGED = "damaged"


#: Cell ids are file names made by ``config.cell_id``: the name, data set, seed and a hash.
_CELL_ID = re.compile(r"^[A-Za-z0-9_.+\-]+$")


def is_safe_cell_id(cell_id: Any) -> bool:
    """A cell id read from a run.json names a file in ``cells/``: not a path, and nothing hidden."""
    return isinstance(cell_id, str) and bool(_CELL_ID.match(cell_id)) and not cell_id.startswith(".")


#: The run.json fields that show and report read, with their types; any may be absent (older runs).
RUN_JSON_FIELDS: dict[str, Any] = {
    "cells": list[str],
    "columns": list[str],
    "column_specs": dict[str, dict[str, Any]],
    "column_metrics": dict[str, str],
    "device": dict[str, Any],
    "packages": dict[str, str],
    "command": list[str],
    "git_revision": str | None,
    "python": str,
    "started": str,
}


def run_json_problem(data: Any) -> str | None:
    """What makes ``data`` unusable as a run.json, or None: readers may then trust the fields' types."""
    if not isinstance(data, dict):
        return "not a run description"
    try:
        for key, hint in RUN_JSON_FIELDS.items():
            if key in data:
                check_value(data[key], hint, key)
        for name, spec in data.get("column_specs", {}).items():
            check_value(spec, dict[str, Any], f"column_specs.{name}")
            known = {f.name for f in dataclasses.fields(Column)}
            check_fields(Column(**{k: v for k, v in spec.items() if k in known}), f"column_specs.{name}")
    except GenbenchError as error:
        return str(error)
    except TypeError:  # a column spec without a unit or direction
        return "column_specs are not column descriptions"
    return None


#: The JSON types of CellRecord's fields (a record of another shape is damaged).
_RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "cell_id": (str,),
    "model": (str,),
    "dataset": (str,),
    "seed": (int,),
    "status": (str,),
    "config": (dict,),
    "checkpoint_key": (str,),
    "error": (str, type(None)),
    "traceback": (str, type(None)),
    "train_time": (int, float, type(None)),
    "metrics": (dict,),
    "not_applicable": (dict,),
    "provenance": (dict,),
    "metric_times": (dict,),
    "dataset_provenance": (dict,),
    "device": (str,),
    "curve": (list,),
    "trained": (bool,),
    "started": (str,),
    "finished": (str,),
    "sample_options": (dict,),
}
#: The fields without a default; one with a default (``metric_times``, say, added after records were first written)
#: may be absent, and a record from before it loads with the default.
_REQUIRED_RECORD_FIELDS = [
    f.name
    for f in dataclasses.fields(CellRecord)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
]


def record_problem(data: Mapping[str, Any], cell_id: str) -> str | None:
    """What makes ``data`` not a CellRecord of cell ``cell_id``, or None."""
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(CellRecord)})
    missing = [name for name in _REQUIRED_RECORD_FIELDS if name not in data]
    if unknown or missing:
        return f"not a cell record: fields {unknown} unknown, {missing} missing"
    for name, value in data.items():
        types = _RECORD_TYPES.get(name, (object,))  # a field added later is checked by its presence only
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return f"not a cell record: {name} is a {type(value).__name__}"
    if data["cell_id"] != cell_id:
        return f"the record of cell {data['cell_id']!r} in the file of cell {cell_id!r}"
    for field, what in (("metrics", "metric value"), ("metric_times", "metric time")):
        values = data.get(field, {}).values()
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            return f"not a cell record: a {what} is not a finite number"
    return None


def checkpoint_problem(meta: Mapping[str, Any]) -> str | None:
    train_time = meta.get("train_time")
    if train_time is not None and not isinstance(train_time, int | float):
        return f"train_time is a {type(train_time).__name__}"
    if not isinstance(meta.get("curve", []), list):
        return "curve is not a list"
    return None


#: config.cell_id's names: "<model>-<dataset>-seed<seed>-<hash>".
CELL_ID = re.compile(r"^(?P<head>.+)-seed(?P<seed>\d+)-[0-9a-f]+$")


def damaged_row(cell_id: str, dataset: str, reason: str) -> CellRecord:
    """A stand-in record for a table row that says the cell's record is damaged (model and seed from its id)."""
    match = CELL_ID.match(cell_id)
    model = match["head"].removesuffix(f"-{dataset}") if match else cell_id
    seed = int(match["seed"]) if match else -1
    error = f"damaged record: {reason}"
    return CellRecord(cell_id, model, dataset, seed, DAMAGED, {}, "", error=error)
