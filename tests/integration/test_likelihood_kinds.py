"""What a likelihood number is travels with it, nll and bpd are one estimate, and evaluation-time options sweep
one trained model.

The ``swept`` model (tests/sweep_plugins.py) declares a variational bound and a ``steps`` option; the VAE's bound
is the importance-weighted one its ``elbo`` implies, with k samples.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import genbench
from genbench import GenbenchError

TINY_VAE = {"vae": {"epochs": 1, "hidden": 16, "latent_dim": 2}}


def provenance(run_dir: Path, model: str) -> list[dict]:  # type: ignore[type-arg]
    records = [json.loads(path.read_text()) for path in (run_dir / "cells").glob(f"{model}-*.json")]
    return sorted(records, key=lambda record: json.dumps(record["sample_options"]))


@pytest.mark.slow  # trains a VAE
def test_nll_and_bpd_are_one_estimate_and_k_given_under_either_name_changes_both(tmp_path: Path) -> None:
    runs = {}
    for name, options in {"nll_k": {"nll": {"k": 2}}, "bpd_k": {"bpd": {"k": 3}}}.items():
        frame = genbench.run(
            ["vae"], metrics=["nll", "bpd"], model_options=TINY_VAE, metric_options=options,
            results_dir=tmp_path, name=name,
        )  # fmt: skip
        row = frame.iloc[0]
        dims = 64
        assert row["bpd"] == pytest.approx(row["nll"] / (dims * math.log(2)), rel=1e-12)
        record = provenance(Path(frame.attrs["run_dir"]), "vae")[0]
        assert record["provenance"]["nll"]["kind"] == genbench.IMPORTANCE_WEIGHTED
        assert record["provenance"]["nll"]["settings"] == record["provenance"]["bpd"]["settings"]
        runs[name] = (row, record["provenance"]["nll"]["settings"]["k"])
    assert runs["nll_k"][1] == 2 and runs["bpd_k"][1] == 3
    assert runs["nll_k"][0]["nll"] != runs["bpd_k"][0]["nll"]


def test_two_values_for_one_shared_option_are_refused(tmp_path: Path) -> None:
    with pytest.raises(GenbenchError, match=r"nll and bpd report one estimate"):
        genbench.run(["independent"], metrics=["nll", "bpd"], metric_options={"nll": {"k": 3}, "bpd": {"k": 5}},
                     results_dir=tmp_path)  # fmt: skip


@pytest.mark.slow  # trains a VAE
def test_estimator_settings_are_given_per_model(tmp_path: Path) -> None:
    frame = genbench.run(
        ["vae"], metrics=["nll"], model_options=TINY_VAE, metric_options={"nll": {"models": {"vae": {"k": 2}}}},
        results_dir=tmp_path,
    )  # fmt: skip
    assert provenance(Path(frame.attrs["run_dir"]), "vae")[0]["provenance"]["nll"]["settings"] == {"k": 2}


def test_a_sweep_trains_once_writes_a_record_per_value_and_labels_bound_and_exact(tmp_path: Path) -> None:
    frame = genbench.run(
        ["swept", "independent"], plugins=["sweep_plugins"], metrics=["nll", "bpd", "sample_time"],
        sample_options={"swept": {"steps": [1, 2, 3]}}, results_dir=tmp_path, name="sweep",
    )  # fmt: skip
    run_dir = Path(frame.attrs["run_dir"])
    assert (frame["status"] == "ok").all()
    assert list(frame[frame["model"] == "swept"]["sample_options"]) == ["steps=1", "steps=2", "steps=3"]
    records = provenance(run_dir, "swept")
    assert [record["sample_options"] for record in records] == [{"steps": 1}, {"steps": 2}, {"steps": 3}]
    assert len({record["checkpoint_key"] for record in records}) == 1  # one trained model ...
    assert len(list((run_dir / "checkpoints").glob("*.safetensors"))) == 2  # ... beside the independent one
    assert [record["provenance"]["sample_time"]["nfe"] for record in records] == [1, 2, 3]
    assert records[0]["provenance"]["nll"]["kind"] == genbench.VARIATIONAL_BOUND
    assert len({record["metrics"]["nll"] for record in records}) == 1  # the options change sampling only
    page = (run_dir / "leaderboard.md").read_text()
    assert "swept (steps=2)" in page
    assert "(bound)" in page and "(exact)" in page
    # Quality and time against network evaluations: a table in every rendering, a plot on the page.
    table = page.split("### Quality and sample time against network evaluations")[1]
    assert [line.split(" | ")[:2] for line in table.splitlines() if line.startswith("| swept")] == [
        ["| swept (steps=1)", "1"],
        ["| swept (steps=2)", "2"],
        ["| swept (steps=3)", "3"],
    ]
    assert "Against network evaluations" in (run_dir / "leaderboard.html").read_text()


def test_the_same_sweep_from_the_command_line_names_the_same_cells(tmp_path: Path) -> None:
    from genbench.cli import build_parser, request_from_args
    from genbench.runner import prepare

    parser = build_parser()[0]
    args = parser.parse_args(["run", "-p", "sweep_plugins", "--models", "swept", "--sample-option", "swept.steps=1,2"])
    flags = prepare(request_from_args(args)).sample_options_of("swept")
    api = genbench.run(["swept"], plugins=["sweep_plugins"], metrics=["nll"],
                       sample_options={"swept": {"steps": [1, 2]}}, results_dir=tmp_path)  # fmt: skip
    assert flags == [{"steps": 1}, {"steps": 2}]
    assert len(api) == 2


def test_a_sample_option_the_model_does_not_have_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(GenbenchError, match="has no option 'temperature'"):
        genbench.run(["swept"], plugins=["sweep_plugins"], sample_options={"swept": {"temperature": [1.0]}},
                     results_dir=tmp_path)  # fmt: skip
    with pytest.raises(GenbenchError, match="model 'independent' has no evaluation-time options"):
        genbench.run(["independent"], sample_options={"independent": {"steps": [1]}}, results_dir=tmp_path)
