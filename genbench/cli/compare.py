"""``genbench compare``: is A better than B? Per metric, the difference with its 95% interval, a test over seeds,
the effect size and Holm's correction (the statistics are ``genbench.report.significance``'s).

Two ways to name the sides:

    genbench compare RUN_DIR [RUN_DIR ...] --models vae,gan    two models (as the leaderboard names them)
    genbench compare RUN_A RUN_B [--models vae]                one model across two run folders (two configs,
                                                               two code versions, two thread counts)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbench.cli.common import EXIT_OK, Subcommands
from genbench.config import parse_names
from genbench.contract import EXACT, STOCHASTIC_ESTIMATE, Column, GenbenchError
from genbench.registry import Registry
from genbench.report.significance import EVALUATIONS, QUALITY, TIMES
from genbench.toolkit.text import terminal_safe

#: Timing columns that ``--times`` adds, as a Holm family of their own.
TIME_COLUMNS = ("sample_time", "train_time")


def add_parser(commands: Subcommands, registry: Registry | None) -> argparse.ArgumentParser:
    compare = commands.add_parser(
        "compare", help="is A better than B? per metric: difference, 95%% interval, test over seeds, Holm's correction"
    )
    compare.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="run directories (results/<run>) or folders of them; two run directories without --models A,B "
        "compare the one model they share",
    )
    compare.add_argument(
        "--models",
        metavar="A,B",
        help="the two models to compare (names or the leaderboard's labels, e.g. 'vae (epochs=1)'); with two run "
        "directories, one model to follow across them",
    )
    compare.add_argument("--dataset", help="the data set, where the runs hold several")
    compare.add_argument(
        "--metrics",
        metavar="COLUMNS",
        help="columns to compare (default: the ranked quality columns both sides measured, e.g. fid, bpd, nll; "
        "fd_classifier where fid's features are a classifier's)",
    )
    compare.add_argument(
        "--times", action="store_true", help="also compare sample_time and train_time (a Holm family of their own)"
    )
    compare.add_argument("--csv", type=Path, metavar="PATH", help="also write the comparisons as CSV")
    compare.add_argument("--json", type=Path, metavar="PATH", help="also write the sides and comparisons as JSON")
    compare.set_defaults(handler=command_compare)
    return compare


def command_compare(args: argparse.Namespace, argv: Sequence[str], registry: Registry) -> int:
    from genbench.report.significance import compare_records

    names = split_models(args.models) if args.models is not None else []
    a, b, specs = choose_sides(args.paths, names, args.dataset)
    columns = choose_columns(a, b, specs, parse_names(args.metrics, "--metrics") if args.metrics else None)
    directions = {column: (specs[column].higher_is_better, QUALITY) for column in columns}
    if args.times:
        directions |= {c: (specs[c].higher_is_better, TIMES) for c in TIME_COLUMNS if _measured(a, b, c)}
    # Trained with other thread counts, two models differ by more than their seeds: their evaluations surely differ.
    apart = "trained with other torch thread counts" if a.threads != b.threads else ""
    comparisons = compare_records(a.records, b.records, directions, evaluations_apart=apart)
    notes = compare_notes(a, b, comparisons)
    print(format_comparison(a, b, comparisons, specs, notes))
    if args.csv:
        _write_csv(args.csv, [c.as_dict() for c in comparisons])
    if args.json:
        document = {"a": a.describe(), "b": b.describe(), "comparisons": [c.as_dict() for c in comparisons]}
        args.json.write_text(json.dumps(_plain({**document, "notes": notes}), indent=2, allow_nan=False) + "\n")
    return EXIT_OK


# ----------------------------------------------------------------------------------------------- the two sides


def split_models(text: str) -> list[str]:
    """'vae,gan' or 'vae (epochs=1, lr=0.1),vae (epochs=5, lr=0.1)': commas inside a label's parentheses stay."""
    names = [name.strip() for name in re.split(r",(?![^()]*\))", text)]
    if not text.strip() or not all(names) or len(names) > 2:
        raise GenbenchError(f"--models {text!r} is malformed: give two models, e.g. --models vae,gan, or one")
    if len(names) == 2 and names[0] == names[1]:
        raise GenbenchError(
            f"--models names {names[0]!r} twice; to compare one model across two runs, give RUN_A RUN_B"
        )
    return names


@dataclass(frozen=True)
class Side:
    """The cells of one side of the comparison: one model's, from one or more runs, on one data set."""

    label: str
    entries: tuple[Any, ...]  # genbench.report.Entry: imported where used, so the CLI starts fast

    @property
    def records(self) -> list[Any]:
        return [entry.record for entry in self.entries]

    @property
    def dataset(self) -> str:
        return str(self.entries[0].dataset)

    @property
    def runs(self) -> list[str]:
        return list(dict.fromkeys(str(entry.run.root) for entry in self.entries))

    @property
    def seeds(self) -> list[int]:
        return sorted(entry.record.seed for entry in self.entries if entry.record.status == "ok")

    @property
    def threads(self) -> list[str]:
        """The torch thread counts of the runs its cells came from (run.json's device), "unknown" where unrecorded."""
        found = (str((entry.run.info.get("device") or {}).get("torch_threads", "unknown")) for entry in self.entries)
        return list(dict.fromkeys(found))

    @property
    def hardware(self) -> list[str]:
        return list(dict.fromkeys(entry.run.hardware for entry in self.entries))

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "dataset": self.dataset,
            "runs": self.runs,
            "seeds": self.seeds,
            "failed": sum(entry.record.status != "ok" for entry in self.entries),
            "torch_threads": self.threads,
            "hardware": self.hardware,
        }


def choose_sides(
    paths: Sequence[Path], names: Sequence[str], dataset: str | None
) -> tuple[Side, Side, dict[str, Column]]:
    """Side A and side B from the runs and ``--models``, on one data set, measured under one protocol."""
    from genbench.report import check_protocols, column_specs, find_run_dirs, label_entries, latest_per_seed, read_run

    roots = [find_run_dirs([path]) for path in paths]
    runs = [read_run(root) for root in dict.fromkeys(r for found in roots for r in found)]
    entries = [entry for entry in label_entries(runs) if dataset is None or entry.dataset == dataset]
    if not entries:
        where = f" on {dataset!r}" if dataset else ""
        raise GenbenchError(f"no cells{where} in {', '.join(str(run.root) for run in runs)}; run some first")
    if len(names) == 2:
        a = Side(_resolve(names[0], entries), tuple(entries))
        b = Side(_resolve(names[1], entries), tuple(entries))
        a, b = (Side(s.label, tuple(e for e in entries if e.model == s.label)) for s in (a, b))
    elif len(names) <= 1 and len(paths) == 2 and all(len(found) == 1 for found in roots):
        a, b = _across_runs(entries, runs[0].root, runs[-1].root, names[0] if names else None)
    else:
        raise GenbenchError(
            "name two models (--models A,B) or give two run directories (genbench compare RUN_A RUN_B) to compare "
            f"one model across them; got {len(paths)} paths and --models {','.join(names) or '(none)'}"
        )
    a, b = (_on_dataset(side, dataset) for side in (a, b))
    if a.dataset != b.dataset:
        raise GenbenchError(
            f"{a.label} is on {a.dataset} and {b.label} on {b.dataset}: numbers on different data sets do not compare"
        )
    a, b = (Side(side.label, tuple(latest_per_seed(list(side.entries))[0])) for side in (a, b))
    for side in (a, b):
        if not side.seeds:
            raise GenbenchError(f"{side.label} has no finished cell on {side.dataset}: nothing to compare")
    specs = column_specs(runs)
    try:
        check_protocols([*a.entries, *b.entries], [c for c in specs if _measured(a, b, c)])
    except GenbenchError as error:
        raise GenbenchError(str(error).replace("refusing to rank", "refusing to compare", 1)) from None
    return a, b, specs


def _resolve(name: str, entries: Sequence[Any]) -> str:
    """A model as the leaderboard labels it: the label itself, or a bare name that one label has."""
    labels = list(dict.fromkeys(str(entry.model) for entry in entries))
    if name in labels:
        return name
    matching = [label for label in labels if label.split(" (")[0] == name]
    if len(matching) == 1:
        return str(matching[0])
    if matching:
        raise GenbenchError(
            f"model {name!r} has several rows (configs or data sets): name one of {', '.join(map(repr, matching))}, "
            "or choose a data set with --dataset"
        )
    raise GenbenchError(f"no model {name!r} in these runs; they hold {', '.join(map(repr, labels))}")


def _across_runs(entries: Sequence[Any], first: Path, second: Path, name: str | None) -> tuple[Side, Side]:
    """One model followed across two run directories."""
    models = [{e.record.model for e in entries if e.run.root == root} for root in (first, second)]
    shared = sorted(models[0] & models[1])
    if name is None:
        if len(shared) != 1:
            found = (
                f"share {', '.join(shared)}"
                if shared
                else f"share no model ({', '.join(sorted(models[0]))} vs " + (f"{', '.join(sorted(models[1]))})")
            )
            raise GenbenchError(f"{first} and {second} {found}: name the one to compare with --models NAME")
        name = shared[0]
    elif name not in shared:
        raise GenbenchError(
            f"model {name!r} is not in both {first} and {second}; they share {', '.join(shared) or 'none'}"
        )
    a, b = (tuple(e for e in entries if e.run.root == root and e.record.model == name) for root in (first, second))
    return Side(f"{name} in {first}", a), Side(f"{name} in {second}", b)


def _on_dataset(side: Side, dataset: str | None) -> Side:
    datasets = list(dict.fromkeys(entry.dataset for entry in side.entries))
    if dataset is None:
        if len(datasets) > 1:
            raise GenbenchError(f"{side.label} ran on {', '.join(datasets)}: choose one with --dataset")
        return side
    if dataset not in datasets:
        raise GenbenchError(f"{side.label} did not run on {dataset!r}; it ran on {', '.join(datasets)}")
    return Side(side.label, tuple(entry for entry in side.entries if entry.dataset == dataset))


def _measured(a: Side, b: Side, column: str) -> bool:
    from genbench.report.significance import measurements

    return measurements(a.records, column).n > 0 and measurements(b.records, column).n > 0


def choose_columns(a: Side, b: Side, specs: dict[str, Column], asked: list[str] | None) -> list[str]:
    """The columns compared: those asked for, else every ranked quality column that both sides measured."""
    if asked is None:
        ranked = sorted((c for c, s in specs.items() if s.rank is not None), key=lambda c: specs[c].rank or 0)
        columns = [column for column in ranked if _measured(a, b, column)]
        if not columns:
            raise GenbenchError(
                f"{a.label} and {b.label} share no measured quality column; name columns with --metrics "
                f"(known: {', '.join(specs)})"
            )
        return columns
    for column in asked:
        if column not in specs:
            raise GenbenchError(f"--metrics: no column {column!r} in these runs; they have {', '.join(specs)}")
        if not _measured(a, b, column):
            raise GenbenchError(f"--metrics: {column!r} was not measured on both sides ({a.label}, {b.label})")
    return list(asked)


# ------------------------------------------------------------------------------------------ what is printed


def compare_notes(a: Side, b: Side, comparisons: Sequence[Any]) -> list[str]:
    """What the table's reader needs beside it: how it was tested, evaluation noise, threads, hardware."""
    quality = sum(c.family == QUALITY and c.result.test != "" for c in comparisons)
    notes = [
        "test: paired t over seeds where both sides ran the same seeds, else Welch's t; difference A - B with its "
        "95% interval; g: Hedges' g (the difference over the seeds' pooled standard deviation, small-sample "
        f"corrected); p Holm: Holm's correction across the {quality} quality columns tested, alpha 0.05"
        + ("; times are a family of their own" if any(c.family == TIMES for c in comparisons) else "")
    ]
    notes += [line for c in comparisons for line in _evaluation_notes(c)]
    notes += [line for c in comparisons for line in _kind_notes(a, b, c)]
    threads_a, threads_b = a.threads, b.threads
    if threads_a != threads_b or len(threads_a) > 1:
        one_seed = " With one seed a side, no test is made." if len(a.seeds) < 2 and len(b.seeds) < 2 else ""
        notes.append(
            f"torch threads differ: A ran with {'/'.join(threads_a)}, B with {'/'.join(threads_b)}. Thread counts "
            "change the numbers a model trains to (the digits' GAN FID moved by about 3 between one thread and two), "
            "so the difference includes that nondeterminism; read it as seed noise, not as a difference of models."
            + one_seed
        )
    if a.hardware != b.hardware and any(c.family == TIMES for c in comparisons):
        notes.append(f"times were measured on {', '.join(a.hardware)} (A) and {', '.join(b.hardware)} (B)")
    return notes


def likelihood_kind(side: Side, column: str) -> str | None:
    """ "exact", "bound" or "estimate" where the side's cells say what their likelihood column is (the records'
    provenance ``kind``, or the ``method`` of runs from before kinds); None for a column that is no likelihood."""
    from genbench.report import metric_of_column

    for entry in side.entries:
        provenance = entry.record.provenance.get(metric_of_column(column, entry) or "", {})
        kind = provenance.get("kind")
        if kind is None and "method" in provenance:
            kind = EXACT if str(provenance["method"]).startswith("exact") else "bound"
        if kind is not None:
            return "exact" if kind == EXACT else "estimate" if kind == STOCHASTIC_ESTIMATE else "bound"
    return None


def _kind_notes(a: Side, b: Side, comparison: Any) -> list[str]:
    """A bound beside an exact value: a bound lies above the model's true nll, so the bound's side may be better."""
    kinds = {"A": likelihood_kind(a, comparison.column), "B": likelihood_kind(b, comparison.column)}
    if None in kinds.values() or kinds["A"] == kinds["B"]:
        return []
    line = f"{comparison.column}: A's is {_article(kinds['A'])}, B's {_article(kinds['B'])}"
    worse = {"A": "B", "B": "A"}.get(comparison.better or "")
    if worse is not None and kinds[worse] != "exact":
        line += (
            f"; the verdict compares the numbers, and {worse}'s true value may be better than its {kinds[worse]}: "
            "it does not rank the two models' likelihoods"
        )
    return [line]


def _article(kind: str | None) -> str:
    return {"bound": "a bound", "estimate": "an estimate"}.get(str(kind), str(kind))


def _evaluation_notes(comparison: Any) -> list[str]:
    """Both spreads where the metric was evaluated several times per seed, and what the test then says."""
    a, b = comparison.a, comparison.b
    if math.isnan(a.evaluation_std) and math.isnan(b.evaluation_std):
        return []
    parts = []
    for name, side in (("A", a), ("B", b)):
        if math.isnan(side.evaluation_std):
            parts.append(f"{name} has no repeats")
            continue
        share = (side.evaluation_std**2 / side.evaluation_repeats) / side.std**2 if side.n > 1 and side.std else None
        shown = f", {share:.0%} of its seeds' variance" if share is not None else ""
        parts.append(
            f"{name} evaluation sd {_number(side.evaluation_std)} over {side.evaluation_repeats} repeats{shown}"
        )
    if comparison.result.test == EVALUATIONS:
        meaning = (
            "with one seed a side the test is over the evaluation repeats: it says these two trained models' "
            "evaluations differ, not that their trainings do"
        )
    else:
        meaning = "each seed's value is the mean of its repeats, so the spread over seeds already contains this noise"
    return [f"{comparison.column}: {'; '.join(parts)}; {meaning}"]


def format_comparison(a: Side, b: Side, comparisons: Sequence[Any], specs: dict[str, Column], notes: list[str]) -> str:
    lines = []
    for name, side in (("A", a), ("B", b)):
        seeds = ",".join(map(str, side.seeds))
        runs = [run for run in side.runs if not side.label.endswith(f" in {run}")]  # not twice
        where = "".join(f"; {run}" for run in runs)
        lines.append(
            f"{name}: {side.label}  ({side.dataset}; seeds {seeds}; torch threads {'/'.join(side.threads)}{where})"
        )
    headers = ["column", "A mean ± sd", "B mean ± sd", "A - B [95% CI]", "test", "p", "p Holm", "g", "verdict"]
    rows = [
        [
            f"{c.column} {'↑' if c.higher_is_better else '↓'}",
            _spread(c.a),
            _spread(c.b),
            f"{_number(c.result.difference)} [{_number(c.result.low)}, {_number(c.result.high)}]"
            if c.result.test
            else _number(c.result.difference),
            f"{c.result.test}({_number(c.result.df, 3)})" if c.result.test else "none",
            _number(c.result.p_value, 2),
            _number(c.p_holm, 2),
            _number(c.result.effect_size, 2),
            c.verdict(),
        ]
        for c in comparisons
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers) - 1)]
    table = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in [headers, *rows]
    ]
    # Labels and run folders come from files anyone could have written: each line stays a line, without escapes.
    return "\n".join(terminal_safe(line) for line in [*lines, "", *table, "", *(f"note: {note}" for note in notes)])


def _spread(side: Any) -> str:
    if side.n == 0:
        return "–"
    if side.n == 1:
        return f"{_number(side.mean)} (n=1)"
    return f"{_number(side.mean)} ± {_number(side.std, 2)} (n={side.n})"


def _number(value: float, digits: int = 4) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.{digits}g}"


def _plain(value: Any) -> Any:
    """JSON has no NaN: a value that was not computed (no test, one seed) is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
