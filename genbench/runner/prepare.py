"""Check a request against the installed plugins and load its data, before anything is written.

Every mistake a user can make (an unknown name, an option a model does not have, a config that does not fit
the data, a weights file that is not there) is found here, as one GenbenchError, before the first cell trains.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from genbench.config import check_request, resolve_config
from genbench.contract import (
    Dataset,
    DatasetOptions,
    EvalContext,
    GenbenchError,
    GenerativeModel,
    MetricSpec,
    ModelSpec,
    RunContext,
)
from genbench.contract.request import RunRequest
from genbench.registry import DATASET, METRIC, MODEL, TRACKER, Registry, load_plugins
from genbench.runner.external import (
    Origin,
    apply_sidecar_configs,
    find_origins,
    model_options,
    read_checkpoints,
    sample_set_specs,
)
from genbench.store.layout import RunDirectory, cache_dir, check_writable_folder
from genbench.toolkit.checks import check_value, field_hints
from genbench.toolkit.data import INCOMPLETE
from genbench.toolkit.text import warn

if TYPE_CHECKING:
    pass


@dataclass
class PreparedRun:
    """A request checked against the installed plugins, with its data loaded; nothing written yet."""

    request: RunRequest
    registry: Registry
    models: list[ModelSpec]
    model_configs: dict[str, Any]
    metrics: list[MetricSpec]
    metric_configs: dict[str, Any]
    dataset: Dataset
    device: torch.device
    directory: RunDirectory
    #: Models made elsewhere (--checkpoint, --sample-set, the samples plugin), built once; they are never fitted.
    origins: dict[str, Origin] = field(default_factory=dict)
    #: Model -> the evaluation-time options of each of its evaluations ([{}]: one, with the model's defaults).
    sample_settings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def sample_options_of(self, model: str) -> list[dict[str, Any]]:
        return self.sample_settings.get(model) or [{}]

    @property
    def metric_columns(self) -> list[str]:
        return [column.name for metric in self.metrics for column in metric.columns]

    def events(self) -> RunContext:
        """What the event hooks (training curve, cell finished) learn about this run."""
        return RunContext(
            self.directory.root,
            tuple(self.request.log),
            dict(self.request.plugin_options),
            layout=self.directory,
        )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise GenbenchError("--device cuda was asked for, but PyTorch sees no CUDA GPU; use --device cpu or auto")
        return torch.device("cuda")
    raise GenbenchError(f"--device {name!r} is not one of auto, cpu, cuda")


def prepare(request: RunRequest, registry: Registry | None = None) -> PreparedRun:
    """Check the request and load the data; raise GenbenchError on the first mistake, before any write."""
    check_request(request)
    registry = registry or load_plugins(request.plugins)
    if not request.models and not request.sample_sets:
        # No models named: those the installed plugins offer as defaults, recorded as if they had been named.
        request = dataclasses.replace(request, models=registry.default_models())
        if not request.models:
            raise GenbenchError(
                "no models given and no installed plugin offers a default; name some with --models "
                f"(installed: {', '.join(registry.names(MODEL)) or 'none'})"
            )
    if not request.seeds:
        raise GenbenchError("no seeds given; e.g. --seeds 0,1,2")
    if request.epochs is not None and request.epochs < 1:
        raise GenbenchError(f"--epochs must be at least 1, got {request.epochs}")
    models = [registry.get(MODEL, name) for name in request.models] + sample_set_specs(request, registry)
    model_names = [spec.name for spec in models]
    stray_reruns = sorted(set(request.rerun or []) - set(model_names))
    if stray_reruns:
        raise GenbenchError(
            f"--rerun {','.join(stray_reruns)}: not a model of this run ({', '.join(model_names)}); "
            "give --rerun alone to rerun every cell"
        )
    check_trackers(request, registry)
    metric_names = request.metrics if request.metrics is not None else default_metrics(registry)
    metrics = [registry.get(METRIC, name) for name in metric_names]
    registry.check_columns(metric_names)  # two metrics of one column in one table: refused, naming both plugins
    dataset_spec = registry.get(DATASET, request.dataset)
    request, unused = without_unused_options(request, registry, model_names, metric_names)  # warned at the end
    model_configs = {
        spec.name: resolve_config(
            spec.config_class, model_options(request, spec.name), f"model {spec.name!r}", request.epochs
        )
        for spec in models
    }
    metric_configs = {
        spec.name: resolve_config(spec.config_class, shared_options(spec, registry, request), f"metric {spec.name!r}")
        if spec.config_class is not None
        else None
        for spec in metrics
    }
    device = resolve_device(request.device)
    check_writable_folder(request.results_dir, "--results-dir")
    check_writable_folder(request.results_dir / request.run_name(), "the run folder")
    weights = read_checkpoints(request, model_names)
    if request.data_root is not None and not request.data_root.is_dir():
        raise GenbenchError(f"--data-root {request.data_root} does not exist or is not a directory")
    dataset = dataset_spec.load(
        DatasetOptions(root=request.data_root, download=request.download, binarize=request.binarize)
    )
    refuse_incomplete_data(request, dataset)
    apply_sidecar_configs(request, models, model_configs, weights)
    built = {spec.name: build_untrained(spec, model_configs[spec.name], dataset) for spec in models}
    origins = find_origins(built, dataset, weights)
    capabilities = frozenset().union(*(model.capabilities for model in built.values()))
    check_metrics(request, registry, capabilities, metrics, metric_configs, dataset, device)
    metrics = [
        resolve_columns(spec, metric_context(request, registry, metric_configs[spec.name], dataset, device))
        for spec in metrics
    ]
    directory = RunDirectory(request.results_dir / request.run_name())
    for plugin in registry.broken:  # what it provides is missing from "every installed metric", say so
        warn(f"plugin {plugin.name!r} from {plugin.origin} is broken and not used: {plugin.error}")
    if unused is not None:
        warn(unused)
    sample_settings = {
        spec.name: sample_combinations(spec, request.sample_options.get(spec.name, {})) for spec in models
    }
    return PreparedRun(
        request,
        registry,
        models,
        model_configs,
        metrics,
        metric_configs,
        dataset,
        device,
        directory,
        origins,
        sample_settings,
    )


def default_metrics(registry: Registry) -> list[str]:
    """The metrics of a run that names none: every installed one that does not ask to be named
    (``MetricSpec.in_default_run``)."""
    return [name for name in registry.names(METRIC) if registry.get(METRIC, name).in_default_run]


def without_unused_options(
    request: RunRequest, registry: Registry, models: list[str], metrics: list[str]
) -> tuple[RunRequest, str | None]:
    """The request without its option tables for models and metrics that the run does not use, and one warning
    line naming them (None if there are none).

    One config file may serve two runs (``--models vae`` with it, and ``--models gan``): options for what a run
    leaves out are no mistake, but a misspelt name may be one, so they are named. They are dropped from the
    request, so that run.json records the options that were used and workers do not warn again. A table of a
    metric that shares its options with one of the run's (``MetricSpec.shares_options_with``) is used."""
    used_metrics = {member for name in metrics for member in option_group(registry, name)}
    unused_models = sorted(set(request.model_options) - set(models))
    unused_metrics = sorted(set(request.metric_options) - used_metrics)
    unused_sampling = sorted(set(request.sample_options) - set(models))
    if not unused_models and not unused_metrics and not unused_sampling:
        return request, None
    named = [f"model {name!r}" for name in unused_models] + [f"metric {name!r}" for name in unused_metrics]
    named += [f"sampling of model {name!r}" for name in unused_sampling]
    line = (
        f"options given for {', '.join(named)} are ignored: this run does not use them "
        f"(models: {', '.join(models)}; metrics: {', '.join(metrics) or 'none'})"
    )
    used = dataclasses.replace(
        request,
        model_options={name: options for name, options in request.model_options.items() if name in models},
        metric_options={name: options for name, options in request.metric_options.items() if name in used_metrics},
        sample_options={name: options for name, options in request.sample_options.items() if name in models},
    )
    return used, line


def check_trackers(request: RunRequest, registry: Registry) -> None:
    """Every --log name is an installed tracker whose library is there: found before anything trains."""
    for name in request.log:
        tracker = registry.get(TRACKER, name)
        if tracker.check is not None:
            tracker.check()


def check_metrics(
    request: RunRequest,
    registry: Registry,
    capabilities: frozenset[str],
    metrics: list[MetricSpec],
    metric_configs: dict[str, Any],
    dataset: Dataset,
    device: torch.device,
) -> None:
    """Check every metric's options and extractor (a weights file missing offline) before any cell runs, rather
    than when its cell comes, after the cells before it have trained."""
    for metric in metrics:
        # A metric that applies to none of the models gives N/A everywhere: nothing of it needs to work.
        applies = not metric.requires_any or bool(metric.requires_any & capabilities)
        if metric.check is not None and applies:
            metric.check(metric_context(request, registry, metric_configs[metric.name], dataset, device))


def metric_context(
    request: RunRequest, registry: Registry, config: Any, dataset: Dataset, device: torch.device
) -> EvalContext:
    """What a metric's ``check`` and ``columns_for`` get before any cell: the run's data, options and first seed."""
    return EvalContext(
        dataset=dataset,
        device=device,
        seed=request.seeds[0],
        generator=torch.Generator().manual_seed(request.seeds[0]),
        config=config,
        registry=registry,
        cache_dir=cache_dir(request.results_dir),
        options=request.plugin_options,
    )


def resolve_columns(metric: MetricSpec, ctx: EvalContext) -> MetricSpec:
    """The metric with the columns it writes in this run (``MetricSpec.columns_for``): fid's name follows its
    extractor, so that a Fréchet distance of other features is never reported under the name FID."""
    if metric.columns_for is None:
        return metric
    columns = tuple(metric.columns_for(ctx))
    names = [column.name for column in columns]
    if not columns or len(set(names)) < len(names):
        raise GenbenchError(f"metric {metric.name!r} names no columns, or one twice, for this run: {names}")
    return dataclasses.replace(metric, columns=columns)


def build_untrained(spec: ModelSpec, config: Any, dataset: Dataset) -> GenerativeModel:
    """The model's factory on the data's shape and levels, before any cell runs: a config that does not fit the
    data is the user's one-line error, not a failure found after the cells before it have trained."""
    info = dataset.info
    try:
        return spec.factory(config, info)
    except GenbenchError:
        raise
    except Exception as error:  # a config the architecture cannot take (the plugin did not check it itself)
        raise GenbenchError(
            f"model {spec.name!r} cannot be built for data set {dataset.name!r} ({'x'.join(map(str, info.shape))}, "
            f"{info.levels} levels) with its config: {type(error).__name__}: {' '.join(str(error).split())}"
        ) from error


def option_group(registry: Registry, name: str) -> list[str]:
    """The metrics that share their options with metric ``name`` (``MetricSpec.shares_options_with``), the one
    they share them from first: ["nll", "bpd"] for either of the two."""
    source = registry.get(METRIC, name).shares_options_with or name
    sharing = {other for other in registry.names(METRIC) if registry.get(METRIC, other).shares_options_with == source}
    return [source, *sorted(sharing - {source})]


def shared_options(spec: MetricSpec, registry: Registry, request: RunRequest) -> dict[str, Any]:
    """The options of ``spec`` and of the metrics it shares them with (``MetricSpec.shares_options_with``: bpd
    and nll are one estimate), given under any of their names; two values for one option are refused."""
    group = option_group(registry, spec.name)
    source = group[0]
    merged: dict[str, Any] = {}
    given_under: dict[str, str] = {}
    for name in group:
        for key, value in request.metric_options.get(name, {}).items():
            if key in merged and merged[key] != value:
                raise GenbenchError(
                    f"[metric.{given_under[key]}] {key} = {merged[key]!r} and [metric.{name}] {key} = {value!r}: "
                    f"{' and '.join(group)} report one estimate, so give {key} once (under [metric.{source}])"
                )
            merged[key], given_under[key] = value, name
    return merged


def sample_combinations(spec: ModelSpec, given: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """One dict of evaluation-time options per evaluation of ``spec``: every combination of the values given
    (--sample-option ddpm.steps=10,50,100 gives three), each checked against the model's options class and
    written as its fields' typed values, so that "10" on the command line and 10 in a file name the same cell."""
    if not given:
        return [{}]
    if spec.sample_options_class is None:
        raise GenbenchError(
            f"--sample-option {spec.name}.{next(iter(given))}=...: model {spec.name!r} has no evaluation-time options"
        )
    names = list(given)
    hints = field_hints(spec.sample_options_class)
    combinations = []
    for values in itertools.product(*(given[name] for name in names)):
        chosen = {name: from_text(value, hints.get(name)) for name, value in zip(names, values, strict=True)}
        resolved = resolve_config(spec.sample_options_class, chosen, f"sample options of model {spec.name!r}")
        combinations.append({name: plain_value(getattr(resolved, name)) for name in names})
    return list({json.dumps(c, sort_keys=True, default=str): c for c in combinations}.values())


def from_text(value: Any, hint: Any) -> Any:
    """A value as the command line gives it ("0.5", "true") as the field's type would take it (0.5, True); a
    value that is no JSON literal stays text, and the field's check says what it should be."""
    if not isinstance(value, str) or hint is None or hint is str:
        return value
    try:
        check_value(value, hint, "")
    except GenbenchError:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def plain_value(value: Any) -> Any:
    """A typed option value as JSON holds it (a path as its text)."""
    return str(value) if isinstance(value, Path) else value


def sample_options_instance(spec: ModelSpec, options: Mapping[str, Any]) -> Any:
    """The model's evaluation-time options for one evaluation: its defaults with ``options`` over them."""
    if spec.sample_options_class is None:
        return None
    return resolve_config(spec.sample_options_class, dict(options), f"sample options of model {spec.name!r}")


def refuse_incomplete_data(request: RunRequest, dataset: Dataset) -> None:
    """A suite promises numbers comparable with published ones; incomplete data files break that promise, so
    they are refused in one line unless the user asks for them (the report then marks every number)."""
    missing = dataset.provenance.get(INCOMPLETE)
    if request.suite is None or not missing or request.allow_incomplete_data:
        return
    raise GenbenchError(
        f"suite {request.suite['name']!r} needs the complete {dataset.name} data; incomplete: {'; '.join(missing)}. "
        "Get the files (--download), or pass --allow-incomplete-data to run anyway with every number marked "
        "not comparable"
    )
