"""The plugin manager: entry points of group "genbench", ``-p MODULE``, validation, and one registry per kind.

Built-in plugins are found exactly as third-party ones are, through their entry points; this package never
names one. pluggy stays inside it: the rest of genbench calls ``get(KIND, name)``, ``call_hook`` and
``add_options``. Its modules: ``kinds`` (the kinds of spec and their hooks), ``specs`` (what a hook's answer must
be), ``code`` (the source hash of each plugin, part of every key its specs compute).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic

import pluggy

from genbench.contract import (
    Dataset,
    ExtractorSpec,
    GenbenchError,
    MetricSpec,
    ModelSpec,
    OptionGroup,
    PluginError,
    hookspecs,
)
from genbench.registry.code import describe_plugin, plugin_source_location, source_hash
from genbench.registry.kinds import DATASET, EXECUTOR, EXTRACTOR, KINDS, METRIC, MODEL, TRACKER, Kind, S
from genbench.registry.specs import validated

ENTRY_POINT_GROUP = "genbench"


AUTOLOAD_OFF_VARIABLE = "GENBENCH_DISABLE_PLUGIN_AUTOLOAD"


@dataclass
class PluginInfo:
    """One loaded (or broken) plugin: its registered name and where it came from."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    #: Why the plugin is broken (failed to import, answered a hook wrongly); None when it works.
    error: str | None = None
    #: SHA-256 of the plugin's source files (genbench.registry.code): in every key its specs compute, so that an
    #: edited plugin reruns what it touches even when its version stays the same (an editable install).
    source_hash: str | None = None

    @property
    def code(self) -> dict[str, Any]:
        """What identifies this plugin's code in cell ids and checkpoint keys."""
        return describe_plugin(self.distribution, self.version, self.source_hash)

    @property
    def origin(self) -> str:
        if self.distribution is None:
            return f"module {self.module}"
        return f"{self.distribution} {self.version}"


@dataclass(frozen=True)
class Registered(Generic[S]):
    spec: S
    plugin: PluginInfo


#: The accessors of earlier releases (registry.model(name), ...), each now ``registry.get(KIND, name)``.
_OLD_ACCESSORS: dict[str, Kind[Any]] = {
    "model": MODEL,
    "metric": METRIC,
    "dataset": DATASET,
    "executor": EXECUTOR,
    "tracker": TRACKER,
}


@dataclass(frozen=True)
class ColumnCollision:
    """Two metrics of different plugins that declare one column: each would overwrite the other's numbers.

    Loading records it and goes on (a run that uses one of the two is unaffected); a run that would put both
    into one table stops before anything trains (``Registry.check_columns``)."""

    column: str
    first: Registered[MetricSpec]
    second: Registered[MetricSpec]

    @property
    def metrics(self) -> tuple[str, str]:
        return self.first.spec.name, self.second.spec.name

    def describe(self) -> str:
        """Both metrics and both plugins' origins, on one line."""
        first, second = self.first, self.second
        return (
            f"column {self.column!r} is declared by metric {first.spec.name!r} of plugin {first.plugin.name!r} "
            f"from {first.plugin.origin} and by metric {second.spec.name!r} of plugin {second.plugin.name!r} "
            f"from {second.plugin.origin}"
        )


@dataclass
class Registry:
    """Everything the loaded plugins provide, one dict per kind, keyed by name."""

    _pm: pluggy.PluginManager
    plugins: list[PluginInfo] = field(default_factory=list)
    specs: dict[str, dict[str, Registered[Any]]] = field(default_factory=dict)
    #: Metric columns that two plugins' metrics both declare, found when plugins load.
    collisions: list[ColumnCollision] = field(default_factory=list)

    def names(self, kind: Kind[Any]) -> list[str]:
        return sorted(self.specs.get(kind.label, {}))

    def get(self, kind: Kind[S], name: str) -> S:
        """The spec called ``name``, or a GenbenchError with "did you mean" and the available names."""
        found = self.specs.get(kind.label, {}).get(name)
        if found is None:
            broken = "".join(f" Broken plugin {p.name!r} ({p.origin}): {p.error}." for p in self.broken)
            raise GenbenchError(unknown_name_message(kind.label, name, self.names(kind)) + broken)
        spec: S = found.spec
        return spec

    def plugin_of(self, kind: Kind[Any], name: str) -> PluginInfo:
        return self.specs[kind.label][name].plugin

    def check_columns(self, metrics: Sequence[str]) -> None:
        """Refuse, in one line naming both plugins, a run whose ``metrics`` include two that write one column."""
        chosen = set(metrics)
        clashing = [c for c in self.collisions if set(c.metrics) <= chosen]
        if clashing:
            raise PluginError(
                "; ".join(f"{c.describe()}, and this run uses both" for c in clashing)
                + ": rename the column in one of the plugins, or choose one metric with --metrics"
            )

    def extractor(self, name: str) -> ExtractorSpec:
        """The feature extractor called ``name`` (what ``EvalContext.registry`` offers metrics)."""
        return self.get(EXTRACTOR, name)

    def extractor_source(self, name: str) -> str | None:
        return self.plugin_of(EXTRACTOR, name).source_hash

    def default_models(self) -> list[str]:
        """The models a run benchmarks when it names none (``ModelSpec.default_rank``), in rank order."""
        specs = [self.get(MODEL, name) for name in self.names(MODEL)]
        ranked = [spec for spec in specs if spec.default_rank is not None]
        return [spec.name for spec in sorted(ranked, key=lambda spec: (spec.default_rank, spec.name))]

    def sample_set_model(self) -> ModelSpec:
        """The model that serves ``--sample-set NAME=PATH`` (``ModelSpec.serves_sample_sets``)."""
        serving = [name for name in self.names(MODEL) if self.get(MODEL, name).serves_sample_sets]
        if not serving:
            raise GenbenchError("--sample-set needs a model plugin that serves sample sets (genbench's 'samples')")
        return self.get(MODEL, serving[0])

    def example_names(self, kind: Kind[Any], fallback: str) -> str:
        """Installed names of a kind, comma-separated, for error messages that show how to write a list."""
        return ",".join(self.names(kind)[:3]) or fallback

    def default_extractor(self, dataset: Dataset) -> str:
        can_serve = [
            spec
            for spec in (self.get(EXTRACTOR, name) for name in self.names(EXTRACTOR))
            if spec.default_rank is not None and (dataset.train.labels is not None or not spec.needs_labels)
        ]
        if not can_serve:
            raise GenbenchError(
                f"no installed feature extractor is a default for data set {dataset.name!r}; name one "
                f"(installed: {', '.join(self.names(EXTRACTOR)) or 'none'})"
            )
        return min(can_serve, key=lambda spec: (spec.default_rank, spec.name)).name

    def call_hook(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call an event hook (``genbench_training_curve``, ``genbench_cell_finished``) on every plugin."""
        result: list[Any] = getattr(self._pm.hook, hook)(**kwargs)
        return result

    def add_options(self, options: OptionGroup) -> None:
        """Let every plugin add its options to ``genbench run`` (``genbench_addoption``)."""
        self._pm.hook.genbench_addoption(options=options)

    def __getattr__(self, name: str) -> Any:
        # registry.model(name) and its five siblings, as earlier releases documented them for plugin tests.
        kind = _OLD_ACCESSORS.get(name)
        if kind is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        warnings.warn(
            f"Registry.{name}(name) is deprecated: use registry.get({name.upper()}, name)",
            DeprecationWarning,
            stacklevel=2,
        )
        return functools.partial(self.get, kind)

    @property
    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error is not None]


def unknown_name_message(label: str, name: str, available: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(available) if available else "none installed"
    return f"unknown {label} {name!r}.{hint} Available: {listing}."


def autoload_enabled() -> bool:
    return os.environ.get(AUTOLOAD_OFF_VARIABLE, "") in ("", "0")


def load_plugins(explicit: Sequence[str] = (), *, autoload: bool | None = None) -> Registry:
    """Load every installed plugin (unless autoload is off) and the modules named in ``explicit`` (-p)."""
    pm = pluggy.PluginManager("genbench")
    pm.add_hookspecs(hookspecs)
    registry = Registry(pm)
    if autoload_enabled() if autoload is None else autoload:
        for entry_point, dist_name, dist_version in _genbench_entry_points():
            info = PluginInfo(entry_point.name, entry_point.value, dist_name, dist_version)
            try:
                plugin = entry_point.load()
            except Exception as error:  # a broken plugin must not take the others down with it
                info.error = f"failed to import {entry_point.value}: {type(error).__name__}: {error}"
                registry.plugins.append(info)
                continue
            _register(registry, plugin, info)
    for module_name in explicit:
        _register_explicit(registry, module_name)
    _collect_specs(registry)
    return registry


def _genbench_entry_points() -> Iterable[tuple[importlib.metadata.EntryPoint, str, str]]:
    """(entry point, distribution, version) for group "genbench", each distribution once."""
    seen: set[tuple[str, str]] = set()
    for dist in importlib.metadata.distributions():
        dist_name = dist.metadata["name"]
        for entry_point in dist.entry_points:
            if entry_point.group != ENTRY_POINT_GROUP or (dist_name, entry_point.name) in seen:
                continue
            seen.add((dist_name, entry_point.name))
            yield entry_point, dist_name, dist.version


def _register_explicit(registry: Registry, module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise GenbenchError(f"cannot import plugin module {module_name!r} given with -p: {error}") from error
    if registry._pm.is_registered(module):
        return
    _register(registry, module, PluginInfo(module_name, module_name))


def _register(registry: Registry, plugin: Any, info: PluginInfo) -> None:
    registry.plugins.append(info)
    info.source_hash = source_hash(plugin_source_location(plugin))
    if registry._pm.get_plugin(info.name) is not None:
        other = next(p for p in registry.plugins if p.name == info.name and p is not info)
        info.error = f"plugin name {info.name!r} is already taken by {other.origin}"
        return
    try:
        registry._pm.register(plugin, name=info.name)
        registry._pm.check_pending()
    except Exception as error:
        info.error = f"{type(error).__name__}: {error}"
        if registry._pm.is_registered(plugin):
            registry._pm.unregister(plugin)


def _collect_specs(registry: Registry) -> None:
    by_name = {p.name: p for p in registry.plugins}
    claims: dict[tuple[str, str], Registered[Any]] = {}
    columns: dict[str, list[Registered[MetricSpec]]] = {}
    for kind in KINDS:
        registry.specs[kind.label] = {}
        for impl in getattr(registry._pm.hook, kind.hook).get_hookimpls():
            info = by_name[impl.plugin_name]
            try:
                specs = validated(kind, impl.function())
            except Exception as error:
                info.error = f"{kind.hook}: {error}"
                continue
            for spec in specs:
                earlier = claims.get((kind.label, spec.name))
                if earlier is not None:
                    raise PluginError(
                        f"{kind.label} {spec.name!r} is provided by two plugins: {earlier.plugin.name!r} "
                        f"from {earlier.plugin.origin} and {info.name!r} from {info.origin}; uninstall one, "
                        f"or set {AUTOLOAD_OFF_VARIABLE}=1 and load the one you want with -p MODULE"
                    )
                claims[(kind.label, spec.name)] = registry.specs[kind.label][spec.name] = Registered(spec, info)
                if kind is METRIC:
                    registry.collisions += _claim_columns(columns, Registered(spec, info))
    # A plugin found broken while collecting must not leave half of its specs behind.
    for kind in KINDS:
        registered = registry.specs[kind.label]
        for name in [n for n, r in registered.items() if r.plugin.error is not None]:
            del registered[name]
    registry.collisions = [
        c for c in registry.collisions if c.first.plugin.error is None and c.second.plugin.error is None
    ]


def _claim_columns(
    claimed: dict[str, list[Registered[MetricSpec]]], metric: Registered[MetricSpec]
) -> list[ColumnCollision]:
    """Two metrics writing one column would overwrite each other's numbers: each such pair, to refuse a run that
    uses both (``Registry.check_columns``); loading goes on, since a run may use either one alone."""
    found = []
    for column in metric.spec.columns:
        earlier = claimed.setdefault(column.name, [])
        found += [ColumnCollision(column.name, other, metric) for other in earlier]
        earlier.append(metric)
    return found


__all__ = [
    "AUTOLOAD_OFF_VARIABLE",
    "DATASET",
    "ENTRY_POINT_GROUP",
    "EXECUTOR",
    "EXTRACTOR",
    "KINDS",
    "METRIC",
    "MODEL",
    "TRACKER",
    "ColumnCollision",
    "Kind",
    "PluginInfo",
    "Registered",
    "Registry",
    "autoload_enabled",
    "load_plugins",
    "unknown_name_message",
]
