"""Weights that travel: ``genbench export``, then ``--checkpoint MODEL=PATH`` in a fresh run, and the files refused."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from conftest import TESTS
from genbench import DataInfo, GenbenchError
from genbench.cli import main
from genbench.config import apply_suite, read_suite
from genbench.contract.request import RunRequest
from genbench.registry import MODEL, Registered, load_plugins
from genbench.report import build_leaderboard
from genbench.runner.identity import model_key
from genbench.runner.prepare import prepare
from genbench_vae import VAE, VAEConfig

DIGITS = DataInfo((1, 8, 8), 17)


def genbench(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """The CLI in this process (exit code, stdout, stderr): the same main() that the console script calls."""
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def only_record(run_dir: Path) -> dict[str, Any]:
    (path,) = (run_dir / "cells").glob("*.json")
    record: dict[str, Any] = json.loads(path.read_text())
    return record


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VAE trained by genbench on the digits for one epoch, with its nll: the run directory."""
    results = tmp_path_factory.mktemp("trained")
    args = ["run", "--models", "vae", "--epochs", "1", "--metrics", "nll", "--results-dir", results, "--name", "t"]
    assert main([str(arg) for arg in args]) == 0
    return results / "t"


@pytest.mark.slow
def test_exported_vae_loaded_in_a_fresh_run_gives_the_same_nll_and_trains_nothing(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = only_record(trained)
    weights = tmp_path / "weights" / "vae.safetensors"
    code, out, _ = genbench(capsys, "export", trained, "--cell", source["cell_id"], "--out", weights)
    assert code == 0 and str(weights) in out

    sidecar = json.loads(weights.with_suffix(".json").read_text())
    assert sidecar["model"] == "vae" and sidecar["config"] == source["config"] and sidecar["seed"] == 0
    assert sidecar["source"]["cell"] == source["cell_id"] and sidecar["sha256"] == sha256(weights)
    assert sidecar["dataset"]["fingerprint"] == source["dataset_provenance"]["fingerprint"]

    fresh = tmp_path / "fresh"
    code, out, err = genbench(
        capsys, "run", "--models", "vae", "--checkpoint", f"vae={weights}", "--metrics", "nll", "--results-dir", fresh
    )
    assert code == 0, err
    (run_dir,) = fresh.iterdir()
    loaded = only_record(run_dir)
    assert loaded["metrics"]["nll"] == source["metrics"]["nll"]  # to the last digit: the same tensors, the same noise
    assert loaded["trained"] is False and loaded["train_time"] is None and loaded["curve"] == []
    assert "vae.safetensors" in loaded["not_applicable"]["train_time"]
    assert loaded["config"] == source["config"]  # built with the sidecar's config
    origin = loaded["provenance"]["origin"]
    assert origin["sha256"] == sha256(weights) and origin["file"] == "vae.safetensors"
    assert origin["config_from"] == "the sidecar vae.json" and origin["same_data"] is True
    assert list((run_dir / "checkpoints").iterdir()) == []  # nothing trained, nothing saved
    assert "N/A" in out.splitlines()[1]  # train_time in the table
    leaderboard = (run_dir / "leaderboard.md").read_text()
    assert f"origin: checkpoint vae.safetensors, sha256 {sha256(weights)}" in leaderboard


def test_the_file_hash_is_part_of_the_cell_key(tmp_path: Path) -> None:
    state = VAE(VAEConfig(epochs=1), DIGITS).state_dict()
    keys = []
    for name, tensors in [("a", state), ("b", {k: v + 1 for k, v in state.items()})]:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp_path / f"{name}.safetensors"))
        request = RunRequest(models=["vae"], epochs=1, checkpoints={"vae": tmp_path / f"{name}.safetensors"})
        run = prepare(request)
        keys.append(model_key(run, run.models[0], 0))
    assert keys[0] != keys[1]


def test_export_refuses_to_overwrite_and_lists_the_cells_of_an_unknown_one(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cell = only_record(trained)["cell_id"]
    out = tmp_path / "vae.safetensors"
    out.write_text("something the user made")
    code, _, err = genbench(capsys, "export", trained, "--cell", cell, "--out", out)
    assert code == 2 and "already exist" in err and "--force" in err
    assert out.read_text() == "something the user made"
    assert genbench(capsys, "export", trained, "--cell", cell, "--out", out, "--force")[0] == 0
    assert sha256(out) == sha256(next((trained / "checkpoints").glob("*.safetensors")))

    code, _, err = genbench(capsys, "export", trained, "--cell", "vae-nope", "--out", tmp_path / "x.safetensors")
    assert code == 2 and err.strip() == f"genbench: error: run {trained} has no cell 'vae-nope'; its cells: {cell}"
    assert not (tmp_path / "x.safetensors").exists()
    code, _, err = genbench(capsys, "export", trained, "--cell", f"../{trained.name}/cells/{cell}", "--out", out)
    assert code == 2 and "has no cell" in err  # a cell id is a name, never a path


def write_vae_weights(path: Path, **options: Any) -> None:
    save_file(VAE(VAEConfig(**options), DIGITS).state_dict(), str(path))


def refused_files(folder: Path) -> dict[str, tuple[list[str], str]]:
    """Each bad case: (arguments to genbench run, what its one line says)."""
    write_vae_weights(folder / "latent4.safetensors", latent_dim=4)
    torch.save(VAE(VAEConfig(), DIGITS).state_dict(), folder / "vae.pt")
    torch.save(VAE(VAEConfig(), DIGITS).state_dict(), folder / "pickle.safetensors")
    write_vae_weights(folder / "good.safetensors")
    sidecar = {"format": "genbench checkpoint", "model": "vae", "config": {"latent_dim": 16}}
    (folder / "good.json").write_text(json.dumps(sidecar))
    return {
        "wrong shape": (
            ["--models", "vae", "--checkpoint", "vae=latent4.safetensors"],
            "tensor 'encoder.5.weight' is [8, 256] in the file and [32, 256] in the model",
        ),
        "pickle by suffix": (["--models", "vae", "--checkpoint", "vae=vae.pt"], "safetensors.torch.save_file("),
        "pickle by content": (
            ["--models", "vae", "--checkpoint", "vae=pickle.safetensors"],
            "pickle.safetensors is not a safetensors file",
        ),
        "model not in the run": (
            ["--models", "independent", "--checkpoint", "vae=good.safetensors"],
            "'vae' is not a model of this run (independent)",
        ),
        "missing file": (["--models", "vae", "--checkpoint", "vae=none.safetensors"], "does not exist"),
        "malformed": (["--models", "vae", "--checkpoint", "good.safetensors"], "give NAME=PATH"),
        "twice": (
            ["--models", "vae", "--checkpoint", "vae=good.safetensors", "--checkpoint", "vae=latent4.safetensors"],
            "names 'vae' twice",
        ),
        "sidecar against the run's option": (
            ["--models", "vae", "--checkpoint", "vae=good.safetensors", "--config", "suite.toml"],
            "the run sets vae option latent_dim=4, but the weights were made with latent_dim=16",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "wrong shape",
        "pickle by suffix",
        "pickle by content",
        "model not in the run",
        "missing file",
        "malformed",
        "twice",
        "sidecar against the run's option",
    ],
)
def test_files_that_do_not_fit_are_one_line_exit_2_and_write_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suite.toml").write_text("[model.vae]\nlatent_dim = 4\n")
    args, message = refused_files(tmp_path)[case]
    before = set(tmp_path.iterdir())
    code, _, err = genbench(capsys, "run", *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genbench: error: ") and message in lines[0], err
    assert set(tmp_path.iterdir()) == before  # no results folder, nothing else


@pytest.mark.slow
def test_a_pickle_is_refused_by_the_real_command(tmp_path: Path) -> None:
    torch.save({"weight": torch.zeros(2)}, tmp_path / "model.ckpt")
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    result = subprocess.run(
        [sys.executable, "-m", "genbench.cli", "run", "--models", "vae", "--checkpoint", "vae=model.ckpt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "genbench: error: --checkpoint vae=model.ckpt is a pickle (.ckpt); genbench reads only safetensors: convert "
        'it once where you trust it: safetensors.torch.save_file(model.state_dict(), "x.safetensors")'
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]


def test_a_suite_file_names_checkpoints_under_model_tables(tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'models = ["vae"]\nsample_sets = { mygan = "gan.npz" }\n'
        '[model.vae]\ncheckpoint = "w/vae.safetensors"\nlatent_dim = 8\n'
    )
    request = RunRequest()
    apply_suite(request, read_suite(suite), suite)
    assert request.checkpoints == {"vae": Path("w/vae.safetensors")}
    assert request.model_options == {"vae": {"latent_dim": 8}}  # checkpoint is no config field
    assert request.sample_sets == {"mygan": Path("gan.npz")}
    assert request.run_name() == "digits-vae-checkpoint+mygan"


def test_without_a_sidecar_the_run_config_builds_the_model(tmp_path: Path) -> None:
    write_vae_weights(tmp_path / "w.safetensors", latent_dim=4)
    request = RunRequest(
        models=["vae"], model_options={"vae": {"latent_dim": 4}}, checkpoints={"vae": tmp_path / "w.safetensors"}
    )
    run = prepare(request)
    assert run.model_configs["vae"].latent_dim == 4
    assert run.origins["vae"].description["config_from"] == "the run"
    assert not (tmp_path / "results").exists()


def test_a_report_over_both_runs_keeps_trained_and_loaded_weights_apart(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "vae.safetensors"
    assert genbench(capsys, "export", trained, "--cell", only_record(trained)["cell_id"], "--out", weights)[0] == 0
    args = ["run", "--models", "vae", "--checkpoint", f"vae={weights}", "--metrics", "nll", "--results-dir", tmp_path]
    code, _, err = genbench(capsys, *args)
    assert code == 0 and f"vae seed 0: running (weights from {weights}, config from the sidecar vae.json)" in err
    leaderboard = build_leaderboard([trained, tmp_path / "digits-vae-checkpoint"])
    loaded = f"vae (from=vae.safetensors ({sha256(weights)[:8]}))"
    assert set(leaderboard.models("digits")) == {"vae (from=training)", loaded}


def test_a_model_that_cannot_be_built_stops_the_run_in_prepare(tmp_path: Path) -> None:
    """prepare builds every model once (to check it fits the data and to find those made elsewhere): a factory
    that crashes there is a one-line user error before anything is written, not a failure after training."""
    registry = load_plugins()

    def cannot_build(config: Any, info: DataInfo) -> Any:
        raise RuntimeError("cannot build")

    spec = dataclasses.replace(registry.get(MODEL, "independent"), name="broken", factory=cannot_build)
    registry.specs[MODEL.label]["broken"] = Registered(spec, registry.plugin_of(MODEL, "independent"))
    request = RunRequest(models=["independent", "broken"], metrics=["bpd"], results_dir=tmp_path)
    with pytest.raises(GenbenchError, match=r"model .broken. cannot be built.*cannot build"):
        prepare(request, registry)
    assert not any(tmp_path.iterdir())
