"""nnInteractive_prompt_gallery: a picture of every simulated prompt kind, initial and follow-up, on one case.

One panel per kind × {initial, positive follow-up, negative follow-up}, each on the prompt's slice: the image,
the target outline, the prediction error (false negatives red, false positives blue) and the prompt (positive
yellow, negative magenta). Look at it before trusting a long training run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from nninteractive_train.cli.common import Parser, add_dataset_argument, run_command
from nninteractive_train.errors import CaseError, SetupError, UsageError

KINDS = ("point", "bbox", "lasso", "scribble")
COLUMNS = ("initial", "positive follow-up", "negative follow-up")


def load_raw_case(dataset: int | str, raw_root: str | os.PathLike | None = None):
    """First training case of a raw dataset (id or ``DatasetXXX_Name`` under ``raw_root``, default
    ``$nnUNet_raw``): (image float32 (X, Y, Z), label int (X, Y, Z), spacing)."""
    import SimpleITK as sitk

    from nninteractive_train.data.paths import find_dataset

    raw_root = raw_root if raw_root is not None else os.environ.get("nnUNet_raw")
    if not raw_root:
        raise SetupError("environment variable nnUNet_raw is not set", hint="set it, or omit -d to use a generated case")
    folder = find_dataset(dataset, raw_root, var="nnUNet_raw")
    images = sorted((folder / "imagesTr").glob("*_0000.nii.gz"))
    if not images:
        raise SetupError("the dataset holds no *_0000.nii.gz image", folder / "imagesTr")
    label_path = folder / "labelsTr" / images[0].name.replace("_0000.nii.gz", ".nii.gz")
    if not label_path.is_file():
        raise CaseError(label_path, f"the label of {images[0].name} is missing")
    image = sitk.ReadImage(str(images[0]))
    label = sitk.ReadImage(str(label_path))
    # SimpleITK arrays are (Z, Y, X); the simulation works in (X, Y, Z), with GetSpacing() already (x, y, z).
    image_array = sitk.GetArrayFromImage(image).transpose(2, 1, 0).astype(np.float32)
    label_array = sitk.GetArrayFromImage(label).transpose(2, 1, 0)
    if image_array.shape != label_array.shape:
        raise CaseError(label_path, f"shape {label_array.shape} differs from the image's {image_array.shape} "
                                    f"({images[0].name})")
    return image_array, label_array, tuple(float(s) for s in image.GetSpacing())


def synthetic_case(rng: np.random.Generator):
    """A generated case: (image float32 (X, Y, Z), label int (X, Y, Z), spacing (mm))."""
    try:
        from nninteractive_train.data.synthetic import make_case
    except ImportError:  # the generator module is optional here
        make_case = None
    if make_case is not None:
        shape, spacing = (40, 128, 128), (2.5, 1.0, 1.0)
        image, label = make_case(rng, shape=shape, spacing=spacing)
        # make_case returns nnU-Net array order (z, y, x); present it as (X, Y, Z) like a raw dataset.
        return image.transpose(2, 1, 0), label.transpose(2, 1, 0), spacing[::-1]
    shape, spacing = (128, 128, 40), (1.0, 1.0, 2.5)
    grid = np.indices(shape, dtype=np.float32) * np.asarray(spacing, np.float32)[:, None, None, None]
    centre = np.asarray(shape, np.float32) * np.asarray(spacing, np.float32) / 2
    radii = np.array([35.0, 25.0, 30.0], np.float32)
    label = (((grid - centre[:, None, None, None]) / radii[:, None, None, None]) ** 2).sum(0) <= 1
    image = 100 * label + rng.normal(0, 20, shape).astype(np.float32)
    return image.astype(np.float32), label.astype(np.uint8), spacing


def pick_target(label: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """A large object: a 26-connected component of one label value, drawn among those at least 30 % the size
    of the largest (bool (X, Y, Z))."""
    import cc3d

    values = [int(v) for v in np.unique(label) if v != 0]
    if not values:
        raise SetupError("the case's label map has no foreground", hint="choose another dataset with -d")
    candidates = []
    for value in values:
        labels = cc3d.connected_components(label == value, connectivity=26)
        sizes = np.bincount(labels.ravel())
        candidates += [(int(n), value, i) for i, n in enumerate(sizes) if i > 0]
    largest = max(n for n, _, _ in candidates)
    candidates = [c for c in candidates if c[0] >= 0.3 * largest]
    _, value, index = candidates[int(rng.integers(len(candidates)))]
    return cc3d.connected_components(label == value, connectivity=26) == index


def _ball(shape, centre, radius_mm, spacing) -> np.ndarray:
    axes = [(np.arange(n, dtype=np.float32) - c) * s for n, c, s in zip(shape, centre, spacing)]
    return axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2 <= radius_mm**2


def make_predictions(target: np.ndarray, spacing, *, rng: np.random.Generator):
    """(FN-only prediction, FP-only prediction): the target with a ball cut out / a ball added at its border."""
    import edt

    distance = edt.edt(target.view(np.uint8), anisotropy=spacing, black_border=True)
    size = float(distance.max())
    border = np.argwhere((distance > 0) & (distance <= max(spacing) * 1.01))
    centre = border[rng.integers(len(border))]
    missing = target & ~_ball(target.shape, centre, 0.8 * size, spacing)
    if not (target & ~missing).any():
        missing = target.copy()
        missing[tuple(centre)] = False
    outside = np.argwhere(~target & (edt.edt((~target).view(np.uint8), anisotropy=spacing) <= 0.6 * size))
    centre = outside[rng.integers(len(outside))] if len(outside) else centre
    extra = target | _ball(target.shape, centre, 0.6 * size, spacing)
    return missing, extra


def _slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    return np.take(volume, index, axis=axis)


def draw_panel(ax, image, target, prediction, prompt, spacing, title: str) -> None:
    """One panel: the prompt's slice (in-plane axes u, v shown as columns, rows), cropped around the object."""
    from matplotlib.colors import to_rgba

    axis = prompt.axis if prompt.axis is not None else int(np.argmax(spacing))
    index = prompt.index if prompt.index is not None else prompt.coords[axis]
    dims = [d for d in range(3) if d != axis]
    mask = prompt.mask
    img, tgt, msk = (_slice(v, axis, index) for v in (image, target, mask))
    pred = _slice(prediction, axis, index) if prediction is not None else tgt
    fn, fp = tgt & ~pred, pred & ~tgt
    visible = tgt | pred | (msk > 0)
    hits = [np.flatnonzero(visible.any(axis=1 - a)) for a in range(2)]
    lo = [max(0, h[0] - 12) if h.size else 0 for h in hits]
    hi = [min(n, h[-1] + 13) if h.size else n for h, n in zip(hits, img.shape)]
    crop = (slice(lo[0], hi[0]), slice(lo[1], hi[1]))
    img, tgt, msk, fn, fp = (a[crop] for a in (img, tgt, msk, fn, fp))

    aspect = spacing[dims[1]] / spacing[dims[0]]
    extent = (lo[0] - 0.5, hi[0] - 0.5, lo[1] - 0.5, hi[1] - 0.5)
    kw = dict(origin="lower", aspect=aspect, interpolation="nearest", extent=extent)
    finite = img[np.isfinite(img)]
    vmin, vmax = (np.percentile(finite, [1, 99]) if finite.size else (0, 1))
    ax.imshow(img.T, cmap="gray", vmin=vmin, vmax=vmax, **kw)
    overlay = np.zeros((*img.shape, 4), np.float32)
    overlay[fn] = to_rgba("red", 0.5)
    overlay[fp] = to_rgba("dodgerblue", 0.5)
    colour = to_rgba("yellow" if prompt.positive else "magenta")
    overlay[msk > 0] = (*colour[:3], 0.0)
    # Filled prompts stay translucent so the error under them shows; strokes and points are drawn solid.
    strength = 0.5 if prompt.kind in ("bbox", "lasso") else 0.95
    overlay[..., 3] = np.where(msk > 0, strength * (0.4 + 0.6 * msk), overlay[..., 3])
    ax.imshow(overlay.transpose(1, 0, 2), **kw)
    grid_u = np.arange(lo[0], hi[0])
    grid_v = np.arange(lo[1], hi[1])
    if tgt.any():
        ax.contour(grid_u, grid_v, tgt.T.astype(np.float32), levels=[0.5], colors="lime", linewidths=1.0)
    if (msk > 0).any() and prompt.kind in ("bbox", "lasso"):
        ax.contour(grid_u, grid_v, (msk > 0).T.astype(np.float32), levels=[0.5], colors=[colour], linewidths=1.2)
    if prompt.coords is not None:
        ax.plot(prompt.coords[dims[0]], prompt.coords[dims[1]], "+", color="black", markersize=6)
    names = "xyz"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(f"{names[dims[0]]} (slice {names[axis]} = {index})", fontsize=7)
    ax.tick_params(labelsize=6)


def render(image, target, spacing, out: Path, *, seed: int = 0) -> Path:
    """Simulate every kind × column on one case and write the gallery PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from nninteractive_train.simulation import simulate_prompt

    rng = np.random.default_rng(seed)
    missing, extra = make_predictions(target, spacing, rng=rng)
    predictions = (None, missing, extra)
    fig, axes = plt.subplots(len(KINDS), len(COLUMNS), figsize=(3.4 * len(COLUMNS), 3.2 * len(KINDS)),
                             squeeze=False)
    for r, kind in enumerate(KINDS):
        for c, (column, prediction) in enumerate(zip(COLUMNS, predictions)):
            ax = axes[r, c]
            prompt = simulate_prompt(kind, target, prediction, rng=rng, spacing=spacing)
            if prompt is None:
                ax.set_axis_off()
                ax.set_title(f"{kind} · {column}: no prompt", fontsize=9)
                continue
            sign = "+" if prompt.positive else "−"
            shown = kind if prompt.kind == kind else f"{kind}→{prompt.kind} (fallback)"
            draw_panel(ax, image, target, prediction, prompt, spacing, f"{shown} · {column} ({sign})")
    legend = [Patch(facecolor="none", edgecolor="lime", label="target"),
              Patch(color="red", alpha=0.5, label="false negative"),
              Patch(color="dodgerblue", alpha=0.5, label="false positive"),
              Patch(color="yellow", label="positive prompt"),
              Patch(color="magenta", label="negative prompt")]
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=9, frameon=False)
    fig.suptitle(f"simulated prompts (spacing {tuple(round(s, 2) for s in spacing)} mm, seed {seed})", fontsize=11)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="nnInteractive_prompt_gallery", description=__doc__)
    add_dataset_argument(p, "raw dataset in $nnUNet_raw whose first case is drawn; default: a generated case",
                         required=False)
    p.add_argument("--out", required=True, help="output PNG file")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return p


def _run(args: argparse.Namespace) -> int:
    if not args.out.lower().endswith(".png"):
        raise UsageError(f"--out must name a .png file, got {args.out}")
    rng = np.random.default_rng(args.seed)
    if args.dataset_id is not None:
        image, label, spacing = load_raw_case(args.dataset_id)
    else:
        image, label, spacing = synthetic_case(rng)
    target = pick_target(label, rng=rng)
    out = render(image, target, spacing, Path(args.out), seed=args.seed)
    print(f"wrote {out}", file=sys.stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
