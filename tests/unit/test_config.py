"""Resolving what the user asked for: lists, seeds, suite files, typed options, stable hashes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from genbench import GenbenchError
from genbench.cli import build_parser, request_from_args
from genbench.config import apply_suite, parse_names, parse_seeds, read_suite, resolve_config
from genbench.contract.request import RunRequest
from genbench.runner.identity import checkpoint_key
from genbench.toolkit.files import stable_hash


@dataclass
class ToyConfig:
    width: int = 8
    rate: float = 1e-3
    loss: str = "bce"
    epochs: int = 5


def test_names_and_seeds() -> None:
    assert parse_names("vae, gan", "--models") == ["vae", "gan"]
    assert parse_seeds("2,0") == [2, 0]
    with pytest.raises(GenbenchError, match="--models gives vae more than once"):
        parse_names("vae, gan,vae", "--models")
    with pytest.raises(GenbenchError, match="--seeds gives 2 more than once"):
        parse_seeds("2,0,2")
    assert parse_seeds(str(2**32 - 1)) == [2**32 - 1]
    with pytest.raises(GenbenchError, match=r"seed 4294967296 is out of range; seeds must be in \[0, 2\*\*32\)"):
        parse_seeds(str(2**32))
    for bad in ("", ",", "vae,,gan", "vae gan", "a;b"):
        with pytest.raises(GenbenchError, match="malformed"):
            parse_names(bad, "--models")
    for bad in ("x", "1.5", "-1", ""):
        with pytest.raises(GenbenchError, match="--seeds"):
            parse_seeds(bad)


def test_options_are_checked_against_the_config_fields() -> None:
    config = resolve_config(ToyConfig, {"width": 4, "rate": 1}, "model 'toy'", epochs=2)
    assert config == ToyConfig(width=4, rate=1.0, epochs=2)
    with pytest.raises(GenbenchError, match="model 'toy' has no option 'depth'; its options: width, rate, loss"):
        resolve_config(ToyConfig, {"depth": 3}, "model 'toy'")
    with pytest.raises(GenbenchError, match="option 'width' must be an integer, got 'wide'"):
        resolve_config(ToyConfig, {"width": "wide"}, "model 'toy'")
    with pytest.raises(GenbenchError, match="option 'width' must be an integer, got True"):
        resolve_config(ToyConfig, {"width": True}, "model 'toy'")
    with pytest.raises(GenbenchError, match="option 'rate' must be a finite number, got False"):
        resolve_config(ToyConfig, {"rate": False}, "model 'toy'")


def test_suite_file_then_command_line(tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text('models = ["independent"]\nseeds = [0, 1]\nepochs = 3\n[model.independent]\npseudocount = 0.5\n')
    args = build_parser()[0].parse_args(["run", "--config", str(suite), "--seeds", "7"])
    request = request_from_args(args)
    assert request.models == ["independent"] and request.seeds == [7] and request.epochs == 3
    assert request.model_options == {"independent": {"pseudocount": 0.5}}


def test_bad_suite_files_are_explained(tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text("modles = ['vae']\n")
    with pytest.raises(GenbenchError, match=r"unknown settings \['modles'\]"):
        read_suite(suite)
    suite.write_text("models = [\n")
    with pytest.raises(GenbenchError, match="is not valid TOML"):
        read_suite(suite)
    with pytest.raises(GenbenchError, match=r"\[model.NAME\] must be tables"):
        apply_suite(RunRequest(), {"model": {"vae": 3}}, suite)


def test_hashes_are_stable_and_sensitive() -> None:
    data = {"dataset": "digits", "fingerprint": "abc", "levels": 17, "shape": [1, 8, 8], "split": "s"}
    code = {"genbench": "0.1.0", "model": {"plugin": "toy", "source": "0123"}}
    key = checkpoint_key("toy", ToyConfig(), data, 0, code=code)
    assert key == checkpoint_key("toy", ToyConfig(), dict(reversed(data.items())), 0, code=code)
    assert key != checkpoint_key("toy", ToyConfig(width=9), data, 0, code=code)
    assert key != checkpoint_key("toy", ToyConfig(), {**data, "fingerprint": "abd"}, 0, code=code)
    assert key != checkpoint_key("toy", ToyConfig(), data, 1, code=code)
    assert key != checkpoint_key("toy", ToyConfig(), data, 0, code={**code, "genbench": "0.2.0"})
    assert key != checkpoint_key("toy", ToyConfig(), data, 0, code={**code, "model": {"plugin": "toy", "source": "4"}})
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})


def test_default_run_name_resumes_the_same_request() -> None:
    assert RunRequest(models=["vae", "gan"]).run_name() == "digits-vae+gan"
    assert RunRequest(models=["vae"], binarize=True, dataset="mnist").run_name() == "mnist-binarized-vae"
    assert RunRequest(name="mine").run_name() == "mine"
