"""nnInteractive_export: write a run as an nnInteractive model folder (napari, MITK, Slicer, ITK-SNAP).

    nnInteractive_export RUN_DIR OUT_DIR
    nnInteractive_export -d 990 [-c CONFIGURATION] [-p PLANS] [-f FOLD] OUT_DIR

The second form finds the run in nnU-Net's results tree
($nnUNet_results/DatasetXXX_Name/nnInteractiveTrainer__<plans>__<configuration>/fold_<fold>)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nninteractive_train.cli.common import Parser, add_dataset_argument, run_command


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """``-d`` / ``-c`` / ``-p`` / ``-f``: which run of nnU-Net's results tree (export and evaluate)."""
    p.add_argument("-c", "--configuration", default=None,
                   help="the run's configuration (model.configuration), when the dataset has runs of several")
    p.add_argument("-p", "--plans", default=None, help="the run's plans identifier, when it has several")
    p.add_argument("-f", "--fold", default=None, help="the run's fold (training.fold, e.g. all or 0)")


def locate_run(dataset, configuration, plans, fold) -> Path:
    """The run folder of nnU-Net's results tree that ``-d`` / ``-c`` / ``-p`` / ``-f`` name."""
    from nninteractive_train.layout import find_run_dir

    return find_run_dir(dataset, configuration, plans, fold)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="nnInteractive_export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
               usage="%(prog)s [RUN_DIR | -d ID_OR_NAME [-c C] [-p P] [-f F]] OUT_DIR [options]")
    p.add_argument("folders", nargs="+", metavar="RUN_DIR OUT_DIR",
                   help="training run folder (omit it with -d) and the model folder to write (replaced atomically "
                        "if it exists)")
    add_dataset_argument(p, "find the run of this dataset in $nnUNet_results instead of giving RUN_DIR",
                         required=False)
    add_run_arguments(p)
    p.add_argument("--checkpoint", default="final", choices=["final", "best", "latest"])
    p.add_argument("--license", default=None, metavar="FILE",
                   help="licence of the weights, copied as LICENSE (default: the --pretrained folder's, if any)")
    return p


def _run(args: argparse.Namespace) -> int:
    from nninteractive_train.errors import UsageError
    from nninteractive_train.export import export_run

    if args.dataset_id is None:
        if len(args.folders) != 2:
            raise UsageError("give RUN_DIR and OUT_DIR, or -d DATASET and OUT_DIR", hint="see nnInteractive_export --help")
        run_dir, out_dir = args.folders
    else:
        if len(args.folders) != 1:
            raise UsageError("with -d give only OUT_DIR (the run is found in $nnUNet_results)",
                             hint="see nnInteractive_export --help")
        run_dir, out_dir = locate_run(args.dataset_id, args.configuration, args.plans, args.fold), args.folders[0]
    out = export_run(run_dir, out_dir, args.checkpoint, args.license)
    print(f"exported {args.checkpoint} checkpoint of {run_dir} to {out}")
    if not (out / "LICENSE").is_file():
        print("nnInteractive_export: note: no licence given (--license FILE): viewers will show it as missing",
              file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
