"""How far from a 2D prompt does the prediction follow the object? One positive lasso and one 2D box per object
through the public inference session (AutoZoom off); the object's voxels binned by their distance (slices) from
the prompt's plane, with the share the prediction covers (recall) and the predicted voxels outside the object in
the same bins (per object voxel). A model that segments by the image covers the far bins as well as the near ones;
one that paints a typical extent around the prompt stops after a few slices (docs/learning.md, "Reach from a 2D
prompt").

    python scripts/diag_reach.py MODEL_DIR RAW_DATASET_DIR CASE [CASE …] [--objects 7] [--kinds lasso bbox]
        [--centring]
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np

BINS = ((0, 0), (1, 3), (4, 7), (8, 11), (12, None))


def slice_distance(shape, axis: int, index: int) -> np.ndarray:
    """|slice − index| along ``axis`` for every voxel of an array of ``shape``."""
    d = np.abs(np.arange(shape[axis]) - index)
    view = [1] * len(shape)
    view[axis] = -1
    return np.broadcast_to(d.reshape(view), shape)


def fixed_prompt(kind: str, target: np.ndarray, index: int, spacing):
    """The first prompt of ``kind`` on ``target`` (bool X, Y, Z), seeded by the object's size rank ``index``: the
    same prompt in both measurements and for every model (not the evaluation's draws)."""
    from nninteractive_train.simulation import simulate_prompt

    return simulate_prompt(kind, target, None, rng=np.random.default_rng([0, index]), spacing=spacing)


def centring(session, raw: Path, args) -> None:
    """Dice and far recall (≥ 8 slices from the plane) of the bare network in one session-sized window centred on
    the 2D prompt vs on the object's centroid (image z-scored as the session does, prompt channels as in training)."""
    import torch

    from diag_patch_context import forward, place
    from nninteractive_train.evaluation.runner import load_case
    from nninteractive_train.evaluation import dice
    from nninteractive_train.evaluation.objects import find_objects
    from nninteractive_train.simulation import add_prompt, empty_interactions

    net, window = session.network.eval(), list(session.configuration_manager.patch_size)
    scores = {"prompt": ([], [0, 0]), "object": ([], [0, 0])}
    for case in args.cases:
        image, label, spacing = load_case(raw, case)
        img = image[0]
        z = (img - img.mean()) / max(img.std(), 1e-8)
        for obj in find_objects(label, max_objects=args.objects):
            target = obj.mask()
            for kind in args.kinds:
                prompt = fixed_prompt(kind, target, obj.index, spacing)
                inter = empty_interactions(img.shape)
                add_prompt(inter, prompt)
                vol = np.concatenate([z[None], inter], 0)
                far = target & (slice_distance(img.shape, prompt.axis, prompt.index) >= 8)
                for name, centre in (("prompt", np.argwhere(inter[1] > 0).mean(0)),
                                     ("object", np.argwhere(target).mean(0))):
                    lo = [int(round(c)) - w // 2 for c, w in zip(centre, window)]
                    with torch.no_grad():
                        out = forward(net, place(vol, lo, window))
                    # the window's prediction back in image coordinates: the image-sized view of it at -lo
                    pred = place(out[None].astype(np.float32), [-l for l in lo], img.shape)[0] > 0
                    scores[name][0].append(dice(pred, target))
                    scores[name][1][0] += int((pred & far).sum())
                    scores[name][1][1] += int(far.sum())
    print("| network alone, window centred on | Dice | recall ≥ 8 slices from the plane |\n|---|---:|---:|")
    for name, (d, (hit, n)) in scores.items():
        print(f"| the {name} | {np.mean(d):.3f} | {hit / max(n, 1):.2f} |")
    print()


def main(argv=None) -> None:
    from nninteractive_train.evaluation import apply_prompt, dice, load_session
    from nninteractive_train.evaluation.runner import load_case
    from nninteractive_train.evaluation.objects import find_objects

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir")
    p.add_argument("raw_dir", help="an nnU-Net raw dataset folder (imagesTr / labelsTr)")
    p.add_argument("cases", nargs="+")
    p.add_argument("--objects", type=int, default=7, help="largest objects per case")
    p.add_argument("--kinds", nargs="+", default=["lasso", "bbox"], choices=["lasso", "bbox"])
    p.add_argument("--centring", action="store_true",
                   help="also: the network alone in the session's window, centred on the prompt (as the session "
                        "centres it) and on the object; a model that learnt where objects sit in its training "
                        "patches does better in the second")
    args = p.parse_args(argv)

    session = load_session(args.model_dir, device="cpu", autozoom=False)
    raw = Path(args.raw_dir)
    covered, total, spill = collections.Counter(), collections.Counter(), collections.Counter()
    on_plane = []
    for case in args.cases:
        image, label, spacing = load_case(raw, case)
        img = image[0]
        session.set_image(image)
        buffer = np.zeros(img.shape, np.uint8)
        session.set_target_buffer(buffer)
        for obj in find_objects(label, max_objects=args.objects):
            target = obj.mask()
            for kind in args.kinds:
                session.reset_interactions()
                prompt = fixed_prompt(kind, target, obj.index, spacing)
                apply_prompt(session, prompt.kind, True, coords=prompt.coords, bbox=prompt.bbox,
                             patch=prompt.patch, offset=prompt.offset)
                pred = buffer.astype(bool)
                axis, index = prompt.axis, prompt.index
                dist = slice_distance(img.shape, axis, index)
                for lo, hi in BINS:
                    inside = (dist >= lo) if hi is None else (dist >= lo) & (dist <= hi)
                    total[lo] += int((target & inside).sum())
                    covered[lo] += int((target & pred & inside).sum())
                    spill[lo] += int((pred & ~target & inside).sum())
                on_plane.append(dice(np.take(pred, index, axis), np.take(target, index, axis)))
    if args.centring:
        centring(session, raw, args)
    names = [f"{lo}–{hi}" if hi is not None else f"≥ {lo}" for lo, hi in BINS]
    print(f"Dice on the prompt's own plane: {np.mean(on_plane):.2f} ({len(on_plane)} prompts, {args.kinds})\n")
    print("| slices from the prompt's plane | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(BINS))
    print("| object voxels | " + " | ".join(str(total[lo]) for lo, _ in BINS) + " |")
    print("| recall | " + " | ".join(f"{covered[lo] / max(total[lo], 1):.2f}" for lo, _ in BINS) + " |")
    print("| predicted outside / object voxels | " + " | ".join(f"{spill[lo] / max(total[lo], 1):.2f}"
                                                            for lo, _ in BINS) + " |")


if __name__ == "__main__":
    main()
