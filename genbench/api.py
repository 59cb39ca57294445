"""The Python API that the CLI calls: ``run(...)`` returns the results table, ``load_results(path)`` reads one."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genbench.contract import GenbenchError, OptionGroup
from genbench.contract.executors import SERIAL, ExecutionOptions
from genbench.contract.request import RunRequest
from genbench.registry import Registry, load_plugins
from genbench.runner.driver import execute
from genbench.runner.prepare import prepare
from genbench.store.frame import load_results
from genbench.suites import layered_request

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_results", "run"]


def run(
    models: Sequence[str] | None = None,
    *,
    dataset: str | None = None,
    metrics: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    epochs: int | None = None,
    device: str | None = None,
    data_root: str | Path | None = None,
    download: bool | None = None,
    binarize: bool | None = None,
    results_dir: str | Path | None = None,
    name: str | None = None,
    model_options: dict[str, dict[str, Any]] | None = None,
    metric_options: dict[str, dict[str, Any]] | None = None,
    plugins: Sequence[str] = (),
    plugin_options: Mapping[str, Any] | None = None,
    checkpoints: Mapping[str, str | Path] | None = None,
    sample_sets: Mapping[str, str | Path] | None = None,
    sample_options: Mapping[str, Mapping[str, Any]] | None = None,
    suite: str | None = None,
    rerun: bool | str | Sequence[str] = False,
    log: Sequence[str] | None = None,
    progress: bool = False,
    echo: Callable[[str], None] = lambda line: None,
    executor: str = SERIAL,
    executor_options: Mapping[str, Any] | None = None,
    retries: int = 1,
    worker_storage: str = "auto",
) -> pd.DataFrame:
    """Benchmark ``models`` on ``dataset`` for every seed and return one row per cell.

    Cells that finished in an earlier call with the same settings are read back, not run again. The returned
    frame's ``attrs["run_dir"]`` is the run directory; ``status`` says which cells failed and ``error`` why.
    ``checkpoints`` maps a model to a safetensors file to evaluate instead of training it; ``sample_sets`` maps
    a new model name to an .npz or image folder served by the ``samples`` model. ``sample_options`` gives models'
    evaluation-time options, a value or a list of values each: ``{"ddpm": {"steps": [10, 50, 100]}}`` evaluates
    one trained DDPM three times.

    As on the command line, ``suite`` (a packaged suite, see ``genbench suites``) sets the defaults and every
    argument given (not None) overrides it; without a suite the defaults are ``vae, gan, pixelcnn`` on ``digits``,
    seed 0, every installed metric, ``device="auto"``, ``results_dir="results"``. ``plugin_options`` gives the
    options that plugins add to ``genbench run``, keyed by their dests (``--fake-scale 2`` is
    ``{"fake_scale": 2.0}``), already of the type the flag would parse to. ``rerun=True`` retrains and evaluates
    every cell again, ``rerun=["vae"]`` only that model's cells. ``log`` names trackers (``["tensorboard"]``).

    ``executor`` runs the cells (``serial`` in this process, ``local``, ``ray``, or a plugin's), with its own
    options by dest (``{"jobs": 2}``), ``retries`` runs of a cell whose worker died, and ``worker_storage``
    saying how workers reach the results (see docs/executors.md); none of them changes a cell's numbers.
    """
    given = {
        "models": None if models is None else list(models),
        "metrics": None if metrics is None else list(metrics),
        "dataset": dataset,
        "data_root": None if data_root is None else Path(data_root).expanduser(),
        "download": download,
        "binarize": binarize,
        "seeds": None if seeds is None else list(seeds),
        "epochs": epochs,
        "device": device,
        "results_dir": None if results_dir is None else Path(results_dir),
        "name": name,
        "log": None if log is None else list(log),
        "model_options": model_options,
        "metric_options": metric_options,
        "plugins": list(plugins),
        "checkpoints": {name: Path(path).expanduser() for name, path in (checkpoints or {}).items()},
        "sample_sets": {name: Path(path).expanduser() for name, path in (sample_sets or {}).items()},
        "sample_options": {
            model: {
                option: list(value) if isinstance(value, list | tuple) else [value] for option, value in table.items()
            }
            for model, table in (sample_options or {}).items()
        },
        "rerun": rerun_models(rerun),
    }
    request = layered_request(suite, None, given)
    registry = load_plugins(request.plugins)
    request.plugin_options = checked_plugin_options(registry, plugin_options or {})
    execution = ExecutionOptions(executor, dict(executor_options or {}), retries, worker_storage)
    return run_request(request, registry=registry, progress=progress, echo=echo, execution=execution)


def rerun_models(rerun: bool | str | Sequence[str]) -> list[str] | None:
    """``RunRequest.rerun`` from the API's argument: True is every cell ([]), False or nothing is none (None)."""
    if isinstance(rerun, bool):
        return [] if rerun else None
    return [rerun] if isinstance(rerun, str) else list(rerun) or None


def checked_plugin_options(registry: Registry, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` over the defaults of the options that the loaded plugins add, each value as the CLI would parse
    it; a key that no plugin adds is a one-line error naming those that exist."""
    options = OptionGroup(argparse.ArgumentParser(add_help=False))
    registry.add_options(options)
    unknown = sorted(set(given) - set(options.dests))
    if unknown:
        known = ", ".join(sorted(options.dests)) or "none (no loaded plugin adds options)"
        raise GenbenchError(f"plugin_options {unknown} are not options of the loaded plugins; known: {known}")
    values = {dest: action.default for dest, action in options.actions.items()}
    values.update({dest: parsed_like_the_flag(options.actions[dest], value) for dest, value in given.items()})
    # The CLI leaves out options that are unset (None); a run with the same settings must get the same cell ids.
    return {dest: value for dest, value in values.items() if value is not None}


def parsed_like_the_flag(action: argparse.Action, value: Any) -> Any:
    """``value`` as the flag would give it: a string through the flag's type, as argparse does, and an integer for
    a float flag as a float (so that 2 names the same cell as ``--flag 2``); checked against the flag's choices."""
    flag = f"plugin_options[{action.dest!r}]"
    as_text = isinstance(value, str) or (action.type is float and type(value) is int)
    if callable(action.type) and as_text:
        try:
            value = action.type(value)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
            option = (action.option_strings or [action.dest])[0]
            raise GenbenchError(f"{flag} {value!r} is not valid for {option}: {error}") from None
    if action.choices is not None and value is not None and value not in action.choices:
        raise GenbenchError(f"{flag} is {value!r}; choose one of {', '.join(map(str, action.choices))}")
    return value


def run_request(
    request: RunRequest,
    *,
    registry: Registry | None = None,
    progress: bool = False,
    command: list[str] | None = None,
    echo: Callable[[str], None] = lambda line: None,
    execution: ExecutionOptions | None = None,
) -> pd.DataFrame:
    """Check a request fully (writing nothing if it is wrong), then run it."""
    prepared = prepare(request, registry)
    return execute(prepared, progress=progress, command=command, echo=echo, execution=execution)
