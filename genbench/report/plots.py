"""The figures of the HTML page, drawn with matplotlib: quality against speed (with the Pareto front), training
curves. matplotlib is imported only where a figure is drawn: the CLI starts without it."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from genbench.contract import Column
from genbench.report.leaderboard import Leaderboard
from genbench.report.runs import Entry
from genbench.toolkit.text import terminal_safe

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SPEED_COLUMN = "sample_time"


@dataclass(frozen=True)
class Point:
    """One model on the quality-versus-speed plane, with the confidence half-width of its quality."""

    label: str
    speed: float
    quality: float
    quality_half_width: float


def pareto_front(points: Sequence[tuple[float, float]], higher_is_better: bool) -> list[bool]:
    """Which (time, quality) points no other point beats: at most as slow and at least as good, one strictly."""
    sign = -1.0 if higher_is_better else 1.0
    costs = [(time, sign * quality) for time, quality in points]
    return [
        not any(o[0] <= c[0] and o[1] <= c[1] and o != c for o in costs)  # o dominates c
        for c in costs
    ]


def quality_speed_points(leaderboard: Leaderboard, dataset: str) -> tuple[str, list[Point]] | None:
    """FID (else bpd) against sample time, per model that measured both; None where there is nothing to plot."""
    quality = next(iter(leaderboard.quality_columns(dataset)[:2]), None)
    if quality is None or not leaderboard.measured(dataset, SPEED_COLUMN):
        return None
    points = []
    for model in leaderboard.models(dataset):
        speed, value = leaderboard.summary(dataset, model, SPEED_COLUMN), leaderboard.summary(dataset, model, quality)
        if speed["n"] and value["n"] and speed["mean"] > 0:
            points.append(Point(model, float(speed["mean"]), float(value["mean"]), float(value["half_width"])))
    return (quality, points) if points else None


def nfe_series(leaderboard: Leaderboard, dataset: str) -> tuple[str, dict[str, list[tuple[int, float, float]]]] | None:
    """Per model (its rows of a sweep gathered under the model's name): (NFE, quality, seconds per image) of each
    row that reported its network evaluations; None where no model swept at least two of them."""
    quality = leaderboard.ranking_column(dataset)
    if quality is None:
        return None
    reported: dict[str, int] = {}
    for entry in leaderboard.entries:
        nfe = entry.record.provenance.get(SPEED_COLUMN, {}).get("nfe")
        if entry.dataset == dataset and entry.record.status == "ok" and isinstance(nfe, int):
            reported[entry.model] = nfe
    series: dict[str, list[tuple[int, float, float]]] = {}
    for model, nfe in reported.items():
        value, speed = leaderboard.summary(dataset, model, quality), leaderboard.summary(dataset, model, SPEED_COLUMN)
        if value["n"] and speed["n"]:
            series.setdefault(entries_of(leaderboard, dataset, model)[0].record.model, []).append(
                (nfe, float(value["mean"]), float(speed["mean"]))
            )
    swept = {model: sorted(points) for model, points in series.items() if len({p[0] for p in points}) > 1}
    return (quality, swept) if swept else None


def draw_nfe(figure: Figure, series: Mapping[str, Sequence[tuple[int, float, float]]], quality: Column) -> None:
    """Quality and seconds per image against network evaluations, one line per model."""
    left, right = figure.subplots(1, 2)
    for index, (model, points) in enumerate(series.items()):
        nfe = [p[0] for p in points]
        left.plot(nfe, [p[1] for p in points], marker="o", color=f"C{index % 10}", label=_mpl(model))
        right.plot(nfe, [p[2] for p in points], marker="o", color=f"C{index % 10}", label=_mpl(model))
    better = "higher" if quality.higher_is_better else "lower"
    left.set_ylabel(_mpl(f"{quality.name} ({quality.unit}) — {better} is better"))
    right.set_ylabel("sample_time (s/image)")
    for axes in (left, right):
        axes.set_xscale("log")
        axes.set_xlabel("network evaluations per sample (NFE, log scale)")
        axes.grid(alpha=0.3)
    left.legend(fontsize=8)


def figure_png(draw: Callable[[Figure], None], size: tuple[float, float]) -> bytes:
    """Draw on a fresh Agg figure (no pyplot: no global state, no display) and return the PNG."""
    # Imported here: only HTML pages draw, and matplotlib takes a while to import.
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100, layout="constrained")
    draw(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def draw_quality_speed(figure: Figure, points: Sequence[Point], quality: Column, speed: Column) -> None:
    axes = figure.add_subplot()
    front = pareto_front([(p.speed, p.quality) for p in points], quality.higher_is_better)
    for index, (point, on_front) in enumerate(zip(points, front, strict=True)):
        color = f"C{index % 10}"
        error = point.quality_half_width if math.isfinite(point.quality_half_width) else None
        axes.errorbar(
            point.speed, point.quality, yerr=error, fmt="o", color=color, mfc=color if on_front else "white", ms=8
        )
        axes.annotate(_mpl(point.label), (point.speed, point.quality), xytext=(6, 4), textcoords="offset points")
    on = sorted((p.speed, p.quality) for p, f in zip(points, front, strict=True) if f)
    axes.step([x for x, _ in on], [y for _, y in on], where="post", ls="--", color="0.4", label="Pareto front")
    axes.set_xscale("log")
    axes.set_xlabel(_mpl(f"{speed.name} ({speed.unit}, log scale) — lower is better"))
    better = "higher" if quality.higher_is_better else "lower"
    axes.set_ylabel(_mpl(f"{quality.name} ({quality.unit}) — {better} is better"))
    axes.legend(loc="best", fontsize=8)
    axes.grid(alpha=0.3)


#: The unit of a training curve's series, by the name the model contract gives it (docs/plugins.md, "Training
#: curves"): a negative log-likelihood or a negative bound, in nats per image, the unit of the nll column. Other
#: series (a GAN's d_loss and g_loss, a diffusion loss) are the model's own objective, in no unit genbench knows.
CURVE_UNITS = {"nll": "nats/image", "negative_elbo": "nats/image", "train_nll": "nats/image"}
#: What a curve point's "step" counts: ``FitContext.on_curve(epoch, ...)``, one point per epoch (``train_epochs``).
CURVE_X_LABEL = "epoch"


def curve_y_label(series: Sequence[str]) -> str:
    """'training loss (nats/image)' where every series has that unit; 'training loss (the model's objective)' where
    none has a known one; each series' unit where they are mixed."""
    units = {CURVE_UNITS.get(name) for name in series}
    if len(units) == 1:
        unit = next(iter(units)) or "the model's own objective"
        return f"training loss ({unit})"
    known = [f"{name}: {CURVE_UNITS[name]}" for name in series if name in CURVE_UNITS]
    return f"training loss ({'; '.join(known)}; others: the model's objective)"


def draw_curves(figure: Figure, curves: Sequence[tuple[int, Sequence[Mapping[str, float]]]]) -> None:
    """Every recorded series of the training curve, one colour per series, one line per seed, against the epoch."""
    axes = figure.add_subplot()
    keys = list(dict.fromkeys(k for _, curve in curves for point in curve for k in point if k != "step"))
    for index, key in enumerate(keys):
        for position, (_, curve) in enumerate(curves):
            points = [(p["step"], p[key]) for p in curve if key in p and "step" in p and math.isfinite(p[key])]
            axes.plot(
                [x for x, _ in points],
                [y for _, y in points],
                color=f"C{index % 10}",
                marker="." if len(points) < 3 else None,
                alpha=0.8,
                label=_mpl(key) if position == 0 else None,
            )
    axes.set_xlabel(CURVE_X_LABEL)
    axes.set_ylabel(_mpl(curve_y_label(keys)), fontsize=9)
    axes.set_title(f"{len(curves)} seed{'s' if len(curves) != 1 else ''}", fontsize=9)
    if axes.get_legend_handles_labels()[0]:  # matplotlib warns about a legend with nothing in it
        axes.legend(fontsize=8)
    axes.grid(alpha=0.3)


def _mpl(text: str) -> str:
    """Plugin text as literal matplotlib text: '$' would start mathtext, and a control character (possible in
    an edited run folder) has no glyph, which matplotlib warns about; it is drawn as its escape instead."""
    return terminal_safe(text).replace("$", r"\$")


def model_curves(leaderboard: Leaderboard, dataset: str, model: str) -> list[tuple[int, list[dict[str, float]]]]:
    entries = sorted(entries_of(leaderboard, dataset, model), key=lambda e: e.record.seed)
    return [(e.record.seed, e.record.curve) for e in entries if e.record.curve]


def entries_of(leaderboard: Leaderboard, dataset: str, model: str) -> list[Entry]:
    return [e for e in leaderboard.entries if e.dataset == dataset and e.model == model]
