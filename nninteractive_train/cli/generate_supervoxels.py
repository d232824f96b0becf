"""nnInteractive_generate_supervoxels: up to 20 pseudo-label objects per preprocessed case, stored in
<preprocessed folder>/supervoxels/ (see nninteractive_train.data.supervoxels)."""

from __future__ import annotations

import argparse
import logging
import sys

from nninteractive_train.cli.common import Parser, add_dataset_argument, add_processes_argument, run_command


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="nnInteractive_generate_supervoxels", description=__doc__)
    add_dataset_argument(p, "nnU-Net dataset in nnUNet_preprocessed")
    p.add_argument("-p", "--plans", default=None,
                   help="plans identifier; default: the only preprocessed folder with .b2nd files")
    p.add_argument("-c", "--configuration", default=None, help="configuration name (with -p)")
    p.add_argument("--backend", choices=("slic", "felzenszwalb", "sam"), default="slic",
                   help="slic / felzenszwalb: offline, no weights (default slic); sam: SAM + SAM2 with local "
                        "checkpoints")
    add_processes_argument(p, 1, "worker processes")
    p.add_argument("--max-objects", type=int, default=20, help="SuperVoxels per case at most (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed for the patch-centre candidates")
    p.add_argument("--overwrite", action="store_true", help="regenerate cases that already have SuperVoxels")
    p.add_argument("--sam2-checkpoint", default=None, help="local SAM2 checkpoint (.pt) for --backend sam")
    p.add_argument("--sam2-config", default=None, help="SAM2 config name, e.g. configs/sam2.1/sam2.1_hiera_l.yaml")
    p.add_argument("--sam-checkpoint", default=None, help="optional local SAM v1 checkpoint for mask generation")
    p.add_argument("--sam-model-type", default="vit_h", help="SAM v1 model type (default vit_h)")
    p.add_argument("--device", default="cuda", help="torch device for --backend sam (default cuda)")
    p.add_argument("--sam-iou-thresh", type=float, default=0.92,
                   help="keep generated masks with predicted IoU >= this (default 0.92, the paper's; "
                        "negative values as --sam-iou-thresh=-1)")
    p.add_argument("--sam-prompt-slices", type=int, default=3,
                   help="axial slices per case on which masks are generated and propagated from (default 3)")
    p.add_argument("--sam-points-per-side", type=int, default=32,
                   help="mask generator point grid per side (default 32; the mask decoder runs once per point, "
                        "so lower it on CPU)")
    p.add_argument("--sam-stability-thresh", type=float, default=0.95,
                   help="mask generator stability filter (default 0.95, SAM's; <= 0 turns it off)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from nninteractive_train.data.paths import find_preprocessed_config
    from nninteractive_train.data.supervoxels import SamConfig, SupervoxelConfig, generate_supervoxels

    folder = find_preprocessed_config(args.dataset_id, args.plans, args.configuration)
    sam = SamConfig(sam2_checkpoint=args.sam2_checkpoint, sam2_config=args.sam2_config,
                    sam_checkpoint=args.sam_checkpoint, sam_model_type=args.sam_model_type, device=args.device,
                    pred_iou_thresh=args.sam_iou_thresh, prompt_slices=args.sam_prompt_slices,
                    points_per_side=args.sam_points_per_side,
                    stability_score_thresh=args.sam_stability_thresh)
    index = generate_supervoxels(folder, config=SupervoxelConfig(backend=args.backend, max_objects=args.max_objects),
                                 sam=sam, num_processes=args.num_processes, overwrite=args.overwrite,
                                 seed=args.seed, progress=not args.quiet)
    counts = list(index["counts"].values())
    print(f"SuperVoxels in {folder / 'supervoxels'}: {len(counts)} cases, "
          f"{sum(counts) / max(len(counts), 1):.2f} per case, {len(index['failed'])} failed")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
