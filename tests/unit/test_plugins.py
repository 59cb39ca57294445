"""The plugin manager: entry points, -p, autoload switch, validation, broken plugins, name clashes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genbench import GenbenchError, PluginError
from genbench.cli import main
from genbench.registry import DATASET, METRIC, MODEL, load_plugins

BUILT_IN_MODELS = {"independent"}


@pytest.mark.slow
def test_import_genbench_imports_no_built_in_plugin() -> None:
    code = "import sys, genbench; print(sorted(m for m in sys.modules if m.startswith('genbench_')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_built_ins_come_through_entry_points(registry) -> None:
    assert set(registry.names(MODEL)) >= BUILT_IN_MODELS
    assert {"nll", "bpd", "sample_time"} <= set(registry.names(METRIC))
    assert {"digits", "mnist", "folder"} <= set(registry.names(DATASET))
    assert registry.plugin_of(MODEL, "independent").distribution == "genbench"


def test_fake_third_party_plugin_is_listed_and_runs(fake_distributions, capsys, tmp_path) -> None:
    fake_distributions("genbench-constant", "1.2.3", constant="fake_plugins")
    assert main(["plugins"]) == 0
    listing = capsys.readouterr().out
    line = next(line for line in listing.splitlines() if line.startswith("constant "))
    assert "model" in line and "genbench-constant 1.2.3" in line

    code = main(["run", "--models", "constant", "--metrics", "sample_time", "--results-dir", str(tmp_path)])
    assert code == 0
    assert "constant" in capsys.readouterr().out


def test_plugins_add_run_options_that_reach_metrics(capsys, tmp_path) -> None:
    args = ["run", "-p", "fake_plugins", "--models", "constant", "--metrics", "option_echo", "--results-dir"]
    assert main([*args, str(tmp_path), "--fake-scale", "2.5"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[-1] == "2.5"


def test_cell_finished_event_reaches_listeners(fake_distributions, tmp_path) -> None:
    import fake_plugins

    fake_distributions("genbench-tracker", "0.1", tracker="fake_plugins:tracker")
    fake_plugins.tracker.finished.clear()
    main(["run", "--models", "independent", "--seeds", "0,1", "--metrics", "bpd", "--results-dir", str(tmp_path)])
    assert [(r.model, r.seed, r.status) for r in fake_plugins.tracker.finished] == [
        ("independent", 0, "ok"),
        ("independent", 1, "ok"),
    ]


def test_plugin_that_fails_to_import_is_named_and_others_load(fake_distributions, capsys) -> None:
    fake_distributions("broken-dist", "0.1", broken="no_such_module_anywhere")
    registry = load_plugins()
    broken = {p.name: p for p in registry.broken}
    assert "no_such_module_anywhere" in broken["broken"].error
    assert "independent" in registry.names(MODEL)
    main(["plugins"])
    assert "BROKEN plugin 'broken' from broken-dist 0.1" in capsys.readouterr().out


def test_wrong_hook_answer_marks_plugin_broken(fake_distributions) -> None:
    fake_distributions("wrong-dist", "0.1", wrong="fake_plugins:wrong_answer")
    registry = load_plugins()
    assert "genbench_models: must return a list of ModelSpec" in registry.broken[0].error
    assert "independent" in registry.names(MODEL)


def test_two_plugins_claiming_one_name_is_an_error_naming_both(fake_distributions) -> None:
    fake_distributions("impostor-dist", "9.9", impostor="fake_plugins:impostor")
    with pytest.raises(PluginError) as error:
        load_plugins()
    assert "'independent'" in str(error.value)
    assert "genbench 0.1.0" in str(error.value) and "impostor-dist 9.9" in str(error.value)


def test_a_column_clash_is_recorded_and_genbench_plugins_lists_both_metrics(fake_distributions, capsys) -> None:
    fake_distributions("clash-dist", "0.2", clash="bad_plugins.column_clash")
    registry = load_plugins()  # does not fail: a run may use either metric alone
    (collision,) = registry.collisions
    assert (collision.column, collision.metrics) == ("bpd", ("bpd", "other_bpd"))
    assert "genbench 0.1.0" in collision.describe() and "clash-dist 0.2" in collision.describe()
    assert {"bpd", "other_bpd", "nll"} <= set(registry.names(METRIC))
    assert main(["plugins"]) == 0
    listing = capsys.readouterr().out.splitlines()
    for metric in ("bpd", "other_bpd"):
        row = next(line for line in listing if line.startswith(f"{metric} "))
        assert "metric (column clash)" in row
    clash = [line for line in listing if line.startswith("COLUMN CLASH: ")]
    assert len(clash) == 1 and "'likelihood'" in clash[0] and "'clash' from clash-dist 0.2" in clash[0]


def test_a_run_with_one_of_two_clashing_metrics_works_and_with_both_stops_in_one_line(
    fake_distributions, capsys, tmp_path
) -> None:
    fake_distributions("clash-dist", "0.2", clash="bad_plugins.column_clash")
    argv = ["run", "--models", "independent", "--results-dir", str(tmp_path / "results")]
    assert main([*argv, "--metrics", "other_bpd,nll"]) == 0
    assert "bpd" in capsys.readouterr().out
    written = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*"))
    assert main([*argv, "--metrics", "bpd,other_bpd", "--name", "both"]) == 2
    error = capsys.readouterr().err.splitlines()
    assert len(error) == 1 and error[0].startswith("genbench: error: column 'bpd' is declared by metric 'bpd'")
    assert "plugin 'likelihood' from genbench 0.1.0" in error[0] and "plugin 'clash' from clash-dist 0.2" in error[0]
    assert error[0].endswith("rename the column in one of the plugins, or choose one metric with --metrics")
    assert sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*")) == written  # stopped before writing


def test_unknown_name_suggests_close_ones(registry) -> None:
    with pytest.raises(GenbenchError, match=r"Did you mean 'independent'\? Available: .*independent"):
        registry.get(MODEL, "independant")
    with pytest.raises(GenbenchError, match=r"unknown metric 'zzz'\. Available: "):
        registry.get(METRIC, "zzz")


def test_autoload_can_be_switched_off_and_p_loads_a_module(monkeypatch) -> None:
    monkeypatch.setenv("GENBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert load_plugins().names(MODEL) == []
    assert load_plugins(["fake_plugins"]).names(MODEL) == ["constant", "failing"]


def test_p_with_a_missing_module_is_a_user_error() -> None:
    with pytest.raises(GenbenchError, match="cannot import plugin module 'nope_nope' given with -p"):
        load_plugins(["nope_nope"])


def test_p_of_an_already_loaded_module_is_not_registered_twice() -> None:
    registry = load_plugins(["genbench_independent"])
    assert registry.names(MODEL).count("independent") == 1
