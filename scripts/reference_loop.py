"""A plain training loop on the demo's generated data: the yardstick for the framework's learning per step.

    python scripts/reference_loop.py --demo-out demo_output --iterations 500          # train the plain loop
    python scripts/reference_loop.py --demo-out demo_output --score RUN_DIR [RUN_DIR ...]  # score framework runs
    python scripts/reference_loop.py --demo-out demo_output --iterations 1000 --architecture-from RUN_DIR
        [--nnunet-init] [--far-gain 3] [--save net.pt]     # the framework run's layout; variants of the loop
    python scripts/reference_loop.py --demo-out demo_output --into-model net.pt MODEL_DIR OUT_DIR
        # a model folder of the same layout with the plain loop's weights, for nnInteractive_evaluate

No framework: the demo's network (ResEnc U-Net 8->64, 5 stages, 3x3x3 kernels), whole generated images z-scored
and zero-padded into one window (default 64x96x96, the demo's training window), one object per sample (connected
pieces of a label, >= 100 voxels), one prompt per sample (a lasso or 2D box on a slice drawn by the object's area,
or a radius-4 point ball drawn towards the object's centre) in the nnInteractive channel layout, no augmentation, no
follow-ups, no SuperVoxels, AdamW with a poly schedule, CE + soft Dice. Held-out Dice after one prompt is measured
by a direct forward on fixed prompts of the held-out cases (the demo's last three generated cases), every
``--eval-every`` iterations (``--save`` keeps the final weights, which load into a model folder of the same
layout for the inference session). ``--score`` runs the same measurement on the final network of framework runs,
so both are compared on the same objects and prompts. The prompts are simpler than the simulators' (no jitter, no
scribbles); the inference session's protocol is scripts/ablate_learning.py's.
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


def prompt(target: np.ndarray, kind: str, *, rng: np.random.Generator, plane: list | None = None) -> np.ndarray:
    """The 7 interaction channels (prev seg, bbox/lasso +/-, point +/-, scribble +/-) for one positive prompt;
    a 2D prompt's (axis, index) is appended to ``plane`` when given."""
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
    if plane is not None:
        plane.append((axis, index))
    return ch


def far_weights(target: np.ndarray, axis: int, index: int, gain: float) -> np.ndarray:
    """Per-voxel loss weights that reward the far side of a 2D prompt: 1 off the object and near the prompt's
    plane, rising linearly for object voxels from 3 to 8 slices away to ``1 + gain`` (slices counted as
    scripts/diag_reach.py counts them)."""
    from diag_reach import slice_distance  # scripts/ is sys.path[0] when a script runs

    d = slice_distance(target.shape, axis, index)
    return (1 + gain * np.clip((d - 3) / 5, 0, 1) * target).astype(np.float32)


def run_architecture(run_dir: Path) -> dict:
    """The network entry (class name, arch_kwargs) of a framework run's interactive plans configuration."""
    import yaml

    configuration = yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["configuration"]
    return json.loads((run_dir / "plans.json").read_text())["configurations"][configuration]["architecture"]


def network(run_dir: Path | None = None, *, architecture: dict | None = None, nnunet_init: bool = False):
    """The demo network: a framework run's network with its final weights (``run_dir``), or freshly initialised —
    the plain loop's 3x3x3 layout, or ``architecture`` (a plans entry; nnU-Net's 1x3x3 start on 2x1x1 mm data) —
    with torch's default initialisation or nnU-Net's (He, negative slope 1e-2; ``nnunet_init``)."""
    import torch
    from dynamic_network_architectures.architectures.unet import ResidualEncoderUNet
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    if architecture is not None:
        return get_network_from_plans(architecture["network_class_name"], architecture["arch_kwargs"],
                                      architecture["_kw_requires_import"], 8, 2, allow_init=nnunet_init,
                                      deep_supervision=False)
    if run_dir is None:
        net = ResidualEncoderUNet(8, 5, [8, 16, 32, 64, 64], torch.nn.Conv3d, 3, [1, 2, 2, 2, 2], [1, 2, 2, 2, 2], 2,
                                  [1, 1, 1, 1], conv_bias=True, norm_op=torch.nn.InstanceNorm3d,
                                  norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=torch.nn.LeakyReLU,
                                  nonlin_kwargs={"inplace": True}, deep_supervision=False)
        if nnunet_init:
            net.apply(net.initialize)
        return net
    from nninteractive_train.training.checkpoint import clean_state_dict

    net = network(architecture=run_architecture(run_dir))
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


def into_model(weights: Path, model_dir: Path, out: Path) -> None:
    """Copy an exported model folder (``model_dir``) to ``out`` with the plain loop's weights in its checkpoint, so
    the public inference session (``nnInteractive_evaluate``) runs the plain loop's network. The layouts must match
    (``--architecture-from`` the run that model was exported from)."""
    import shutil

    import torch

    if out.exists():
        raise SystemExit(f"reference_loop: error: {out}: exists; choose a new folder")
    state = torch.load(weights, map_location="cpu")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model_dir, tmp)
    for ckpt in tmp.glob("fold_*/checkpoint_*.pth"):
        checkpoint = torch.load(ckpt, map_location="cpu", weights_only=False)
        if set(checkpoint["network_weights"]) != set(state):
            shutil.rmtree(tmp)
            raise SystemExit(f"reference_loop: error: {weights}: its layout differs from the network of "
                             f"{model_dir / ckpt.relative_to(tmp)}")
        checkpoint["network_weights"] = state
        torch.save(checkpoint, ckpt)
    tmp.replace(out)


def train(train_cases: list, pairs: dict, *, iterations: int, batch: int, lr: float, eval_every: int,
          seed: int = 0, architecture: dict | None = None, nnunet_init: bool = False,
          save: Path | None = None, far_gain: float = 0.0) -> list[dict]:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    net = network(architecture=architecture, nnunet_init=nnunet_init)
    opt = torch.optim.AdamW(net.parameters(), lr, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    rows, t0 = [], time.perf_counter()
    for it in range(iterations):
        for g in opt.param_groups:
            g["lr"] = lr * (1 - it / iterations) ** 0.9
        xs, ts, ws = [], [], []
        for _ in range(batch):
            img, objects = train_cases[rng.integers(len(train_cases))]
            t = objects[rng.integers(len(objects))]
            plane: list = []
            xs.append(np.concatenate([img[None], prompt(t, str(rng.choice(KINDS)), rng=rng, plane=plane)]))
            ts.append(t)
            ws.append(far_weights(t, *plane[0], far_gain) if plane and far_gain else np.ones(t.shape, np.float32))
        x, t = torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ts)).long()
        w = torch.from_numpy(np.stack(ws))
        out = net(x)
        prob = out.softmax(1)[:, 1]
        ce = (F.cross_entropy(out, t, reduction="none") * w).sum() / w.sum()
        loss = ce + 1 - (2 * (prob * t).sum() + 1) / (prob.sum() + t.sum() + 1)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
        opt.step()
        if (it + 1) % eval_every == 0 or it + 1 == iterations:
            rows.append({"run": "reference loop", "iterations": it + 1,
                         "minutes": (time.perf_counter() - t0) / 60, **score(net, pairs)})
            print(json.dumps(rows[-1]), flush=True)
    if save is not None:  # the final weights, loadable into a framework model folder of the same layout
        save.parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), save.with_suffix(".tmp"))
        save.with_suffix(".tmp").replace(save)
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
    p.add_argument("--architecture-from", type=Path, metavar="RUN_DIR",
                   help="train a fresh network of this framework run's layout (e.g. nnU-Net's 1x3x3 start)")
    p.add_argument("--nnunet-init", action="store_true", help="nnU-Net's He initialisation instead of torch's")
    p.add_argument("--save", type=Path, metavar="FILE", help="write the trained network's state_dict here")
    p.add_argument("--into-model", nargs=3, type=Path, metavar=("WEIGHTS", "MODEL_DIR", "OUT_DIR"),
                   help="write a copy of MODEL_DIR with the --save'd WEIGHTS in it, then exit")
    p.add_argument("--far-gain", type=float, default=0.0,
                   help="weight the cross-entropy of object voxels 3-8+ slices from a 2D prompt up to 1 + this")
    args = p.parse_args(argv)
    if args.into_model:
        into_model(*args.into_model)
        return 0

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
                     eval_every=args.eval_every, nnunet_init=args.nnunet_init, save=args.save,
                     far_gain=args.far_gain,
                     architecture=run_architecture(args.architecture_from) if args.architecture_from else None)
    print(table(rows, n_objects))
    return 0


if __name__ == "__main__":
    sys.exit(main())
