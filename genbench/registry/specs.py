"""What a hook's answer must be to be registered: a list of specs of its kind, with plain names, checked fields
and config classes whose fields all have defaults. A plugin that answers otherwise is reported as broken.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from genbench.contract import (
    CAPABILITIES,
    MetricSpec,
    ModelSpec,
    PluginError,
    TrackerSpec,
)
from genbench.contract.executors import ExecutorSpec
from genbench.registry.kinds import Kind
from genbench.toolkit.checks import check_fields, field_hints, shown

#: Spec names become parts of file names (cell ids, run folders): one plain word each.
SPEC_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


#: Columns of the results table that the core writes; a metric cannot declare them.
RESERVED_COLUMNS = frozenset(
    {
        "model",
        "dataset",
        "seed",
        "sample_options",
        "status",
        "error",
        "train_time",
        "eval_time",
        "not_applicable",
        "cell_id",
    }
)


def validated(kind: Kind[Any], answer: Any) -> list[Any]:
    if answer is None:
        return []
    if not isinstance(answer, list | tuple):
        raise PluginError(f"must return a list of {kind.spec_type.__name__}, got {type(answer).__name__}")
    items: list[Any] = list(answer)
    for spec in items:
        if not isinstance(spec, kind.spec_type):
            raise PluginError(f"must return {kind.spec_type.__name__} objects, got {type(spec).__name__}")
        if not isinstance(spec.name, str) or not SPEC_NAME.match(spec.name) or spec.name.startswith("."):
            raise PluginError(
                f"{kind.spec_type.__name__} has an invalid name {shown(spec.name)}: use letters, digits, '.', '_', '-'"
            )
        check_fields(spec, f"{kind.label} {spec.name!r}")
        validate_details(spec)
    return items


def validate_details(spec: Any) -> None:
    if isinstance(spec, ModelSpec):
        require_dataclass_with_defaults(spec.name, spec.config_class)
        if not callable(spec.factory):
            raise PluginError(f"model {spec.name!r}: factory is not callable")
    elif isinstance(spec, MetricSpec):
        if not spec.columns or not callable(spec.compute):
            raise PluginError(f"metric {spec.name!r}: needs columns and a callable compute")
        for column in spec.columns:
            check_fields(column, f"metric {spec.name!r} column")
        names = [column.name for column in spec.columns]
        clashing = sorted({name for name in names if names.count(name) > 1} | (set(names) & RESERVED_COLUMNS))
        if clashing:
            raise PluginError(f"metric {spec.name!r}: columns {clashing} are repeated or reserved for the core")
        if not spec.requires_any <= CAPABILITIES:
            raise PluginError(f"metric {spec.name!r}: unknown capabilities {sorted(spec.requires_any - CAPABILITIES)}")
        if spec.config_class is not None:
            require_dataclass_with_defaults(spec.name, spec.config_class)
    elif isinstance(spec, ExecutorSpec):
        return  # its fields (name, callables) are checked by check_fields
    elif isinstance(spec, TrackerSpec):
        if spec.check is not None and not callable(spec.check):
            raise PluginError(f"tracker {spec.name!r}: check is not callable")
    elif not callable(spec.load):
        raise PluginError(f"{spec.name!r}: load is not callable")


def require_dataclass_with_defaults(name: str, config_class: type) -> None:
    if not dataclasses.is_dataclass(config_class):
        raise PluginError(f"{name!r}: config_class must be a dataclass")
    try:
        config_class()
    except TypeError as error:
        raise PluginError(f"{name!r}: every config field needs a default ({error})") from error
    try:
        field_hints(config_class)  # options are checked against these, so they must resolve
    except Exception as error:
        raise PluginError(
            f"{name!r}: the annotations of {config_class.__name__} cannot be resolved ({error})"
        ) from error
