"""nnInteractive_export: write a run as an nnInteractive model folder (napari, MITK, Slicer, ITK-SNAP)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="nnInteractive_export", description=__doc__)
    p.add_argument("run_dir", help="training run folder (--output of nnInteractive_train)")
    p.add_argument("out_dir", help="model folder to write (replaced atomically if it exists)")
    p.add_argument("--checkpoint", default="final", choices=["final", "best", "latest"])
    p.add_argument("--license", default=None, metavar="FILE",
                   help="licence of the weights, copied as LICENSE (default: the --pretrained folder's, if any)")
    args = p.parse_args(argv)
    from nninteractive_train.export import export_run
    from nninteractive_train.paths import SetupError

    try:
        out = export_run(args.run_dir, args.out_dir, args.checkpoint, args.license)
    except SetupError as e:
        print(f"nnInteractive_export: error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"exported {args.checkpoint} checkpoint of {args.run_dir} to {out}")
    if not (out / "LICENSE").is_file():
        print("nnInteractive_export: note: no licence given (--license FILE): viewers will show it as missing",
              file=sys.stderr)


if __name__ == "__main__":
    main()
