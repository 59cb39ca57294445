"""Untrusted runs and text: show and report read only inside the run folder, escape what they print, neutralize
what they write; JSON is strict; values are checked against annotations.

One real run of the independent baseline (two seeds, a few seconds) is made per module and copied per test.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

import genbench
from genbench import GenbenchError
from genbench.cli import main
from genbench.contract import TrainingDiverged
from genbench.runner.cell import curve_point
from genbench.toolkit.checks import check_value, field_hints, non_finite_paths
from genbench.toolkit.files import write_checked_json, write_json_atomic
from genbench.toolkit.text import markdown_safe, terminal_safe

HOSTILE = "evil\x1b]0;pwned\x07\x1b[2J[click](javascript:alert(1))<img src=x>|`x`"


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = genbench.run(
        ["independent"], metrics=["bpd"], seeds=[0, 1], device="cpu", results_dir=tmp_path_factory.mktemp("results")
    )
    return Path(frame.attrs["run_dir"])


@pytest.fixture
def run_dir(base_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(base_run, tmp_path / "results" / "run"))


def edit_json(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def edit_record(path: Path, change: Any) -> None:
    """Edit a cell record and give it a valid checksum: whoever writes hostile text can compute a SHA-256 too,
    so what is shown must be safe whatever a record holds."""
    data = json.loads(path.read_text())
    change(data)
    write_checked_json(path, data)


def cell_files(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "cells").glob("*.json"))


# -------------------------------------------------------------------------------------- paths and links


def test_report_refuses_cell_ids_that_leave_the_run(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside.json"
    record = json.loads(cell_files(run_dir)[0].read_text())
    outside.write_text(json.dumps({**record, "model": "stolen", "seed": 7}))
    hostile_ids = ["../../outside", str(outside.with_suffix(""))]
    edit_json(run_dir / "run.json", lambda info: info["cells"].extend(hostile_ids))

    assert main(["report", str(run_dir)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("genbench: warning: ")]
    assert len(warnings) == 2 and all("not a file inside" in line for line in warnings)
    assert "stolen" not in captured.out
    assert "stolen" not in (run_dir / "leaderboard.md").read_text()


def test_links_out_of_the_run_folder_are_not_followed(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = cell_files(run_dir)[0]
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({**json.loads(first.read_text()), "model": "stolen"}))
    first.unlink()
    first.symlink_to(outside)
    secret_png = tmp_path / "secret.png"
    secret_png.write_bytes(b"\x89PNG secret bytes")
    for sample in (run_dir / "samples").glob("independent-*.png"):
        sample.unlink()
        sample.symlink_to(secret_png)

    assert main(["report", str(run_dir)]) == 0
    assert "not a file inside" in capsys.readouterr().err
    page = (run_dir / "leaderboard.html").read_text()
    assert "stolen" not in page and base64.b64encode(secret_png.read_bytes()).decode() not in page


# ---------------------------------------------------------------------------------------- hostile text


def test_show_escapes_control_characters(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path in cell_files(run_dir):
        edit_record(path, lambda cell: cell.update(model=HOSTILE, status="failed", error="bad\x1b[31m\nnews"))
    assert main(["show", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b]0;pwned\\x07" in out and "bad\\x1b[31m\\nnews" in out


def test_leaderboard_markdown_has_no_live_link_or_html(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path in cell_files(run_dir):
        edit_record(path, lambda cell: cell.update(model=HOSTILE))
    assert main(["report", str(run_dir)]) == 0
    assert "\x1b" not in capsys.readouterr().out
    markdown = (run_dir / "leaderboard.md").read_text()
    assert "](" not in markdown.replace("\\](", "") and "<img" not in markdown and "\x1b" not in markdown
    assert "\\[click\\](javascript:alert(1))&lt;img src=x&gt;\\|\\`x\\`" in markdown
    assert "<img src=x>" not in (run_dir / "leaderboard.html").read_text()


def test_text_helpers() -> None:
    assert terminal_safe("a\x1b[2Jb\r\nc\x9b\u202e") == "a\\x1b[2Jb\\x0d\\nc\\x9b\\u202e"
    assert terminal_safe("line\nline", one_line=False) == "line\nline"
    assert markdown_safe("[a](b) <i>|`c`\\ & d\ne") == "\\[a\\](b) &lt;i&gt;\\|\\`c\\`\\\\ &amp; d e"


def test_damaged_run_json_is_one_line(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run_dir / "run.json").write_text('{"cells": [1, 2]}')
    for command in (["show", str(run_dir)], ["report", str(run_dir)]):
        assert main(command) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"genbench: error: {run_dir / 'run.json'} is damaged (cells must be a list of strings, got [1, 2]); "
            "rerun the run to rewrite it"
        ]


# ------------------------------------------------------------------------------------------ strict JSON


def test_json_is_written_strictly(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    with pytest.raises(ValueError, match=r"NaN or infinity into .*record.json \(at metrics.nll, curve\[1\].loss\)"):
        write_json_atomic(path, {"metrics": {"nll": math.inf}, "curve": [{"loss": 1.0}, {"loss": math.nan}]})
    assert list(tmp_path.iterdir()) == []
    assert non_finite_paths({"a": [1.0, {"b": -math.inf}], "c": "nan"}) == ["a[1].b"]


def test_a_non_finite_training_curve_fails_at_its_source() -> None:
    assert curve_point(3, {"loss": 1}) == {"step": 3.0, "loss": 1.0}
    with pytest.raises(TrainingDiverged, match="loss became nan at step 4"):
        curve_point(4, {"loss": math.nan})


def test_python_api_gets_the_same_checks(tmp_path: Path) -> None:
    for kwargs, message in (
        ({"seeds": [0, 0]}, "seeds gives 0 more than once"),
        ({"seeds": [2**32]}, "out of range"),
        ({"name": "../x"}, "not a run name"),
        ({"epochs": "3"}, "epochs must be an integer"),
        ({"binarize": "false"}, "binarize must be true or false"),
        ({"model_options": {"independent": {"pseudocount": -1.0}}}, "pseudocount must be greater than 0"),
    ):
        with pytest.raises(GenbenchError, match=message):
            genbench.run(["independent"], metrics=["bpd"], results_dir=tmp_path / "results", **kwargs)
    assert not (tmp_path / "results").exists()


# ----------------------------------------------------------------------------------- typed validation


@dataclass
class Everything:
    count: int = 1
    maybe: int | None = None
    rate: float = 0.5
    flag: bool = False
    word: str = "a"
    seeds: list[int] = field(default_factory=list)
    pair: tuple[int, str] = (0, "a")
    choice: Literal["x", "y"] = "x"
    where: Path = Path(".")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("count", 3, 3),
        ("maybe", None, None),
        ("maybe", 4, 4),
        ("rate", 2, 2.0),
        ("flag", True, True),
        ("seeds", [1, 2], [1, 2]),
        ("seeds", (1, 2), [1, 2]),
        ("pair", [1, "b"], (1, "b")),
        ("choice", "y", "y"),
        ("where", "~/data", Path.home() / "data"),
    ],
)
def test_values_that_fit_their_annotation_are_converted(name: str, value: Any, expected: Any) -> None:
    converted = check_value(value, field_hints(Everything)[name], name)
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize(
    ("hint", "value", "message"),
    [
        (int, True, "must be an integer, got True"),
        (int, 1.0, "must be an integer, got 1.0"),
        (float, False, "must be a finite number, got False"),
        (float, math.nan, "must be a finite number, got nan"),
        (bool, "false", "must be true or false, got 'false'"),
        (bool, 0, "must be true or false, got 0"),
        (str, 1, "must be a string, got 1"),
        (int | None, "3", "must be an integer \\(or left out\\), got '3'"),
        (list[int], 1, "must be a list of integers, got 1"),
        (list[int], [1, True], "must be a list of integers"),
        (tuple[int, str], [1], "must be a list of"),
        (Literal["x", "y"], "z", "must be one of 'x', 'y', got 'z'"),
        (Path, 3, "must be a path"),
        (int, "x" * 200, "must be an integer, got 'xxx.*\\.\\.\\.$"),
    ],
)
def test_values_that_do_not_fit_are_one_line_errors(hint: Any, value: Any, message: str) -> None:
    with pytest.raises(GenbenchError, match=f"^setting {message}"):
        check_value(value, hint, "setting")


def test_a_run_says_which_plugins_are_broken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "--models", "independent", "--metrics", "bpd", "-p", "bad_plugins.bad_field"]
    assert main([*argv, "--results-dir", str(tmp_path)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [
        "genbench: warning: plugin 'bad_plugins.bad_field' from module bad_plugins.bad_field is broken and not "
        "used: genbench_metrics: metric 'sharpness' column: field 'higher_is_better' must be true or false, got 'yes'"
    ]
