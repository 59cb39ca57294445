"""Damaged records, checkpoints and cached files: found by their checksum, set aside, recomputed, never used.

Each case of ``faults.DAMAGED_STATES`` damages one file of a finished run and runs again: the run must warn in
one line, move the file to ``<name>.corrupt``, compute it again and give exactly the numbers of the undamaged
run (flipped tensor bytes, if used, would change them). ``scripts/fault_injection.py`` counts the same cases.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import faults
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import genbench
from genbench import cli, report
from genbench.store.frame import format_table
from genbench.store.layout import RunDirectory
from genbench.toolkit.files import (
    DamagedFile,
    DamagedFileWarning,
    load_checked_tensors,
    read_checked_json,
    save_checked_tensors,
    write_checked_json,
)


@pytest.fixture(autouse=True)
def short_classifier(monkeypatch: pytest.MonkeyPatch) -> None:
    import genbench_fid.feature_extractor_classifier as classifier

    monkeypatch.setattr(classifier, "ClassifierConfig", faults.short_classifier())


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A finished run of the damage grid, with its checkpoint and every cached file; never changed."""
    import genbench_fid.feature_extractor_classifier as classifier

    results = tmp_path_factory.mktemp("pristine")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(classifier, "ClassifierConfig", faults.short_classifier())
        frame = faults.run_damage_grid(results)
    assert (frame["status"] == "ok").all(), frame["error"].tolist()
    return results, frame


@pytest.mark.parametrize("state", faults.DAMAGED_STATES, ids=[s.name for s in faults.DAMAGED_STATES])
def test_damaged_file_is_set_aside_and_recomputed(
    state: faults.DamagedState, pristine: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    results, reference = pristine
    with pytest.warns(DamagedFileWarning) as caught:
        frame, corrupt = faults.recover(state, results, tmp_path / "results")
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert "\n" not in str(caught[0].message) and ".corrupt" in str(caught[0].message)
    assert corrupt.is_file(), sorted(p.name for p in corrupt.parent.iterdir())
    assert faults.same_numbers(frame, reference), (frame, reference)


def test_a_recomputed_file_verifies_and_a_second_damage_keeps_the_first_corrupt_copy(tmp_path: Path) -> None:
    tensors, sidecar = tmp_path / "x.safetensors", tmp_path / "x.json"
    save_checked_tensors(tensors, sidecar, {"w": torch.arange(6.0)}, {"note": "first"})
    for expected in ("x.safetensors.corrupt", "x.safetensors.corrupt.1"):
        faults.flip_tensor_bytes(tensors)
        # The damage parses as valid tensors with other values: without the checksum it would be used silently.
        assert load_file(tensors)["w"].tolist() != list(range(6))
        with pytest.warns(DamagedFileWarning, match="SHA-256 mismatch"):
            assert load_checked_tensors(tensors, sidecar) is None
        assert (tmp_path / expected).is_file() and not tensors.exists()
        save_checked_tensors(tensors, sidecar, {"w": torch.arange(6.0)}, {"note": "again"})
        loaded = load_checked_tensors(tensors, sidecar)
        assert loaded is not None and loaded[1] == {"note": "again"} and loaded[0]["w"].tolist() == list(range(6))


def test_checked_json_round_trips_and_refuses_what_it_did_not_write(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    write_checked_json(path, {"b": [1, 2.5], "a": None, "path": tmp_path})
    assert read_checked_json(path) == {"b": [1, 2.5], "a": None, "path": str(tmp_path)}
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "a": 1}))
    with pytest.raises(DamagedFile):
        read_checked_json(path)
    path.write_text(json.dumps({"a": 1}))
    with pytest.raises(DamagedFile, match="no sha256"):
        read_checked_json(path)
    assert read_checked_json(path, unchecked_ok=True) == {"a": 1}


def test_show_and_report_skip_a_damaged_record_and_say_so(pristine: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    results = Path(shutil.copytree(pristine[0], tmp_path / "results"))
    record = next((results / "grid" / "cells").glob("*.json"))
    faults.truncate(record)
    before = record.read_bytes()
    with pytest.warns(DamagedFileWarning, match="damaged cell record .* skipped"):
        frame = genbench.load_results(results / "grid")
    assert frame["status"].tolist() == ["damaged"] and frame["model"].tolist() == ["independent"]
    assert "damaged: independent seed 0: damaged record: not valid JSON" in format_table(frame)
    faults.run_damage_grid(results, "other")  # report needs one good cell to build a leaderboard
    with pytest.warns(DamagedFileWarning):
        leaderboard = report.build_leaderboard([results])
    assert any("damaged record of cell" in note for note in leaderboard.notes)
    assert record.read_bytes() == before  # show and report read; they do not move files


def test_records_without_a_checksum_from_earlier_versions_are_still_read(
    pristine: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    results = Path(shutil.copytree(pristine[0], tmp_path / "results"))
    record = next((results / "grid" / "cells").glob("*.json"))
    data = json.loads(record.read_text())
    del data["sha256"]
    record.write_text(json.dumps(data))
    assert RunDirectory(results / "grid").check_cell(record.stem) is not None
    data["seed"] = "zero"
    record.write_text(json.dumps(data))
    with pytest.raises(DamagedFile, match="seed is a str"):
        RunDirectory(results / "grid").check_cell(record.stem)


def test_the_command_line_shows_a_damaged_file_in_one_line() -> None:
    assert (
        cli._one_line_warning("damaged file x", DamagedFileWarning, "store.py", 9)
        == "genbench: warning: damaged file x\n"
    )
    assert "store.py:9" in cli._one_line_warning("other", UserWarning, "store.py", 9)
