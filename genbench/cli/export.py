"""``genbench export``: write a trained cell's weights as safetensors and a JSON sidecar."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from genbench.cli.common import EXIT_OK, Subcommands
from genbench.registry import Registry
from genbench.runner.checkpoints import export_cell


def add_parser(commands: Subcommands, registry: Registry | None) -> argparse.ArgumentParser:
    export = commands.add_parser("export", help="write a trained cell's weights as safetensors + a JSON sidecar")
    export.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory (results/<run>)")
    export.add_argument("--cell", required=True, metavar="ID", help="the cell id (its file name under cells/)")
    export.add_argument(
        "--out", required=True, type=Path, metavar="PATH", help="where to write, ending in .safetensors"
    )
    export.add_argument("--force", action="store_true", help="overwrite --out and its sidecar if they exist")
    export.set_defaults(handler=command_export)
    return export


def command_export(args: argparse.Namespace, argv: Sequence[str], registry: Registry) -> int:
    weights, sidecar = export_cell(args.run_dir, args.cell, args.out, force=args.force)
    print(f"wrote {weights} and {sidecar}")
    return EXIT_OK
