"""The bad-input catalogue: every case is refused with exit 2, one line on stderr, no traceback, nothing written.

Each case runs ``genbench.cli.main`` in process (a subprocess costs seconds; a few cases also run in one below)
in a fresh folder holding only the files the case writes. docs/errors.md is made from this table and the
answers genbench gave: each case checks that its row there is exactly what it printed, so the catalogue
cannot drift from the code. After changing a case or a message, rewrite it:

    python tests/integration/test_bad_inputs.py --write-docs
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import genbench.store
from genbench.cli import main

TESTS = Path(__file__).resolve().parents[1]  # the helper plugin modules live there
DOCS = TESTS.parent / "docs" / "errors.md"


@dataclass(frozen=True)
class Link:
    """A symbolic link the case makes, pointing at ``target`` (relative to the case's folder)."""

    target: str


@dataclass(frozen=True)
class Case:
    id: str
    area: str
    #: What the user did, in words, for the catalogue.
    what: str
    argv: tuple[str, ...]
    #: The one error line must contain this.
    expect: str
    #: Files the case writes first, relative to its folder: text, bytes, a link, or None for an empty folder.
    files: dict[str, str | bytes | Link | None] = field(default_factory=dict)
    #: Packages that the case hides, as if they were not installed (an optional extra's library).
    missing: tuple[str, ...] = ()


def idx(kind: int, dims: tuple[int, ...], body: bytes) -> bytes:
    """An IDX file (LeCun's MNIST format): magic 0, 0, type 8 (uint8), rank; big-endian sizes; data."""
    return bytes([0, 0, 8, kind]) + struct.pack(f">{len(dims)}i", *dims) + body


def png(size: int = 4) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (size, size), 128).save(buffer, format="PNG")
    return buffer.getvalue()


IMAGES = idx(3, (10, 4, 4), bytes(160))
LABELS = idx(1, (10,), bytes(10))
INDEPENDENT = ("run", "--models", "independent")
SUITE = ("run", "--config", "suite.toml")
RUN = "results/r/run.json"


def suite(text: str) -> dict[str, str | bytes | Link | None]:
    return {"suite.toml": text}


def mnist(images: bytes = IMAGES, labels: bytes = LABELS, suffix: str = "") -> dict[str, str | bytes | Link | None]:
    return {f"mnist/t10k-images-idx3-ubyte{suffix}": images, f"mnist/t10k-labels-idx1-ubyte{suffix}": labels}


MNIST = (*INDEPENDENT, "--dataset", "mnist", "--data-root", "mnist")
AMAT = {f"bm/binarized_mnist_{split}.amat": " ".join(["0"] * 784) + "\n" for split in ("train", "valid", "test")}
FOLDER = (*INDEPENDENT, "--dataset", "folder", "--data-root", "images")
LINE = "command line"
SUITE_FILE = "suite file (--config)"
CONFIG = "model and metric options (suite file tables)"
DATA = "data files"
RUNS = "run folders (show, report)"
PLUGINS = "plugins"
FILES = "file system"

CASES = [
    # ------------------------------------------------------------------------------------------ command line
    Case("unknown-model", LINE, "a model that is not installed", ("run", "--models", "nope"), "unknown model 'nope'"),
    Case("model-typo", LINE, "a misspelt model", ("run", "--models", "independnet"), "Did you mean 'independent'?"),
    Case("models-empty-item", LINE, "an empty name in a list", ("run", "--models", "independent,,x"), "malformed"),
    Case("models-empty", LINE, "an empty list of models", ("run", "--models", ""), "malformed"),
    Case("models-space", LINE, "names separated by spaces", ("run", "--models", "vae gan"), "malformed"),
    Case("models-twice", LINE, "the same model twice", ("run", "--models", "vae,vae"), "vae more than once"),
    Case("metric-typo", LINE, "a misspelt metric", (*INDEPENDENT, "--metrics", "bdp"), "Did you mean 'bpd'?"),
    Case("metrics-twice", LINE, "the same metric twice", (*INDEPENDENT, "--metrics", "bpd,bpd"), "more than once"),
    Case("dataset-typo", LINE, "an unknown data set", (*INDEPENDENT, "--dataset", "mnistt"), "unknown data set"),
    Case("seeds-text", LINE, "a seed that is not a number", (*INDEPENDENT, "--seeds", "x"), "list of integers"),
    Case("seeds-float", LINE, "a fractional seed", (*INDEPENDENT, "--seeds", "1.5"), "list of integers"),
    Case("seeds-empty", LINE, "an empty list of seeds", (*INDEPENDENT, "--seeds", ""), "list of integers"),
    Case("seeds-twice", LINE, "the same seed twice", (*INDEPENDENT, "--seeds", "0,0"), "0 more than once"),
    Case("seed-negative", LINE, "a negative seed", (*INDEPENDENT, "--seeds=-1"), "out of range"),
    Case("seed-huge", LINE, "a seed beyond 32 bits", (*INDEPENDENT, "--seeds", "99999999999"), "out of range"),
    Case("seed-2-32", LINE, "the seed 2**32", (*INDEPENDENT, "--seeds", "4294967296"), "out of range"),
    Case("epochs-text", LINE, "epochs that are not a number", (*INDEPENDENT, "--epochs", "zero"), "--epochs"),
    Case("epochs-zero", LINE, "zero epochs", (*INDEPENDENT, "--epochs", "0"), "at least 1"),
    Case("device-unknown", LINE, "an unknown device", (*INDEPENDENT, "--device", "tpu"), "invalid choice"),
    Case("name-parent", LINE, "a run name that climbs out", (*INDEPENDENT, "--name", "../../x"), "not a run name"),
    Case("name-absolute", LINE, "an absolute run name", (*INDEPENDENT, "--name", "/tmp/x"), "not a run name"),
    Case("name-newline", LINE, "a run name with a newline", (*INDEPENDENT, "--name", "a\nb"), "not a run name"),
    Case("name-dot", LINE, "the run name '.'", (*INDEPENDENT, "--name", "."), "not a run name"),
    Case("name-dotdot", LINE, "the run name '..'", (*INDEPENDENT, "--name", ".."), "not a run name"),
    Case("name-hidden", LINE, "a run name starting with a dot", (*INDEPENDENT, "--name", ".cache"), "not a run name"),
    Case("name-long", LINE, "a run name of 300 letters", (*INDEPENDENT, "--name", "r" * 300), "not a run name"),
    Case(
        "plugin-option-nan",
        LINE,
        "a plugin's number option given as nan",
        (*INDEPENDENT, "-p", "fake_plugins", "--fake-scale", "nan"),
        "give a finite number",
    ),
    Case("log-typo", LINE, "a misspelt tracker", (*INDEPENDENT, "--log", "tensorbord"), "Did you mean 'tensorboard'?"),
    Case("log-space", LINE, "trackers separated by spaces", (*INDEPENDENT, "--log", "tensorboard mlflow"), "malformed"),
    Case("log-twice", LINE, "the same tracker twice", (*INDEPENDENT, "--log", "mlflow,mlflow"), "more than once"),
    Case(
        "log-tensorboard-missing",
        LINE,
        "--log tensorboard without the tensorboard package",
        (*INDEPENDENT, "--log", "tensorboard"),
        "pip install 'genbench[tensorboard]'",
        missing=("tensorboard",),
    ),
    Case(
        "log-mlflow-missing",
        LINE,
        "--log mlflow without the mlflow package",
        (*INDEPENDENT, "--log", "tensorboard,mlflow"),
        "pip install 'genbench[mlflow]'",
        missing=("mlflow",),
    ),
    Case("name-empty", LINE, "an empty run name", (*INDEPENDENT, "--name", ""), "not a run name"),
    Case("name-escape", LINE, "a terminal escape in a run name", (*INDEPENDENT, "--name", "\x1b[2Jx"), "\\x1b"),
    Case("unknown-flag", LINE, "a flag genbench does not have", (*INDEPENDENT, "--frobnicate"), "unrecognized"),
    Case("unknown-command", LINE, "a misspelt command", ("runn",), "invalid choice"),
    Case("executor-typo", LINE, "a misspelt executor", (*INDEPENDENT, "--executor", "lcoal"), "Did you mean 'local'?"),
    Case(
        "executor-option-alone",
        LINE,
        "an option of an executor that was not chosen",
        (*INDEPENDENT, "--jobs", "2"),
        "add --executor local",
    ),
    Case(
        "jobs-zero", LINE, "zero worker processes", (*INDEPENDENT, "--executor", "local", "--jobs", "0"), "at least 1"
    ),
    Case("retries-negative", LINE, "a negative number of retries", (*INDEPENDENT, "--retries=-1"), "--retries"),
    Case(
        "worker-storage-unknown", LINE, "an unknown worker storage", (*INDEPENDENT, "--worker-storage", "nfs"), "choice"
    ),
    Case(
        "cpus-per-cell-zero",
        LINE,
        "Ray tasks with no CPU",
        (*INDEPENDENT, "--executor", "ray", "--cpus-per-cell", "0"),
        "--cpus-per-cell must be more than 0",
    ),
    Case("config-missing", LINE, "a suite file that does not exist", SUITE, "does not exist"),
    Case("plugin-missing", LINE, "-p with a module that does not exist", ("run", "-p", "no_such_plugin"), "-p"),
    Case(
        "folder-no-root",
        DATA,
        "the folder data set without --data-root",
        (*INDEPENDENT, "--dataset", "folder"),
        "needs --data-root",
    ),
    Case(
        "data-root-missing",
        DATA,
        "a --data-root that does not exist",
        (*INDEPENDENT, "--dataset", "mnist", "--data-root", "nowhere"),
        "does not exist",
    ),
    # -------------------------------------------------------------------------------------------- suite file
    Case(
        "suite-not-utf8",
        SUITE_FILE,
        "a suite file in Latin-1",
        SUITE,
        "not UTF-8",
        {"suite.toml": "name = 'caf\xe9'\n".encode("latin-1")},
    ),
    Case("suite-not-toml", SUITE_FILE, "a suite file that is not TOML", SUITE, "not valid TOML", suite("models = [\n")),
    Case(
        "suite-is-folder", SUITE_FILE, "a folder given as the suite file", SUITE, "does not exist", {"suite.toml": None}
    ),
    Case(
        "suite-unknown", SUITE_FILE, "an unknown setting", SUITE, "unknown settings ['modles']", suite("modles = 1\n")
    ),
    Case(
        "suite-epochs-text",
        SUITE_FILE,
        "epochs as a string",
        SUITE,
        "epochs must be an integer",
        suite('epochs = "3"\n'),
    ),
    Case(
        "suite-epochs-bool",
        SUITE_FILE,
        "epochs as a boolean",
        SUITE,
        "epochs must be an integer",
        suite("epochs = true\n"),
    ),
    Case("suite-epochs-zero", SUITE_FILE, "zero epochs", SUITE, "at least 1", suite("epochs = 0\n")),
    Case(
        "suite-seeds-int",
        SUITE_FILE,
        "seeds as one number",
        SUITE,
        "seeds must be a list of integers",
        suite("seeds = 1\n"),
    ),
    Case("suite-seeds-twice", SUITE_FILE, "a seed twice", SUITE, "0 more than once", suite("seeds = [0, 0]\n")),
    Case("suite-seeds-float", SUITE_FILE, "a fractional seed", SUITE, "list of integers", suite("seeds = [1.5]\n")),
    Case("suite-seed-negative", SUITE_FILE, "a negative seed", SUITE, "out of range", suite("seeds = [-1]\n")),
    Case(
        "suite-seed-huge", SUITE_FILE, "a seed beyond 32 bits", SUITE, "out of range", suite("seeds = [4294967296]\n")
    ),
    Case(
        "suite-models-int",
        SUITE_FILE,
        "models as a number",
        SUITE,
        "models must be a list of strings",
        suite("models = 1\n"),
    ),
    Case(
        "suite-models-ints",
        SUITE_FILE,
        "a list of numbers as models",
        SUITE,
        "list of strings",
        suite("models = [1]\n"),
    ),
    Case("suite-log-int", SUITE_FILE, "trackers as a number", SUITE, "log must be a list", suite("log = 1\n")),
    Case(
        "suite-log-typo",
        SUITE_FILE,
        "a misspelt tracker",
        SUITE,
        "unknown tracker 'mlfow'",
        suite('models = ["independent"]\nlog = ["mlfow"]\n'),
    ),
    Case("suite-models-empty", SUITE_FILE, "an empty list of models", SUITE, "empty list", suite("models = []\n")),
    Case(
        "suite-models-path",
        SUITE_FILE,
        "a model name that is a path",
        SUITE,
        "is malformed",
        suite('models = ["../vae"]\n'),
    ),
    Case(
        "suite-models-twice",
        SUITE_FILE,
        "a model twice",
        SUITE,
        "vae more than once",
        suite('models = ["vae", "vae"]\n'),
    ),
    Case("suite-models-table", SUITE_FILE, "models as a table", SUITE, "list of strings", suite("[models]\nvae = 1\n")),
    Case("suite-name-int", SUITE_FILE, "a run name as a number", SUITE, "name must be a string", suite("name = 1\n")),
    Case("suite-name-path", SUITE_FILE, "a run name that is a path", SUITE, "not a run name", suite('name = "../x"\n')),
    Case(
        "suite-dataset-list",
        SUITE_FILE,
        "a list as the data set",
        SUITE,
        "dataset must be a string",
        suite('dataset = ["digits"]\n'),
    ),
    Case(
        "suite-binarize-text",
        SUITE_FILE,
        'binarize = "false" (a string, not a boolean)',
        SUITE,
        "binarize must be true or false",
        suite('binarize = "false"\n'),
    ),
    Case(
        "suite-download-int",
        SUITE_FILE,
        "download as a number",
        SUITE,
        "must be true or false",
        suite("download = 1\n"),
    ),
    Case("suite-device-int", SUITE_FILE, "device as a number", SUITE, "device must be a string", suite("device = 3\n")),
    Case(
        "suite-device-unknown",
        SUITE_FILE,
        "an unknown device",
        SUITE,
        "not one of auto, cpu, cuda",
        suite('models = ["independent"]\ndevice = "tpu"\n'),
    ),
    Case(
        "suite-results-dir-int",
        SUITE_FILE,
        "results_dir as a number",
        SUITE,
        "results_dir must be a path",
        suite("results_dir = 5\n"),
    ),
    Case(
        "suite-data-root-list",
        SUITE_FILE,
        "data_root as a list",
        SUITE,
        "data_root must be a path",
        suite("data_root = []\n"),
    ),
    Case(
        "suite-plugins-missing",
        SUITE_FILE,
        "a plugin module that does not exist",
        SUITE,
        "cannot import",
        suite('models = ["independent"]\nplugins = ["no_such_plugin"]\n'),
    ),
    Case(
        "suite-model-not-table",
        SUITE_FILE,
        "[model] options that are not tables",
        SUITE,
        "must be tables",
        suite("[model]\nvae = 3\n"),
    ),
    # -------------------------------------------------------------------------------- model and metric options
    Case(
        "pseudocount-negative",
        CONFIG,
        "a negative pseudocount",
        SUITE,
        "pseudocount must be greater than 0",
        suite('models = ["independent"]\n[model.independent]\npseudocount = -1\n'),
    ),
    Case(
        "pseudocount-zero",
        CONFIG,
        "a zero pseudocount",
        SUITE,
        "pseudocount must be greater than 0",
        suite('models = ["independent"]\n[model.independent]\npseudocount = 0\n'),
    ),
    Case(
        "pseudocount-text",
        CONFIG,
        "a number given as a string",
        SUITE,
        "must be a finite number",
        suite('models = ["independent"]\n[model.independent]\npseudocount = "1"\n'),
    ),
    Case(
        "pseudocount-nan",
        CONFIG,
        "nan as a number",
        SUITE,
        "must be a finite number",
        suite('models = ["independent"]\n[model.independent]\npseudocount = nan\n'),
    ),
    Case(
        "pseudocount-inf",
        CONFIG,
        "inf as a number",
        SUITE,
        "must be a finite number",
        suite('models = ["independent"]\n[model.independent]\npseudocount = inf\n'),
    ),
    Case(
        "option-unknown",
        CONFIG,
        "an option the model does not have",
        SUITE,
        "has no option 'colour'",
        suite('models = ["independent"]\n[model.independent]\ncolour = 1\n'),
    ),
    Case(
        "vae-epochs-float",
        CONFIG,
        "a fractional number of epochs",
        SUITE,
        "'epochs' must be an integer",
        suite('models = ["vae"]\n[model.vae]\nepochs = 1.5\n'),
    ),
    Case(
        "vae-lr-zero",
        CONFIG,
        "a zero learning rate",
        SUITE,
        "lr must be greater than 0",
        suite('models = ["vae"]\n[model.vae]\nlr = 0\n'),
    ),
    Case(
        "gan-lr-negative",
        CONFIG,
        "a negative learning rate",
        SUITE,
        "lr_d must be at least 0",
        suite('models = ["gan"]\n[model.gan]\nlr_d = -0.001\n'),
    ),
    Case(
        "vae-batch-zero",
        CONFIG,
        "a zero batch size",
        SUITE,
        "batch_size must be at least 1",
        suite('models = ["vae"]\n[model.vae]\nbatch_size = 0\n'),
    ),
    Case(
        "gan-loss-typo",
        CONFIG,
        "a misspelt GAN loss",
        SUITE,
        "one of 'non_saturating', 'hinge'",
        suite('models = ["gan"]\n[model.gan]\nloss = "hingee"\n'),
    ),
    Case(
        "gan-beta1",
        CONFIG,
        "Adam's beta1 of 1",
        SUITE,
        "beta1 must be in [0, 1)",
        suite('models = ["gan"]\n[model.gan]\nbeta1 = 1.0\n'),
    ),
    Case(
        "pixelcnn-block",
        CONFIG,
        "an unknown PixelCNN block",
        SUITE,
        "one of 'gated', 'residual'",
        suite('models = ["pixelcnn"]\n[model.pixelcnn]\nblock = "dense"\n'),
    ),
    Case(
        "pixelcnn-layers-bool",
        CONFIG,
        "layers as a boolean",
        SUITE,
        "'layers' must be an integer",
        suite('models = ["pixelcnn"]\n[model.pixelcnn]\nlayers = true\n'),
    ),
    Case(
        "nll-k-zero",
        CONFIG,
        "nll with k = 0 (found before training)",
        SUITE,
        "k must be at least 1",
        suite('models = ["independent"]\nmetrics = ["nll"]\n[metric.nll]\nk = 0\n'),
    ),
    Case(
        "nll-k-bool",
        CONFIG,
        "nll with k = true",
        SUITE,
        "'k' must be an integer",
        suite('models = ["independent"]\nmetrics = ["nll"]\n[metric.nll]\nk = true\n'),
    ),
    Case(
        "kid-subset",
        CONFIG,
        "kid with subsets of one image",
        SUITE,
        "subset_size must be at least 2",
        suite('models = ["independent"]\nmetrics = ["kid"]\n[metric.kid]\nsubset_size = 1\n'),
    ),
    Case(
        "fid-samples",
        CONFIG,
        "fid of one generated image",
        SUITE,
        "n_samples must be at least 2",
        suite('models = ["independent"]\nmetrics = ["fid"]\n[metric.fid]\nn_samples = 1\n'),
    ),
    Case(
        "sample-time-repeats",
        CONFIG,
        "sample_time with no timed batch",
        SUITE,
        "repeats must be at least 1",
        suite('models = ["independent"]\nmetrics = ["sample_time"]\n[metric.sample_time]\nrepeats = 0\n'),
    ),
    # ------------------------------------------------------------------------------------------------- data
    Case("folder-empty", DATA, "a folder data set with no images", FOLDER, "found 0 PNG/JPEG images", {"images": None}),
    Case(
        "folder-garbage-png",
        DATA,
        "a file of random bytes named .png",
        FOLDER,
        "cannot read image images/a.png",
        {"images/a.png": b"\x89PNX garbage" * 8, "images/b.png": png()},
    ),
    Case(
        "folder-truncated-png",
        DATA,
        "a PNG cut short",
        FOLDER,
        "cannot read image images/a.png",
        {"images/a.png": png(64)[:60], "images/b.png": png(64)},
    ),
    Case("mnist-missing", DATA, "a --data-root without MNIST's files", MNIST, "no MNIST IDX files", {"mnist": None}),
    Case(
        "mnist-truncated",
        DATA,
        "an MNIST images file cut short",
        MNIST,
        "t10k-images-idx3-ubyte is truncated",
        mnist(images=IMAGES[:-7]),
    ),
    Case(
        "mnist-count-mismatch",
        DATA,
        "9 labels for 10 images",
        MNIST,
        "has 9 labels but",
        mnist(labels=idx(1, (9,), bytes(9))),
    ),
    Case(
        "mnist-bad-magic",
        DATA,
        "an images file that is not IDX",
        MNIST,
        "not an IDX file",
        mnist(images=b"<html>404</html>"),
    ),
    Case(
        "mnist-short-header",
        DATA,
        "an IDX header cut inside its sizes",
        MNIST,
        "damaged header",
        mnist(images=IMAGES[:9]),
    ),
    Case("mnist-wrong-rank", DATA, "a labels file with images' rank", MNIST, "damaged header", mnist(labels=IMAGES)),
    Case("mnist-bad-gzip", DATA, "a .gz file that is not gzip", MNIST, "cannot read", mnist(b"x", b"y", ".gz")),
    Case(
        "mnist-cut-gzip",
        DATA,
        "a gzip file cut short",
        MNIST,
        "cannot read",
        mnist(gzip.compress(IMAGES)[:20], gzip.compress(LABELS), ".gz"),
    ),
    Case(
        "suite-incomplete-data",
        DATA,
        "a suite on data files with fewer images than published (a stand-in, a truncated copy)",
        ("run", "--suite", "binarized-mnist", "--data-root", "bm", "--models", "independent"),
        "pass --allow-incomplete-data to run anyway",
        AMAT,
    ),
    Case(
        "suite-missing-split",
        DATA,
        "a suite that needs both MNIST splits, given only the test files",
        ("run", "--suite", "binarized-mnist-dynamic", "--data-root", "mnist"),
        "needs both MNIST splits",
        mnist(),
    ),
    # ------------------------------------------------------------------------------------------- run folders
    Case("show-missing", RUNS, "show of a folder that does not exist", ("show", "results/none"), "does not exist"),
    Case(
        "show-not-run",
        RUNS,
        "show of a folder with no run.json",
        ("show", "results/r"),
        "has no run.json",
        {"results/r": None},
    ),
    Case(
        "show-run-garbage",
        RUNS,
        "show of a run.json that is not JSON",
        ("show", "results/r"),
        "is damaged",
        {RUN: "{garbage"},
    ),
    Case("show-run-list", RUNS, "show of a run.json that is a list", ("show", "results/r"), "is damaged", {RUN: "[]"}),
    Case(
        "show-run-cells",
        RUNS,
        "show of a run.json whose cells are not a list",
        ("show", "results/r"),
        "is damaged",
        {RUN: '{"cells": "x"}'},
    ),
    Case(
        "show-run-not-utf8",
        RUNS,
        "show of a run.json that is not UTF-8",
        ("show", "results/r"),
        "is damaged",
        {RUN: b'{"cells": ["\xff"]}'},
    ),
    Case(
        "show-run-link",
        RUNS,
        "show of a run.json that links outside the run",
        ("show", "results/r"),
        "link to a file outside",
        {"elsewhere.json": '{"cells": []}', RUN: Link("../../elsewhere.json")},
    ),
    Case(
        "show-run-device",
        RUNS,
        "show of a run.json whose device is a string",
        ("show", "results/r"),
        "device must be a table",
        {RUN: '{"cells": [], "device": "cpu"}'},
    ),
    Case(
        "report-run-column-spec",
        RUNS,
        "report of a run.json whose column says higher_is_better = 'no'",
        ("report", "results/r"),
        "field 'higher_is_better' must be true or false",
        {RUN: '{"cells": [], "column_specs": {"bpd": {"name": "bpd", "unit": "b", "higher_is_better": "no"}}}'},
    ),
    Case("report-missing", RUNS, "report of a path that does not exist", ("report", "results/none"), "does not exist"),
    Case(
        "report-no-runs",
        RUNS,
        "report of a folder holding no runs",
        ("report", "results"),
        "holds no run",
        {"results/x": None},
    ),
    Case(
        "report-run-garbage",
        RUNS,
        "report of a run.json that is not JSON",
        ("report", "results/r"),
        "is damaged",
        {RUN: "{garbage"},
    ),
    # ---------------------------------------------------------------------------------------------- plugins
    Case(
        "plugins-check-unknown",
        PLUGINS,
        "conformance checks of a name no plugin provides",
        ("plugins", "check", "pixelcn"),
        "Did you mean 'pixelcnn'?",
    ),
    Case(
        "plugins-check-option",
        PLUGINS,
        "a conformance-check option without a value",
        ("plugins", "check", "independent", "--option", "pseudocount"),
        "write KEY=VALUE",
    ),
    Case(
        "plugin-column-clash",
        PLUGINS,
        "a run of every metric, where a plugin's metric declares the built-in column bpd",
        ("run", "-p", "bad_plugins.column_clash"),
        "rename the column in one of the plugins, or choose one metric with --metrics",
    ),
    Case(
        "plugin-spec-not-list",
        PLUGINS,
        "a hook returning a ModelSpec where a list is due",
        ("run", "-p", "bad_plugins.spec_not_list", "--models", "lone"),
        "must return a list of ModelSpec",
    ),
    Case(
        "plugin-list-of-strings",
        PLUGINS,
        "a hook returning a list of strings",
        ("run", "-p", "bad_plugins.list_of_strings", "--models", "stringly"),
        "must return ModelSpec objects",
    ),
    Case(
        "plugin-bad-field",
        PLUGINS,
        "a column whose higher_is_better is the string 'yes'",
        (*INDEPENDENT, "-p", "bad_plugins.bad_field", "--metrics", "sharpness"),
        "field 'higher_is_better' must be true or false",
    ),
    Case(
        "plugin-reserved-column",
        PLUGINS,
        "a metric declaring the core's column seed",
        (*INDEPENDENT, "-p", "bad_plugins.reserved_column", "--metrics", "seedy"),
        "reserved for the core",
    ),
    Case(
        "plugin-unresolvable-config",
        PLUGINS,
        "a model config whose annotations name a type only type checkers see",
        ("run", "-p", "bad_plugins.unresolvable_config", "--models", "ghost"),
        "cannot be resolved",
    ),
    # ------------------------------------------------------------------------------------------- file system
    Case(
        "results-dir-file",
        FILES,
        "--results-dir that is a file",
        (*INDEPENDENT, "--results-dir", "taken"),
        "taken is a file",
        {"taken": "x"},
    ),
    Case(
        "results-dir-under-file",
        FILES,
        "--results-dir inside a file",
        (*INDEPENDENT, "--results-dir", "taken/results"),
        "taken is a file",
        {"taken": "x"},
    ),
    Case(
        "run-folder-file",
        FILES,
        "a file where the run's folder goes",
        (*INDEPENDENT, "--name", "r"),
        "results/r is a file",
        {"results/r": "x"},
    ),
    Case(
        "report-out-file",
        FILES,
        "report --out that is a file",
        ("report", "results/r", "--out", "taken"),
        "taken is a file",
        {"taken": "x", RUN: '{"cells": []}'},
    ),
]


def make_files(root: Path, files: dict[str, str | bytes | Link | None]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(exist_ok=True)
        elif isinstance(content, Link):
            path.symlink_to(content.target)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``root``, with file contents: what 'nothing written' compares."""
    return {
        str(path.relative_to(root)): (path.read_bytes() if path.is_file() and not path.is_symlink() else None)
        for path in sorted(root.rglob("*"))
    }


def run_case(case: Case, folder: Path) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``genbench ARGV`` run in ``folder``."""
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.chdir(folder),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        pytest.MonkeyPatch.context() as patch,
    ):
        for package in case.missing:
            patch.setitem(sys.modules, package, None)  # what importlib finds for a package that is not installed
        code = main(list(case.argv))
    return code, out.getvalue(), err.getvalue()


def shown_argv(case: Case) -> str:
    return " ".join(["genbench", *(_quoted(arg) for arg in case.argv)])


def _quoted(arg: str) -> str:
    if arg and all(c.isalnum() or c in "-_./,=" for c in arg):
        return arg
    return repr(arg)


def catalogue_row(case: Case, answer: str) -> str:
    cells = [f"`{case.id}`", _cell(case.what), _code(shown_argv(case)), _code(answer)]
    if case.files:
        cells[2] += " with " + ", ".join(_code(name) for name in case.files)
    if case.missing:
        cells[2] += ", " + " and ".join(f"{_code(name)} not installed" for name in case.missing)
    return "| " + " | ".join(cells) + " |"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    text = text.encode("unicode_escape").decode("ascii").replace("|", "\\|")
    return f"`` {text} ``"


def render_catalogue(answers: dict[str, str]) -> str:
    lines = [
        "# Bad inputs and genbench's answers",
        "",
        f"{len(CASES)} mistakes a user (or a damaged file) can make, and the one line genbench answers each with.",
        "Every one exits with code 2, prints exactly this line on stderr (no traceback; `--debug` shows one) and",
        "writes nothing. Each row is a case of `tests/integration/test_bad_inputs.py`, which checks all of that and",
        "that the row below is exactly what genbench printed; `python tests/integration/test_bad_inputs.py",
        "--write-docs` rewrites this page. Each case runs in an empty folder holding only the files named in its row.",
    ]
    for area, cases in by_area().items():
        lines += ["", f"## {area[0].upper()}{area[1:]}", "", "| case | input | command | answer |", "|---|---|---|---|"]
        lines += [catalogue_row(case, answers[case.id]) for case in cases]
    return "\n".join(lines) + "\n"


def by_area() -> dict[str, list[Case]]:
    """The cases in the catalogue's order: one section per area, in the order areas first appear."""
    areas: dict[str, list[Case]] = {}
    for case in CASES:
        areas.setdefault(case.area, []).append(case)
    return areas


# ----------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case: Case, tmp_path: Path) -> None:
    make_files(tmp_path, case.files)
    before = snapshot(tmp_path)
    code, _, stderr = run_case(case, tmp_path)
    lines = stderr.splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("genbench: error: "), stderr
    assert case.expect in lines[0]
    assert "Traceback" not in stderr
    assert snapshot(tmp_path) == before
    assert catalogue_row(case, lines[0]) in DOCS.read_text(encoding="utf-8").splitlines(), (
        "docs/errors.md disagrees with this case; rewrite it: python tests/integration/test_bad_inputs.py --write-docs"
    )


def test_catalogue_lists_exactly_the_cases() -> None:
    text = DOCS.read_text(encoding="utf-8")
    listed = [line.split("`")[1] for line in text.splitlines() if line.startswith("| `")]
    assert listed == [case.id for cases in by_area().values() for case in cases]
    assert len({case.id for case in CASES}) == len(CASES) >= 60


@pytest.mark.slow
def test_a_few_cases_in_a_real_process(tmp_path: Path) -> None:
    """The in-process runs above stand for the command: check that the real one answers the same."""
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    for case_id in ("name-parent",):
        case = next(case for case in CASES if case.id == case_id)
        folder = tmp_path / case_id
        folder.mkdir()
        make_files(folder, case.files)
        result = subprocess.run(
            [sys.executable, "-m", "genbench.cli", *case.argv], cwd=folder, capture_output=True, text=True, env=env
        )
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
        assert case.expect in result.stderr
        assert not (folder / "results").exists()


def test_disk_full_names_the_file_and_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(genbench.toolkit.files, "_write_text", full)
    case = Case("disk-full", FILES, "", (*INDEPENDENT, "--metrics", "bpd", "--name", "r"), "")
    code, _, stderr = run_case(case, tmp_path)
    assert code == 2
    assert stderr.splitlines() == [f"genbench: error: cannot write results/r/run.json: {os.strerror(errno.ENOSPC)}"]
    assert not list((tmp_path / "results" / "r").glob(".*.tmp"))


def test_read_only_results_dir_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root writes anywhere: make os.access answer as it would for a user
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode: Path(path).resolve() != locked and real_access(path, mode))
    case = Case("read-only", FILES, "", (*INDEPENDENT, "--results-dir", "locked/results"), "")
    code, _, stderr = run_case(case, tmp_path)
    assert code == 2
    assert stderr.splitlines() == [
        "genbench: error: --results-dir locked/results: locked is not writable; give a folder you may write in"
    ]
    assert list(locked.iterdir()) == []


def write_docs() -> None:
    import tempfile

    sys.path.insert(0, str(TESTS))
    answers = {}
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            make_files(Path(folder), case.files)
            code, _, stderr = run_case(case, Path(folder))
        lines = stderr.splitlines()
        if code != 2 or len(lines) != 1 or case.expect not in lines[0]:
            raise SystemExit(f"case {case.id} answered {code} {stderr!r}")
        answers[case.id] = lines[0]
    DOCS.write_text(render_catalogue(answers), encoding="utf-8")
    print(f"wrote {DOCS}: {len(CASES)} cases")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-docs"]:
        raise SystemExit(__doc__)
    write_docs()
