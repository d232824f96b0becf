"""What does the model predict? One prompt per object through the public inference session, drawn as a PNG: per
object the image, the object, the prediction (on the slice where the object is largest) and the prompt's
projection, with Dice in the titles; the Dice and sizes are printed as a table.

    python scripts/show_predictions.py MODEL_DIR RAW_DATASET_DIR CASE [CASE …] [--kind lasso] [--objects 4]
        [--out predictions.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir")
    p.add_argument("raw_dataset", help="an nnU-Net raw dataset folder (imagesTr / labelsTr)")
    p.add_argument("cases", nargs="+")
    p.add_argument("--kind", default="lasso", choices=["point", "bbox", "lasso", "scribble"])
    p.add_argument("--objects", type=int, default=4, help="largest objects per case")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="predictions.png")
    args = p.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import SimpleITK as sitk

    from nninteractive_train.evaluation.metrics import dice
    from nninteractive_train.evaluation.objects import find_objects
    from nninteractive_train.evaluation.session import apply_prompt, load_session
    from nninteractive_train.simulation import simulate_prompt

    raw = Path(args.raw_dataset)
    session = load_session(args.model_dir, device="cpu", autozoom=False)
    rows, panels = [], []
    for case in args.cases:
        img_file = raw / "imagesTr" / f"{case}_0000.nii.gz"
        image = sitk.ReadImage(str(img_file))
        img = sitk.GetArrayFromImage(image).astype(np.float32)
        label = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "labelsTr" / f"{case}.nii.gz")))
        spacing = image.GetSpacing()[::-1]
        session.set_image(img[None])
        buffer = np.zeros(img.shape, np.uint8)
        session.set_target_buffer(buffer)
        for obj in find_objects(label, max_objects=args.objects):
            target = obj.mask()
            session.reset_interactions()
            pr = simulate_prompt(args.kind, target, None, rng=np.random.default_rng([args.seed, obj.index]),
                                 spacing=spacing)
            apply_prompt(session, pr.kind, True, coords=pr.coords, bbox=pr.bbox, patch=pr.patch, offset=pr.offset)
            pred = buffer.astype(bool)
            d = dice(pred, target)
            rows.append((case, obj.index, obj.voxels, int(pred.sum()), d))
            prompt = np.zeros(img.shape, bool)
            if pr.patch is not None:
                prompt[tuple(slice(o, o + s) for o, s in zip(pr.offset, pr.patch.shape))] = pr.patch > 0
            elif pr.coords is not None:
                prompt[tuple(int(c) for c in pr.coords)] = True
            else:
                prompt[tuple(slice(lo, hi) for lo, hi in pr.bbox)] = True
            z = int(np.argmax(target.sum((1, 2))))
            panels.append((f"{case} #{obj.index} ({obj.voxels} vx) Dice {d:.2f}", img[z], target[z], pred[z],
                           prompt.max(0)))
    fig, axs = plt.subplots(len(panels), 4, figsize=(12, 3 * len(panels)), squeeze=False)
    for row, (title, im, t, pr, pm) in zip(axs, panels):
        for ax, a, name in zip(row, (im, t, pr, pm), (title, "object", "prediction", f"{args.kind} (max. proj.)")):
            ax.imshow(a, cmap="gray" if a is im else "viridis")
            ax.set_title(name, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.out, dpi=60)
    print("| case | object | voxels | predicted voxels | Dice |\n|---|---:|---:|---:|---:|")
    for case, i, n, m, d in rows:
        print(f"| {case} | {i} | {n} | {m} | {d:.2f} |")
    print(f"mean Dice {np.mean([r[-1] for r in rows]):.3f} over {len(rows)} objects; figure {args.out}")


if __name__ == "__main__":
    main()
