"""Run the SAM + SAM2 SuperVoxel backend end to end on a generated volume with random-weight checkpoints.

Needs ``sam2`` (1.1.0), ``segment_anything`` (1.0) and a torchvision that imports against the installed torch; the
project's CPU venv cannot have them, so use a separate venv (torch + torchvision, ``sam2``, ``segment-anything``,
``hydra-core``, ``iopath``, this package and its dependencies). Nothing is downloaded: the models are built from
the packages' configs with random weights and saved as local checkpoints, which the backend then loads.

Variants: mask generation by SAM2 or by SAM v1 (vit_b), each at a lowered threshold (predicted-IoU and stability
filters off, so random weights still yield masks to propagate) and at the paper's 0.92 (random weights rarely
reach it: zero masks and an all-zero label map are expected). Random weights never report a tracked object as
present, so the SAM2 checkpoint gets a large object-score bias (``--no-present-bias`` keeps it untouched); the
masks are then noise, but they show that propagation reaches slices other than the prompt slices.

    python scripts/check_sam_backend.py --device cpu        # ~10 min on 2 CPU cores
    python scripts/check_sam_backend.py --device cuda --shape 48 256 256 --points-per-side 16
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def make_checkpoints(folder: Path, sam2_config: str, sam_model_type: str, present_bias: float) -> tuple[str, str]:
    """Random-weight SAM2 (``{"model": state_dict}``, as sam2's loader reads) and SAM v1 (a state dict) files."""
    from sam2.build_sam import build_sam2
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    sd = build_sam2(sam2_config, ckpt_path=None, device="cpu").state_dict()
    if present_bias:  # last layer of the object-score head: tracked objects count as present
        key = sorted(k for k in sd if k.startswith("sam_mask_decoder.pred_obj_score_head") and k.endswith("bias"))
        sd[key[-1]].fill_(present_bias)
    sam2_ckpt, sam_ckpt = folder / "sam2.pt", folder / f"sam_{sam_model_type}.pth"
    torch.save({"model": sd}, sam2_ckpt)
    torch.save(sam_model_registry[sam_model_type](checkpoint=None).state_dict(), sam_ckpt)
    return str(sam2_ckpt), str(sam_ckpt)


def make_volume(shape: tuple[int, int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(Z, Y, X) float32 image with a few bright spheres in noise, and an all-True valid mask."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    img = rng.normal(0, 0.1, shape).astype(np.float32)
    for _ in range(4):
        c = rng.uniform(0.3, 0.7, 3) * shape
        r = rng.uniform(0.15, 0.3) * min(shape)
        img[(z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= r * r] += rng.uniform(0.5, 1.5)
    return img, np.ones(shape, bool)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--shape", type=int, nargs=3, default=(12, 96, 96), metavar=("Z", "Y", "X"))
    p.add_argument("--sam2-config", default="configs/sam2.1/sam2.1_hiera_t.yaml")
    p.add_argument("--sam-model-type", default="vit_b")
    p.add_argument("--points-per-side", type=int, default=4, help="mask generator grid (SAM's default is 32)")
    p.add_argument("--prompt-slices", type=int, default=2)
    p.add_argument("--max-candidates", type=int, default=3)
    p.add_argument("--dedup-iou", type=float, default=0.5, help="above 1: propagate masks another object covers")
    p.add_argument("--no-present-bias", action="store_true", help="keep the random object-score head as it is")
    p.add_argument("--variants", nargs="+", default=["sam2-low", "sam2-0.92", "sam-low", "sam-0.92"])
    args = p.parse_args()
    from nninteractive_train.data.supervoxels.sam import SamConfig, SamSegmenter

    image, valid = make_volume(tuple(args.shape))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sam2_ckpt, sam_ckpt = make_checkpoints(Path(tmp), args.sam2_config, args.sam_model_type,
                                               0.0 if args.no_present_bias else 10.0)
        for variant in args.variants:
            gen, thresh = variant.split("-")
            low = thresh == "low"
            cfg = SamConfig(sam2_checkpoint=sam2_ckpt, sam2_config=args.sam2_config, device=args.device,
                            sam_checkpoint=sam_ckpt if gen == "sam" else None, sam_model_type=args.sam_model_type,
                            pred_iou_thresh=-1e9 if low else float(thresh), stability_score_thresh=0.0 if low else 0.95,
                            points_per_side=args.points_per_side, prompt_slices=args.prompt_slices,
                            max_candidates=args.max_candidates, dedup_iou=args.dedup_iou)
            t0 = time.perf_counter()
            seg = SamSegmenter(cfg)
            t1 = time.perf_counter()
            labels = seg(image, valid, spacing=(1.0, 1.0, 1.0))
            t2 = time.perf_counter()
            assert labels.shape == image.shape and labels.dtype == np.int32, (labels.shape, labels.dtype)
            ids = [i for i in np.unique(labels) if i]
            spans = [int((labels == i).any(axis=(1, 2)).sum()) for i in ids]
            st = seg.last_stats
            rows.append((variant, st["generated"], st["kept"], st["propagated"], len(ids),
                         min(spans, default=0), float(np.median(spans)) if spans else 0.0, t1 - t0, t2 - t1))
            del seg
    print(f"\nvolume {tuple(args.shape)}, device {args.device}, torch {torch.__version__}, "
          f"points/side {args.points_per_side}, prompt slices {args.prompt_slices}, "
          f"max candidates {args.max_candidates}, dedup IoU {args.dedup_iou}, object-score bias {'off' if args.no_present_bias else 'on'}")
    print(f"{'variant':<10} {'generated':>9} {'kept':>5} {'propagated':>10} {'objects':>7} "
          f"{'slices min':>10} {'slices med':>10} {'load s':>7} {'call s':>7}")
    for r in rows:
        print(f"{r[0]:<10} {r[1]:>9} {r[2]:>5} {r[3]:>10} {r[4]:>7} {r[5]:>10} {r[6]:>10.1f} {r[7]:>7.1f} {r[8]:>7.1f}")


if __name__ == "__main__":
    main()
