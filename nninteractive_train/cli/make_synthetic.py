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
    args = p.parse_args(argv)
    from nninteractive_train.data.synthetic import write_dataset

    raw = require_env("nnUNet_raw")
    out = write_dataset(raw, args.dataset_id, args.num_cases, seed=args.seed, name=args.name)
    print(f"wrote {args.num_cases} cases to {out}")


if __name__ == "__main__":
    main()
