"""How a run was made, for run.json and the records: times, the device, package versions, the git revision."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    pass


#: Packages whose versions go into run.json, as far as they are installed.
RECORDED_PACKAGES = ("genbench", "torch", "torchvision", "torchmetrics", "numpy", "scipy", "pandas", "pluggy")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def plain_data(value: Any) -> Any:
    if value is None:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: plain_data(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: plain_data(v) for k, v in value.items()}
    return value


def device_description(device: torch.device) -> dict[str, Any]:
    description: dict[str, Any] = {"type": device.type, "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        description["name"] = torch.cuda.get_device_name(device)
        description["cuda"] = torch.version.cuda
    else:
        description["name"] = platform.processor() or platform.machine()
    return description


def package_versions() -> dict[str, str]:
    versions = {}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_revision() -> str | None:
    """The revision of the genbench source tree, with "-dirty" when it has uncommitted changes."""
    source = Path(__file__).resolve().parent
    try:
        revision = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return revision + ("-dirty" if dirty else "")
