"""Segmentation metrics of the interactive evaluation: Dice, normalised surface distance (NSD), AUC over steps.

Conventions (documented because libraries differ): two empty masks agree perfectly (Dice = NSD = 1; MONAI
returns NaN), one empty and one non-empty mask score 0. NSD counts surface *voxels* (MONAI's
``compute_surface_dice`` with ``use_subvoxels=False``), not DeepMind's surface-element areas; the segfm3d
protocol scores NSD with those, as the challenge does (`surface_distance.surface_dice`).
"""

from __future__ import annotations

from typing import Sequence

import edt
import numpy as np
from scipy import ndimage

__all__ = ["dice", "nsd", "surface", "auc"]

def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    return a, b


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice 2|A∩B| / (|A| + |B|) of two masks of the same shape; 1.0 when both are empty."""
    a, b = _pair(a, b)
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(a & b)) / total


def surface(mask: np.ndarray) -> np.ndarray:
    """Surface voxels of a bool mask: voxels of the mask with a 6-neighbour outside it (the volume border counts
    as outside), i.e. ``mask ^ binary_erosion(mask)`` as MONAI's ``get_mask_edges`` computes it."""
    mask = np.asarray(mask, bool)
    cross = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=cross, border_value=0)


def _union_box(a: np.ndarray, b: np.ndarray, margin: int) -> tuple[tuple[slice, ...], tuple[tuple[int, int], ...]]:
    """Bounding box of a | b grown by `margin` (slices inside the volume, plus the zero padding needed beyond it)."""
    union = a | b
    slices, pads = [], []
    for axis in range(union.ndim):
        others = tuple(i for i in range(union.ndim) if i != axis)
        hits = np.flatnonzero(union.any(axis=others))
        lo, hi = int(hits[0]) - margin, int(hits[-1]) + 1 + margin
        slices.append(slice(max(lo, 0), min(hi, union.shape[axis])))
        pads.append((max(-lo, 0), max(hi - union.shape[axis], 0)))
    return tuple(slices), tuple(pads)


def nsd(a: np.ndarray, b: np.ndarray, spacing: Sequence[float] | None = None, tolerance: float = 2.0) -> float:
    """Normalised surface distance (surface Dice) at `tolerance` mm.

    NSD = (|{s ∈ S_A : d(s, S_B) ≤ τ}| + |{s ∈ S_B : d(s, S_A) ≤ τ}|) / (|S_A| + |S_B|), with S the surface voxels
    (see `surface`) and d the Euclidean distance between voxel centres in mm.

    Args:
        a, b: bool masks of the same shape (X, Y, Z).
        spacing: voxel size in mm per array axis (None: 1 mm).
        tolerance: τ in mm (≥ 0).

    Returns:
        NSD in [0, 1]; 1.0 when both masks are empty, 0.0 when exactly one is.
    """
    a, b = _pair(a, b)
    if a.ndim != 3:
        raise ValueError(f"nsd expects 3D masks, got shape {a.shape}")
    spacing = (1.0, 1.0, 1.0) if spacing is None else tuple(float(s) for s in spacing)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing must be 3 positive numbers (mm per axis), got {spacing}")
    if not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0 (mm), got {tolerance}")
    empty_a, empty_b = not a.any(), not b.any()
    if empty_a and empty_b:
        return 1.0
    if empty_a or empty_b:
        return 0.0
    # Crop to the union with a 1-voxel zero margin: surfaces (including those at the volume border, where the
    # padding is outside) and all distances between them are unchanged, and the EDTs stay small.
    box, pads = _union_box(a, b, 1)
    a = np.pad(a[box], pads)
    b = np.pad(b[box], pads)
    sa, sb = surface(a), surface(b)
    tol_sq = float(tolerance) ** 2 * (1 + 1e-6)  # float32 EDT: keep "≤ τ" exact at ties
    # edtsq gives, for every non-zero voxel, the squared distance to the nearest zero voxel: with the surface
    # as the only zeros, that is the squared distance to the nearest surface voxel.
    to_b = edt.edtsq(np.ascontiguousarray(~sb), anisotropy=spacing, black_border=False, parallel=1)
    to_a = edt.edtsq(np.ascontiguousarray(~sa), anisotropy=spacing, black_border=False, parallel=1)
    good = int(np.count_nonzero(to_b[sa] <= tol_sq)) + int(np.count_nonzero(to_a[sb] <= tol_sq))
    return good / (int(np.count_nonzero(sa)) + int(np.count_nonzero(sb)))


def auc(values: Sequence[float]) -> float:
    """Area under a metric-vs-step curve (trapezoid rule, unit steps), divided by the number of intervals so that
    it lies in [0, 1] for values in [0, 1]; the value itself for a single step."""
    v = np.asarray(values, np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"auc needs a non-empty 1D sequence, got shape {v.shape}")
    if v.size == 1:
        return float(v[0])
    return float(((v[1:] + v[:-1]) / 2).sum() / (v.size - 1))
