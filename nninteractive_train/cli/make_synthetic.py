"""nnInteractive_make_synthetic: write a generated nnU-Net raw dataset (the embedded default data)."""

from __future__ import annotations

import argparse

from nninteractive_train.paths import require_env


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="nnInteractive_make_synthetic", description=__doc__)
    p.add_argument("-d", "--dataset-id", type=int, required=True, help="nnU-Net dataset id (e.g. 990)")
    p.add_argument("--num-cases", type=int, default=8, help="number of cases (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files")
    p.add_argument("--name", default="Synthetic", help="dataset name suffix (default Synthetic)")
    p.add_argument("--shape", type=int, nargs=6, metavar=("Z0", "Z1", "Y0", "Y1", "X0", "X1"), default=None,
                   help="voxels per array axis, low and high (default 32 48 56 72 56 72: CPU-sized); "
                        "e.g. 200 240 200 240 200 240 for paper-sized 192^3 patches")
    p.add_argument("-np", "--num-processes", type=int, default=1, help="cases written in parallel (default 1)")
    args = p.parse_args(argv)
    from nninteractive_train.data.synthetic import write_dataset

    raw = require_env("nnUNet_raw")
    kwargs = {} if args.shape is None else {"shape_range": tuple(zip(args.shape[::2], args.shape[1::2]))}
    if any(lo < 1 or hi < lo for lo, hi in kwargs.get("shape_range", ())):
        p.error(f"--shape needs 1 <= low <= high per axis, got {args.shape}")
    out = write_dataset(raw, args.dataset_id, args.num_cases, seed=args.seed, name=args.name,
                        num_processes=args.num_processes, **kwargs)
    print(f"wrote {args.num_cases} cases to {out}")


if __name__ == "__main__":
    main()
