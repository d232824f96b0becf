"""nnInteractive_make_synthetic: write a generated nnU-Net raw dataset (the embedded default data)."""

from __future__ import annotations

import argparse
import sys

from nninteractive_train.cli.common import Parser, add_dataset_argument, add_processes_argument, run_command


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="nnInteractive_make_synthetic", description=__doc__)
    add_dataset_argument(p, "dataset to write; a name DatasetXXX_Name also sets --name")
    p.add_argument("--num-cases", type=int, default=8, help="number of cases (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files")
    p.add_argument("--name", default=None, help="dataset name suffix (default Synthetic)")
    p.add_argument("--shape", type=int, nargs=6, metavar=("Z0", "Z1", "Y0", "Y1", "X0", "X1"), default=None,
                   help="voxels per array axis, low and high (default 32 48 56 72 56 72: CPU-sized); "
                        "e.g. 200 240 200 240 200 240 for paper-sized 192^3 patches")
    add_processes_argument(p, 1, "cases written in parallel")
    return p


def id_and_name(ref: int | str, name: str | None, default: str = "Synthetic") -> tuple[int, str]:
    """(id, name) of a dataset to create from ``-d`` (an id, or ``DatasetXXX_Name``) and ``--name``."""
    from nninteractive_train.errors import UsageError

    if isinstance(ref, int):
        return ref, name or default
    dataset_id, own = int(ref[7:10]), ref[11:]
    if name is not None and name != own:
        raise UsageError(f"-d {ref} names the dataset {own!r} but --name says {name!r}", hint="give one of them")
    return dataset_id, own


def _run(args: argparse.Namespace) -> int:
    from nninteractive_train.data.synthetic import write_dataset
    from nninteractive_train.errors import UsageError
    from nninteractive_train.paths import require_env

    dataset_id, name = id_and_name(args.dataset_id, args.name)
    kwargs = {} if args.shape is None else {"shape_range": tuple(zip(args.shape[::2], args.shape[1::2]))}
    if any(lo < 1 or hi < lo for lo, hi in kwargs.get("shape_range", ())):
        raise UsageError(f"--shape needs 1 <= low <= high per axis, got {args.shape}")
    raw = require_env("nnUNet_raw")
    out = write_dataset(raw, dataset_id, args.num_cases, seed=args.seed, name=name,
                        num_processes=args.num_processes, **kwargs)
    print(f"wrote {args.num_cases} cases to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
