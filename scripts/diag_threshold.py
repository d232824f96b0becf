"""How far does intensity alone go on these objects? A threshold oracle per object: the image smoothed
(Gaussian, sigma 1 voxel), thresholded halfway between the object's mean and the mean of a 3-voxel ring around it
(both read from the true mask, so the oracle knows what no model is told), and the connected piece of the
thresholded image that covers most of the object kept. It has no size prior and no shape knowledge: where it
fails, the object touches or nearly touches a neighbour of similar intensity, or its contrast is low, and only the
prompt's shape can separate it. A yardstick for the held-out Dice of the demo models (docs/learning.md, "The plain
loop at the demo's length").

    python scripts/diag_threshold.py RAW_DATASET_DIR CASE [CASE ...] [--min-size 100]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

SIZE_BINS = ((0, 450), (450, 2000), (2000, None))


def threshold_oracle(image: np.ndarray, mask: np.ndarray, *, sigma: float = 1.0, ring: int = 3) -> np.ndarray:
    """bool (X, Y, Z): the oracle's segmentation of the object ``mask`` (bool) in ``image`` (float, X, Y, Z)."""
    smooth = ndi.gaussian_filter(image.astype(np.float64), sigma)
    around = ndi.binary_dilation(mask, iterations=ring) & ~mask
    inside, outside = smooth[mask].mean(), smooth[around].mean()
    level = (inside + outside) / 2
    fg = smooth > level if inside > outside else smooth < level
    pieces, _ = ndi.label(fg)
    hits = np.bincount(pieces[mask], minlength=pieces.max() + 1)
    hits[0] = 0
    return pieces == hits.argmax() if hits.any() else np.zeros_like(mask)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("raw", type=Path, help="an nnU-Net raw dataset folder (imagesTr, labelsTr)")
    p.add_argument("cases", nargs="+")
    p.add_argument("--min-size", type=int, default=100, help="objects with fewer voxels are skipped")
    args = p.parse_args(argv)

    from nninteractive_train.evaluation import dice
    from nninteractive_train.evaluation.objects import find_objects
    from nninteractive_train.evaluation.runner import load_case

    rows = []
    for case in args.cases:
        image, label, _ = load_case(args.raw, case)
        for obj in find_objects(label, min_size=args.min_size):
            mask = obj.mask()
            rows.append((case, obj.label, obj.voxels, dice(threshold_oracle(image[0], mask), mask)))
    print("| case | label | voxels | oracle Dice |\n|---|---:|---:|---:|")
    for case, lab, vox, d in rows:
        print(f"| {case} | {lab} | {vox} | {d:.2f} |")
    print("\n| objects | n | mean oracle Dice | under 0.5 |\n|---|---:|---:|---:|")
    for lo, hi in (*SIZE_BINS, (0, None)):
        sel = [d for _, _, v, d in rows if v >= lo and (hi is None or v < hi)]
        name = "all" if (lo, hi) == (0, None) else f"{lo}–{hi if hi else '…'} voxels"
        if sel:
            print(f"| {name} | {len(sel)} | {np.mean(sel):.2f} | {sum(d < 0.5 for d in sel)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
