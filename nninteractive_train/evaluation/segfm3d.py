"""The CVPR 2025 SegFM3D challenge's evaluation rules, as its own script computes them.

Source: ``CVPR25_iter_eval.py``, ``SurfaceDice.py`` and ``get_boxes.py`` of the public repository
JunMa11/CVPR-MedSegFMCompetition (commit 748e862, 2025-06-03). Per case, all classes (label values) together:

- initial prompt (step 1): a box per class (`challenge_box`): the class's z range along array axis 0 and its 2D
  box on the middle one of the slices it occupies, widened by a random 0–5 voxels (scaled by size / 256);
- steps 2..6: one click per class and step (`challenge_click`), at the centre (EDT maximum, in voxels) of the
  largest 26-connected error component, positive on an FN voxel, negative on an FP voxel; none for a class
  that has no error left (the model still runs: there is no early stop);
- after each step: DSC = mean over the classes of their Dice, NSD = mean over the classes of their surface
  Dice at 2 mm by surfel areas (`surface_distance.surface_dice`), computed only when that step's DSC > 0.2 and
  0 otherwise (`case_metrics`);
- DSC_AUC / NSD_AUC: trapezoid over the click steps only (2..6, unit spacing: range [0, 4]; the box step is
  left out because the box prompt is optional), DSC_Final / NSD_Final: the last step (`challenge_auc`).

Array axes: (Z, Y, X) as the challenge's npz files (nnU-Net's SimpleITK reader gives the same order); the
challenge's "x" is array axis 2 and "y" array axis 1.
"""

from __future__ import annotations

from typing import Sequence

import cc3d
import numpy as np
from scipy import ndimage

from nninteractive_train.evaluation.surface_distance import surface_dice

__all__ = ["N_CLICKS", "NSD_TOLERANCE", "DSC_GATE", "challenge_classes", "challenge_box", "box_to_prompt",
           "challenge_click", "challenge_auc", "case_metrics", "multi_class_dsc", "multi_class_nsd"]

N_CLICKS = 5  # clicks after the box
NSD_TOLERANCE = 2.0  # mm
DSC_GATE = 0.2  # NSD is computed only when the step's mean DSC exceeds this; 0 otherwise
_LARGE_ROI = 60_000_000  # voxels of the padded crop above which the challenge takes the EDT at half resolution
_SEED = 42  # the challenge reseeds numpy's legacy generator with 42 before every click


def challenge_classes(gt: np.ndarray) -> np.ndarray:
    """The classes the challenge scores: the sorted unique values of `gt` without the first (the background 0
    whenever it is present; the challenge drops the smallest value whatever it is)."""
    return np.unique(np.asarray(gt))[1:]


def challenge_box(target: np.ndarray, shift: int = 0) -> dict[str, int]:
    """The challenge's box of one class (get_boxes.py ``mask3D_to_bbox``).

    Args:
        target: bool (Z, Y, X), the class.
        shift: the random widening, an integer in [0, 5] (the challenge draws it with ``randint(0, 6)``); the
            box grows by ``int(shift * X / 256)`` along x and ``int(shift * Y / 256)`` along y, clipped to the
            image.

    Returns:
        {"z_min", "z_max", "z_mid", "z_mid_x_min", "z_mid_y_min", "z_mid_x_max", "z_mid_y_max"}, inclusive
        voxel indices; z_mid is the middle one of the slices holding the class (``unique(z)[n // 2]``), which
        can differ from (z_min + z_max) // 2 when the class skips slices.
    """
    target = np.asarray(target, bool)
    if target.ndim != 3 or not target.any():
        raise ValueError(f"challenge_box needs a non-empty 3D mask, got shape {target.shape}")
    if not 0 <= int(shift) <= 5:
        raise ValueError(f"shift must be an integer in [0, 5], got {shift}")
    zs = np.flatnonzero(target.any(axis=(1, 2)))
    z_mid = int(zs[len(zs) // 2])
    ys = np.flatnonzero(target[z_mid].any(axis=1))
    xs = np.flatnonzero(target[z_mid].any(axis=0))
    height, width = target.shape[1:]
    dx, dy = int(int(shift) * width / 256), int(int(shift) * height / 256)
    return {"z_min": int(zs[0]), "z_max": int(zs[-1]), "z_mid": z_mid,
            "z_mid_x_min": max(0, int(xs[0]) - dx), "z_mid_y_min": max(0, int(ys[0]) - dy),
            "z_mid_x_max": min(width - 1, int(xs[-1]) + dx), "z_mid_y_max": min(height - 1, int(ys[-1]) + dy)}


def box_to_prompt(box: dict[str, int]) -> list[list[int]]:
    """The challenge box as the inference session's 2D box on slice z_mid: [[z, z + 1], [y0, y1 + 1],
    [x0, x1 + 1]] (half-open). The z range (z_min, z_max) has no place in a 2D box and is not used."""
    return [[box["z_mid"], box["z_mid"] + 1], [box["z_mid_y_min"], box["z_mid_y_max"] + 1],
            [box["z_mid_x_min"], box["z_mid_x_max"] + 1]]


def _component_edt(component: np.ndarray) -> np.ndarray:
    """The challenge's ``compute_edt``: EDT (voxel units) of one component, in a crop of its bounding box padded
    by max(25 %, 1 voxel) per side with background, so that the volume border counts as boundary; taken at
    half resolution (2×2×2 max-pooling, distances in half-resolution voxels, repeated back) when the padded crop
    exceeds 60 M voxels, as the challenge does."""
    coords = np.argwhere(component)
    lo, hi = coords.min(axis=0), coords.max(axis=0) + 1
    size = hi - lo
    pad = np.maximum((size * 0.25).astype(int), 1)
    crop = np.zeros(size + 2 * pad, np.uint8)
    crop[tuple(slice(p, p + s) for p, s in zip(pad, size))] = component[tuple(slice(a, b) for a, b in zip(lo, hi))]
    if crop.size > _LARGE_ROI:
        # skimage's block_reduce(block_size=(2, 2, 2), func=np.max): zero-pad to even sizes, then max-pool.
        even = np.pad(crop, [(0, s % 2) for s in crop.shape])
        small = even.reshape(even.shape[0] // 2, 2, even.shape[1] // 2, 2, even.shape[2] // 2, 2).max(axis=(1, 3, 5))
        dist = ndimage.distance_transform_edt(small)
        dist = dist.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
    else:
        dist = ndimage.distance_transform_edt(crop)
    full = np.zeros(component.shape, dist.dtype)
    full[tuple(slice(a, b) for a, b in zip(lo, hi))] = dist[tuple(slice(p, p + s) for p, s in zip(pad, size))]
    return full


def challenge_click(target: np.ndarray, prediction: np.ndarray) -> tuple[tuple[int, int, int], bool] | None:
    """The challenge's refinement click for one class.

    The error ``target != prediction`` is split into 26-connected components (cc3d); in the largest (the lowest
    label on ties) the click goes to a voxel of maximal EDT (`_component_edt`, voxel units whatever the
    spacing), chosen among all maxima by ``np.random.seed(42); np.random.choice(n)`` over them in C order, as
    the challenge's ``sample_coord``. If the EDT is 0 on the whole component (possible only at half
    resolution), any voxel of the component is a candidate.

    Args:
        target, prediction: bool (Z, Y, X), the class in the ground truth and in the current prediction.

    Returns:
        ((z, y, x), positive): positive (a foreground click) when the voxel is in the target (an FN), negative
        (background) when not (an FP); None when the prediction has no error (the challenge gives no click).
    """
    target = np.asarray(target, bool)
    prediction = np.asarray(prediction, bool)
    if target.shape != prediction.shape or target.ndim != 3:
        raise ValueError(f"target {target.shape} and prediction {prediction.shape} must be 3D of one shape")
    error = target != prediction
    if not error.any():
        return None
    labels = cc3d.connected_components(error.astype(np.uint8), connectivity=26)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    component = labels == int(np.argmax(sizes))
    dist = _component_edt(component) * component
    if not dist.any():
        dist = component.astype(np.float64)
    candidates = np.argwhere(dist == dist.max())
    chosen = candidates[np.random.RandomState(_SEED).choice(len(candidates))]
    click = tuple(int(c) for c in chosen)
    return click, bool(target[click])


def challenge_auc(values: Sequence[float], n_clicks: int = N_CLICKS) -> float:
    """The challenge's AUC: ``cumulative_trapezoid(values[-n_clicks:], arange(n_clicks))[-1]``, i.e. the
    trapezoid area (unit spacing, not normalised: in [0, n_clicks - 1]) over the last `n_clicks` steps.

    Returns:
        The area; NaN when fewer than 2 click steps exist (scipy's result is then empty and the challenge's
        script would fail).
    """
    v = np.asarray(values, np.float64)
    if v.ndim != 1:
        raise ValueError(f"challenge_auc needs a 1D sequence, got shape {v.shape}")
    v = v[-n_clicks:] if n_clicks > 0 else v[:0]
    if v.size < 2:
        return float("nan")
    return float(((v[1:] + v[:-1]) / 2).sum())


def case_metrics(dice: np.ndarray, nsd: np.ndarray, n_clicks: int = N_CLICKS) -> dict[str, float]:
    """One case's challenge metrics from its per-class, per-step Dice and (ungated) NSD.

    Args:
        dice, nsd: float (C, S): C classes, S = 1 + n_clicks steps (box, then clicks).
        n_clicks: click steps (the AUC runs over the last n_clicks steps).

    Returns:
        "DSC_1".."DSC_S", "NSD_1".."NSD_S" (the per-step means; NSD_s = 0 where DSC_s ≤ 0.2), "DSC_AUC",
        "NSD_AUC", "DSC_Final", "NSD_Final", "num_class".
    """
    dice, nsd = np.asarray(dice, np.float64), np.asarray(nsd, np.float64)
    if dice.ndim != 2 or dice.shape != nsd.shape or dice.shape[0] == 0:
        raise ValueError(f"dice and nsd must be (classes, steps) of one shape, got {dice.shape} and {nsd.shape}")
    dsc = dice.mean(axis=0)
    gated = np.where(dsc > DSC_GATE, nsd.mean(axis=0), 0.0)
    out = {f"DSC_{s + 1}": float(v) for s, v in enumerate(dsc)}
    out.update({f"NSD_{s + 1}": float(v) for s, v in enumerate(gated)})
    out.update(DSC_AUC=challenge_auc(dsc, n_clicks), NSD_AUC=challenge_auc(gated, n_clicks),
               DSC_Final=float(dsc[-1]), NSD_Final=float(gated[-1]), num_class=int(dice.shape[0]))
    return out


def multi_class_dsc(gt: np.ndarray, seg: np.ndarray) -> float:
    """The challenge's ``compute_multi_class_dsc``: mean Dice over `challenge_classes` of label maps (Z, Y, X)."""
    gt, seg = np.asarray(gt), np.asarray(seg)
    dsc = []
    for c in challenge_classes(gt):
        g, s = gt == c, seg == c
        dsc.append(2.0 * np.count_nonzero(g & s) / (np.count_nonzero(g) + np.count_nonzero(s)))
    return float(np.mean(dsc))


def multi_class_nsd(gt: np.ndarray, seg: np.ndarray, spacing: Sequence[float],
                    tolerance: float = NSD_TOLERANCE) -> float:
    """The challenge's ``compute_multi_class_nsd``: mean surfel NSD over `challenge_classes` (no DSC gate:
    the challenge applies it around this call)."""
    gt, seg = np.asarray(gt), np.asarray(seg)
    return float(np.mean([surface_dice(gt == c, seg == c, spacing, tolerance) for c in challenge_classes(gt)]))
