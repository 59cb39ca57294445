"""The terminal table of a run's results: N/A where a metric does not apply, nothing for a column no row wrote."""

from __future__ import annotations

import math

import pandas as pd

from genbench.store.frame import NOT_APPLICABLE_COLUMN, format_table


def test_a_column_no_row_wrote_is_left_out_and_a_not_applicable_one_stays() -> None:
    frame = pd.DataFrame(
        {
            "model": ["vae", "gan"],
            "seed": [0, 0],
            "status": ["ok", "ok"],
            "nll": [92.25, math.nan],
            "fid_eval_std": [math.nan, math.nan],  # evaluation repeats, asked of no cell
            "error": ["", ""],
            NOT_APPLICABLE_COLUMN: ["", "nll: gan has no likelihood"],
        }
    )
    table = format_table(frame)
    header = table.splitlines()[0].split()
    assert header == ["model", "seed", "status", "nll"]
    assert table.splitlines()[2].split()[-1] == "N/A"
    assert "N/A for gan: nll: gan has no likelihood" in table
