"""leaderboard.md: the tables (mean ± half-width, failed counts, N/A reasons), notes and the protocol.

Everything a plugin or a run folder wrote goes through ``genbench.toolkit.text.markdown_safe``: no link, no HTML, no
table break survives into the file.
"""

from __future__ import annotations

from genbench.report.leaderboard import Leaderboard
from genbench.report.protocol_section import protocol_sections
from genbench.report.tables import (
    TableCell,
    interval_legend,
    side_tables,
    table_notes,
    table_rows,
)
from genbench.toolkit.text import markdown_safe


def render_markdown(leaderboard: Leaderboard) -> str:
    """leaderboard.md: the tables (mean ± half-width, failed counts, N/A reasons), notes and the protocol."""
    lines = ["# genbench leaderboard", "", _md(interval_legend(leaderboard)), ""]
    for dataset in leaderboard.datasets:
        headers, rows = table_rows(leaderboard, dataset)
        lines += [f"## {_md(dataset)}", "", _md_row(headers), _md_row(["---"] * len(headers))]
        lines += [_md_row([_md_cell(cell) for cell in row], escape=False) for row in rows]
        lines.append("")
        notes = table_notes(leaderboard, dataset)
        if notes:
            lines += [*(f"- {_md(note)}" for note in notes), ""]
        for side in side_tables(leaderboard, dataset):
            lines += [f"### {side.title}", "", _md(side.legend), ""]
            lines += [_md_row(side.headers), _md_row(["---"] * len(side.headers))]
            lines += [_md_row([cell.text for cell in row]) for row in side.rows]
            lines.append("")
    if leaderboard.notes:
        lines += ["## Notes", "", *(f"- {_md(note)}" for note in leaderboard.notes), ""]
    lines += ["## Protocol", ""]
    for title, items in protocol_sections(leaderboard):
        lines += [f"### {title}", "", *(f"- **{_md(subject)}**: {_md(text)}" for subject, text in items), ""]
    return "\n".join(lines)


def _md(text: str) -> str:
    """Plugin text as literal Markdown: no link, no HTML, no table break, one line."""
    return markdown_safe(text)


def _md_cell(cell: TableCell) -> str:
    text = f"N/A: {cell.reason}" if cell.text == "N/A" and cell.reason else cell.text
    spread = f" ({_md(cell.spread)})" if cell.spread else ""
    return (f"**{_md(text)}**" if cell.best else _md(text)) + spread


def _md_row(cells: list[str], escape: bool = True) -> str:
    return "| " + " | ".join(_md(cell) if escape else cell for cell in cells) + " |"
