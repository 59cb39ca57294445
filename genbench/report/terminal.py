"""The leaderboard for a terminal: one fixed-width table per data set, then failures, N/A reasons and notes."""

from __future__ import annotations

from collections import defaultdict

from genbench.report.leaderboard import Leaderboard
from genbench.report.tables import TableCell, side_tables, table_notes, table_rows
from genbench.toolkit.text import terminal_safe


def format_leaderboard(leaderboard: Leaderboard) -> str:
    """The leaderboard for a terminal: one fixed-width table per data set, then failures, N/A reasons, notes."""
    import pandas as pd  # here, not at the top: the CLI starts without pandas

    blocks = []
    for dataset in leaderboard.datasets:
        headers, rows = table_rows(leaderboard, dataset)
        # The failed column shows its count here; the errors follow the table, where long lines do no harm.
        cells = [[*(_marked(cell) for cell in row[:-1]), str(row[-1].sort_value).removesuffix(".0")] for row in rows]
        # Names and errors come from files anyone could have written: each stays on its line, without escapes.
        frame = pd.DataFrame([[terminal_safe(cell) for cell in row] for row in cells], columns=headers)
        lines = [terminal_safe(f"== {dataset} =="), frame.to_string(index=False)]
        lines += [f"failed: {row[0].text}: {row[-1].text}" for row in rows if row[-1].text != "0"]
        lines += _na_notes(headers, rows)
        lines += table_notes(leaderboard, dataset)
        block = [lines[0], lines[1], *(terminal_safe(line) for line in lines[2:])]
        for side in side_tables(leaderboard, dataset):
            safe = [[terminal_safe(cell.text) for cell in row] for row in side.rows]
            table = pd.DataFrame(safe, columns=[terminal_safe(header) for header in side.headers])
            block += [f"{side.title.lower()}:", table.to_string(index=False)]
        blocks.append("\n".join(block))
    notes = [terminal_safe(f"note: {note}") for note in leaderboard.notes]
    legend = f"mean ± {leaderboard.confidence:.0%} CI half-width over seeds; * best of its quality column"
    return "\n\n".join([*blocks, "\n".join([legend, *notes])])


def _marked(cell: TableCell) -> str:
    spread = f" ({cell.spread})" if cell.spread else ""
    return f"{cell.text}{spread} *" if cell.best else f"{cell.text}{spread}"


def _na_notes(headers: list[str], rows: list[list[TableCell]]) -> list[str]:
    """Each N/A reason once per column, with the models it concerns."""
    reasons: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        for header, cell in zip(headers, row, strict=True):
            if cell.reason and cell.text == "N/A":
                reasons[(header.split(" ")[0], cell.reason)].append(row[0].text)
    return [f"N/A {column} for {', '.join(models)}: {reason}" for (column, reason), models in reasons.items()]
