"""Does the model lose accuracy when it sees more context than in training? One positive lasso per object,
Dice of the network's prediction in three views of the same held-out case:

  crop     a training-like patch (model.patch_size of the run config) centred on the object
  window   the whole image in one exported patch (what the inference session feeds the network)
  session  the public nnInteractiveInferenceSession (AutoZoom off)

    python scripts/diag_patch_context.py MODEL_DIR RAW_DATASET_DIR CASE [CASE …] [--labels 1 2 4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def forward(net, x: np.ndarray) -> np.ndarray:
    """argmax of the full-resolution output for one (C, X, Y, Z) input."""
    with torch.no_grad():
        out = net(torch.from_numpy(np.ascontiguousarray(x[None])))
        out = out[0] if isinstance(out, (list, tuple)) else out
    return out[0].argmax(0).numpy().astype(bool)


def place(vol: np.ndarray, lo, size) -> np.ndarray:
    """The (C, *size) window of ``vol`` starting at ``lo`` (may lie partly outside; zero-padded)."""
    x = np.zeros((vol.shape[0], *size), np.float32)
    src = tuple(slice(max(l, 0), min(l + s, d)) for l, s, d in zip(lo, size, vol.shape[1:]))
    dst = tuple(slice(a.start - l, a.stop - l) for a, l in zip(src, lo))
    x[(slice(None),) + dst] = vol[(slice(None),) + src]
    return x


def main(argv=None) -> None:
    import cc3d
    import SimpleITK as sitk

    from nninteractive_train.evaluation import apply_prompt, dice, load_session
    from nninteractive_train.simulation import add_prompt, empty_interactions, simulate_prompt

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir")
    p.add_argument("raw_dir")
    p.add_argument("cases", nargs="+")
    p.add_argument("--labels", type=int, nargs="+", default=None)
    args = p.parse_args(argv)
    ck = torch.load(Path(args.model_dir) / "fold_0" / "checkpoint_final.pth", weights_only=False)
    train_patch = ck["run_config"]["model"]["patch_size"]
    session = load_session(args.model_dir, device=torch.device("cpu"), autozoom=False)
    window = list(session.configuration_manager.patch_size)
    rng = np.random.default_rng(0)
    scores: dict[str, list[float]] = {"crop": [], "window": [], "session": []}
    for case in args.cases:
        img_file = Path(args.raw_dir) / "imagesTr" / f"{case}_0000.nii.gz"
        sitk_img = sitk.ReadImage(str(img_file))
        img = sitk.GetArrayFromImage(sitk_img).astype(np.float32)
        lab = sitk.GetArrayFromImage(sitk.ReadImage(str(Path(args.raw_dir) / "labelsTr" / f"{case}.nii.gz")))
        spacing = tuple(sitk_img.GetSpacing()[::-1])
        z = (img - img.mean()) / max(img.std(), 1e-8)
        for label in args.labels or [int(v) for v in np.unique(lab) if v > 0]:
            comps = cc3d.connected_components(lab == label)
            if comps.max() == 0:
                continue
            target = comps == 1
            prompt = simulate_prompt("lasso", target, None, rng=rng, spacing=spacing)
            inter = empty_interactions(img.shape)
            add_prompt(inter, prompt)
            vol = np.concatenate([z[None], inter], 0)
            centre = [int(v) for v in np.argwhere(target).mean(0)]
            lo = [c - s // 2 for c, s in zip(centre, train_patch)]
            crop_target = place(target[None].astype(np.float32), lo, train_patch)[0] > 0
            scores["crop"].append(dice(forward(session.network, place(vol, lo, train_patch)), crop_target))
            full = forward(session.network, place(vol, [0, 0, 0], [max(w, s) for w, s in zip(window, img.shape)]))
            scores["window"].append(dice(full[tuple(slice(0, s) for s in img.shape)], target))
            session.set_image(img[None])
            buffer = np.zeros(img.shape, np.uint8)
            session.set_target_buffer(buffer)
            session.reset_interactions()
            apply_prompt(session, prompt.kind, prompt.positive, coords=prompt.coords, bbox=prompt.bbox,
                         patch=prompt.patch, offset=prompt.offset)
            scores["session"].append(dice(buffer > 0, target))
    print("| view | objects | Dice after one lasso (mean) |\n|---|---:|---:|")
    for k, v in scores.items():
        print(f"| {k} | {len(v)} | {np.mean(v):.3f} |")


if __name__ == "__main__":
    main()
