"""``genbench stats``: write FID reference statistics (mu, sigma) of a data set's split."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from genbench.cli.common import EXIT_OK, Subcommands, add_plugin_options
from genbench.contract.request import DEVICES
from genbench.registry import Registry


def add_parser(commands: Subcommands, registry: Registry | None) -> argparse.ArgumentParser:
    stats = commands.add_parser(
        "stats", help="write FID reference statistics (mu, sigma) of a data set's split in pytorch-fid's .npz layout"
    )
    stats.add_argument("--dataset", required=True, help="data set name, e.g. cifar10")
    stats.add_argument("--split", choices=("train", "test"), default="train", help="which split (default: train)")
    stats.add_argument("--out", type=Path, required=True, help="the .npz file to write (never overwritten)")
    stats.add_argument("--extractor", help="feature extractor (default: fid's: classifier if labelled, else inception)")
    stats.add_argument("--data-root", type=Path, help="folder holding the data set's files")
    stats.add_argument("--download", action="store_true", help="download the data set if missing")
    stats.add_argument("--binarize", action="store_true", help="use the 2-level version of the data")
    stats.add_argument("--device", choices=DEVICES, default="auto", help="where to extract features (default: auto)")
    stats.add_argument("--results-dir", type=Path, default=Path("results"), help="its .cache holds the features")
    stats.add_argument("-p", dest="plugins", action="append", default=[], metavar="MODULE", help="load a plugin module")
    stats.set_defaults(handler=command_stats, stats_plugin_dests=add_plugin_options(stats, registry))
    return stats


def command_stats(args: argparse.Namespace, argv: Sequence[str], registry: Registry) -> int:
    from genbench.runner.statistics import StatsRequest, write_stats

    options = {dest: getattr(args, dest) for dest in args.stats_plugin_dests if getattr(args, dest) is not None}
    request = StatsRequest(
        dataset=args.dataset,
        split=args.split,
        out=args.out,
        extractor=args.extractor,
        data_root=args.data_root,
        download=args.download,
        binarize=args.binarize,
        device=args.device,
        results_dir=args.results_dir,
        plugin_options=options,
    )
    meta = write_stats(request, registry)
    extractor = meta["extractor"]["name"]
    print(f"wrote {args.out}: mu, sigma of {meta['count']} {meta['dataset']} {meta['split']} images ({extractor})")
    return EXIT_OK
