"""A plain training loop on the demo's generated data: the yardstick for the framework's learning per step.

    python scripts/reference_loop.py --demo-out demo_output --iterations 500          # train the plain loop
    python scripts/reference_loop.py --demo-out demo_output --score RUN_DIR [RUN_DIR ...]  # score framework runs

No framework: the demo's network (ResEnc U-Net 8->64, 5 stages, 3x3x3 kernels), whole generated images z-scored
and zero-padded into one window (default 64x96x96, the demo's training window), one object per sample (connected
pieces of a label, >= 100 voxels), one prompt per sample (a lasso or 2D box on a slice drawn by the object's area,
or a radius-4 point ball drawn towards the object's centre) in the nnInteractive channel layout, no augmentation, no
follow-ups, no SuperVoxels, AdamW with a poly schedule, CE + soft Dice. Held-out Dice after one prompt is measured
by a direct forward on fixed prompts of the held-out cases (the demo's last three generated cases), every
``--eval-every`` iterations. ``--score`` runs the same measurement on the final network of framework runs, so both
are compared on the same objects and prompts. The prompts are simpler than the simulators' (no jitter, no scribbles);
the inference session's protocol is scripts/ablate_learning.py's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

KINDS = ("lasso", "point", "bbox")
MIN_VOXELS = 100


def load_case(raw: Path, case: str, window: tuple[int, ...]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Image (window) z-scored and zero-padded/cropped at the far end, and its objects as boolean masks."""
    import SimpleITK as sitk

    img = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "imagesTr" / f"{case}_0000.nii.gz"))).astype(np.float32)
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "labelsTr" / f"{case}.nii.gz")))
    img = (img - img.mean()) / max(float(img.std()), 1e-8)
    pad = [(0, max(0, w - s)) for w, s in zip(window, img.shape)]
    fit = tuple(slice(0, w) for w in window)
    img, lab = np.pad(img, pad)[fit], np.pad(lab, pad)[fit]
    objects = []
    for value in np.unique(lab)[1:]:
        pieces, n = ndi.label(lab == value)
        objects += [pieces == i for i in range(1, n + 1)]
    return img, [o for o in objects if o.sum() >= MIN_VOXELS]


def prompt(target: np.ndarray, kind: str, *, rng: np.random.Generator) -> np.ndarray:
    """The 7 interaction channels (prev seg, bbox/lasso +/-, point +/-, scribble +/-) for one positive prompt."""
    shape = target.shape
    ch = np.zeros((7, *shape), np.float32)
    if kind == "point":
        d = ndi.distance_transform_edt(target)
        w = (d / d.max()) ** 4
        p = np.unravel_index(rng.choice(w.size, p=w.ravel() / w.sum()), shape)
        zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
        ch[3][((zz - p[0]) ** 2 + (yy - p[1]) ** 2 + (xx - p[2]) ** 2) <= 16] = 1
        return ch
    axis = int(rng.integers(3))
    area = target.sum(axis=tuple(a for a in range(3) if a != axis))
    index = int(rng.choice(shape[axis], p=area / area.sum()))
    cut = np.take(target, index, axis=axis)
    if kind == "lasso":
        mask = ndi.binary_dilation(ndi.binary_closing(cut, iterations=2), iterations=2)
    else:
        ys, xs = np.nonzero(cut)
        mask = np.zeros_like(cut)
        mask[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1] = 1
    sel = [slice(None)] * 3
    sel[axis] = index
    ch[1][tuple(sel)] = mask
    return ch


def network(run_dir: Path | None = None):
    """The demo network: from a framework run's plans and final weights, or freshly initialised."""
    import torch
    from dynamic_network_architectures.architectures.unet import ResidualEncoderUNet

    if run_dir is None:
        return ResidualEncoderUNet(8, 5, [8, 16, 32, 64, 64], torch.nn.Conv3d, 3, [1, 2, 2, 2, 2], [1, 2, 2, 2, 2], 2,
                                   [1, 1, 1, 1], conv_bias=True, norm_op=torch.nn.InstanceNorm3d,
                                   norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=torch.nn.LeakyReLU,
                                   nonlin_kwargs={"inplace": True}, deep_supervision=False)
    import yaml
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    from nninteractive_train.training.checkpoint import clean_state_dict

    configuration = yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["configuration"]
    arch = json.loads((run_dir / "plans.json").read_text())["configurations"][configuration]["architecture"]
    net = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"], 8, 2,
                                 allow_init=True, deep_supervision=False)
    checkpoint = torch.load(run_dir / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    net.load_state_dict(clean_state_dict(checkpoint["network_weights"]))
    return net


def held_out_set(cases: list) -> dict[str, list]:
    """Fixed (input, target) pairs per kind: every object of every held-out case, one prompt each."""
    out: dict[str, list] = {k: [] for k in KINDS}
    for ci, (img, objects) in enumerate(cases):
        for oi, obj in enumerate(objects):
            for kind in KINDS:
                x = np.concatenate([img[None], prompt(obj, kind, rng=np.random.default_rng(100 * ci + oi))])
                out[kind].append((x, obj))
    return out


def score(net, pairs: dict[str, list]) -> dict[str, float]:
    """Mean Dice per kind of the argmax prediction (direct forward on the whole window)."""
    import torch

    was_training = net.training
    net.eval()
    res = {}
    with torch.no_grad():
        for kind, items in pairs.items():
            dice = []
            for x, t in items:
                p = net(torch.from_numpy(x)[None]).argmax(1)[0].numpy().astype(bool)
                dice.append(2 * (p & t).sum() / max(p.sum() + t.sum(), 1))
            res[kind] = float(np.mean(dice))
    net.train(was_training)
    return res


def train(train_cases: list, pairs: dict, *, iterations: int, batch: int, lr: float, eval_every: int,
          seed: int = 0) -> list[dict]:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    net = network()
    opt = torch.optim.AdamW(net.parameters(), lr, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    rows, t0 = [], time.perf_counter()
    for it in range(iterations):
        for g in opt.param_groups:
            g["lr"] = lr * (1 - it / iterations) ** 0.9
        xs, ts = [], []
        for _ in range(batch):
            img, objects = train_cases[rng.integers(len(train_cases))]
            t = objects[rng.integers(len(objects))]
            xs.append(np.concatenate([img[None], prompt(t, str(rng.choice(KINDS)), rng=rng)]))
            ts.append(t)
        x, t = torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ts)).long()
        out = net(x)
        prob = out.softmax(1)[:, 1]
        loss = F.cross_entropy(out, t) + 1 - (2 * (prob * t).sum() + 1) / (prob.sum() + t.sum() + 1)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
        opt.step()
        if (it + 1) % eval_every == 0 or it + 1 == iterations:
            rows.append({"run": "reference loop", "iterations": it + 1,
                         "minutes": (time.perf_counter() - t0) / 60, **score(net, pairs)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict], objects: int) -> str:
    lines = [f"| run | iterations | train min | {' | '.join(KINDS)} | mean | ({objects} held-out objects)",
             "|---|---:|---:|" + "---|" * (len(KINDS) + 1)]
    for r in rows:
        cells = " | ".join(f"{r[k]:.2f}" for k in KINDS)
        minutes = f"{r['minutes']:.1f}" if r.get("minutes") is not None else "—"
        lines.append(f"| {r['run']} | {r.get('iterations', '—')} | {minutes} | {cells} | "
                     f"{np.mean([r[k] for k in KINDS]):.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo-out", required=True, type=Path, help="a demo output folder with the generated dataset")
    p.add_argument("--score", nargs="+", type=Path, help="framework run folders to score instead of training")
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--window", default="64,96,96", help="z,y,x voxels every image is padded or cut to")
    p.add_argument("--eval-every", type=int, default=125)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    import torch

    from nninteractive_train.demo.pipeline import GENERATED_HELD_OUT, GENERATED_ID
    from nninteractive_train.evaluation.runner import list_cases

    torch.set_num_threads(args.threads)
    raw = next((args.demo_out / "nnUNet_raw").glob(f"Dataset{GENERATED_ID}_*"))
    window = tuple(int(v) for v in args.window.split(","))
    names = list_cases(raw, "imagesTr", ".nii.gz")
    held = [load_case(raw, c, window) for c in names[-GENERATED_HELD_OUT:]]
    pairs = held_out_set(held)
    n_objects = len(pairs[KINDS[0]])
    if args.score:
        rows = [{"run": str(d), **score(network(d), pairs)} for d in args.score]
    else:
        cases = [load_case(raw, c, window) for c in names[:-GENERATED_HELD_OUT]]
        rows = train(cases, pairs, iterations=args.iterations, batch=args.batch, lr=args.lr,
                     eval_every=args.eval_every)
    print(table(rows, n_objects))
    return 0


if __name__ == "__main__":
    sys.exit(main())
