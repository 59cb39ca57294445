"""What trackers and reporters receive: the tracker spec, the run a cell belongs to, curve points, cell records."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class TrackerSpec:
    """A tracker (TensorBoard, MLflow, ...) that ``--log NAME`` switches on.

    The spec only names it; the tracker's work is done by its plugin's event hooks (``genbench_training_curve``,
    ``genbench_cell_finished``), which act when ``NAME in run.trackers``.
    """

    name: str
    description: str
    #: Says before any cell runs whether the tracker can work (its library installed and importable), raising
    #: GenbenchError with what to install if not; it is called only when the tracker is asked for, and writes
    #: nothing.
    check: Callable[[], None] | None = None


class RunLayout(Protocol):
    """Where a run's files are: the store owns the layout, and an event hook asks it (the run folder is one)."""

    def cell_path(self, cell_id: str) -> Path: ...

    def sample_grid_path(self, cell_id: str) -> Path: ...


@dataclass(frozen=True)
class RunContext:
    """What event hooks learn about the run a cell belongs to: where it is written and what was switched on."""

    #: The run folder (results/<run>); trackers write beneath it (e.g. ``tensorboard/``) unless told otherwise.
    root: Path
    #: The names given with ``--log`` (or ``log = [...]`` in a suite file): the trackers switched on.
    trackers: tuple[str, ...] = ()
    #: Values of the options that plugins added to the command line, by dest.
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Where the run's files are (the run folder's layout, as the store keeps it).
    layout: RunLayout = field(kw_only=True)

    @property
    def name(self) -> str:
        return self.root.name

    def cell_file(self, cell_id: str) -> Path:
        """The cell's record, ``cells/<cell>.json`` (written before ``genbench_cell_finished`` is called)."""
        return self.layout.cell_path(cell_id)

    def sample_grid(self, cell_id: str) -> Path | None:
        """The cell's grid of samples, ``samples/<cell>.png``, or None for a model that draws none."""
        path = self.layout.sample_grid_path(cell_id)
        return path if path.is_file() else None


@dataclass(frozen=True)
class CurvePoint:
    """One point of a cell's training curve, as the model's ``fit`` reported it (once per epoch in the
    built-ins, through ``FitContext.on_curve``)."""

    cell_id: str
    model: str
    dataset: str
    seed: int
    #: The step the model gave (the epoch, for ``genbench.toolkit.training.train_epochs``).
    step: int
    #: Loss name -> value at this step, already plain floats (nothing waits for a GPU to produce them).
    values: Mapping[str, float]


# ----------------------------------------------------------------------------------------- records


@dataclass
class CellRecord:
    """One finished (or failed) cell: what was run, how, and what it measured."""

    cell_id: str
    model: str
    dataset: str
    seed: int
    status: str  # "ok" or "failed"
    config: dict[str, Any]
    checkpoint_key: str
    error: str | None = None
    traceback: str | None = None
    train_time: float | None = None
    #: Column -> value; a column that does not apply is absent here and present in ``not_applicable``.
    metrics: dict[str, float] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    #: Metric name -> how it was measured (method, k, extractor, sample counts, ...).
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Metric name -> wall-clock seconds its compute took, device synchronized (absent in records of earlier runs).
    metric_times: dict[str, float] = field(default_factory=dict)
    dataset_provenance: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    curve: list[dict[str, float]] = field(default_factory=list)
    trained: bool = True
    started: str = ""
    finished: str = ""
    #: The model's evaluation-time options this cell was evaluated with (``ModelSpec.sample_options_class``).
    sample_options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
