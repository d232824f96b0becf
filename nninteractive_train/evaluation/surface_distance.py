"""Surface distances by surface elements ("surfels"), as DeepMind's ``surface-distance`` package computes them.

The CVPR 2025 SegFM3D challenge scores NSD with DeepMind's code (a copy of it, ``SurfaceDice.py``, in the
challenge repository). This is our own numpy/scipy implementation of the same computation, checked against both
in tests/evaluation/test_eval_surface_distance.py:

1. every corner of the voxel grid gets a neighbour code: the 8 voxels around it (outside the volume counts as
   background) as an 8-bit pattern;
2. a corner is on the surface when its code is neither 0 nor 255; its surface element is the marching-cubes
   surface through that 2×2×2 cube, whose area (mm², from the spacing) comes from a table of 256 codes;
3. each surface corner's distance (mm) to the nearest surface corner of the other mask is an exact Euclidean
   distance transform;
4. surface Dice at tolerance τ = (area of A's surfels within τ of B + area of B's surfels within τ of A) /
   (area of A's surfels + area of B's surfels).

Axes: masks are (X, Y, Z) arrays in any axis order, with ``spacing`` in mm per array axis, in the same order.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["surfel_area_table", "neighbour_codes", "surface_distances", "surface_dice"]

# For each neighbour code 0..255 (bit 7 = corner (0, 0, 0) of the 2×2×2 cube ... bit 0 = corner (1, 1, 1), in
# C order), the normals of the marching-cubes triangles of that cube, ×8 so that they are integers; a normal's
# length is its triangle's area in voxel units. Data of DeepMind's surface-distance (lookup_tables.py,
# Apache-2.0, https://github.com/deepmind/surface-distance), identical to the table in the challenge's
# SurfaceDice.py. Codes are separated by "|", a code's normals by ";".
_NORMALS_X8 = (
    "0,0,0|1,1,1|-1,-1,1|-2,-2,0;2,2,0|"
    "1,-1,1|-2,0,-2;2,0,2|1,-1,1;-1,-1,1|4,0,0;2,2,2;1,1,1|"
    "-1,1,1|1,1,1;-1,1,1|-2,0,2;-2,0,2|4,0,0;-2,-2,2;-1,-1,1|"
    "2,-2,0;2,-2,0|4,0,0;2,-2,2;-1,1,-1|-4,0,0;-2,2,2;-1,1,1|4,0,0;4,0,0|"
    "1,-1,-1|0,-2,-2;0,2,2|-1,-1,1;1,-1,-1|0,-4,0;2,2,2;1,1,1|"
    "1,-1,1;1,-1,-1|0,0,-4;2,2,2;-1,-1,-1|-1,-1,1;1,-1,1;1,-1,-1|-1,-1,-1;-2,-2,-2;2,2,2;1,1,1|"
    "-1,1,1;1,-1,-1|0,-2,-2;0,2,2;-1,1,1|-2,0,2;-2,0,2;1,-1,-1|1,1,1;3,3,3;0,-2,2;-2,0,2|"
    "1,-1,-1;2,-2,0;2,-2,0|3,3,3;0,2,-2;-1,-1,-1;-2,2,0|-4,0,0;-1,-1,-1;-2,-2,-2;1,1,1|-4,0,0;-1,-1,-1;-2,-2,-2|"
    "1,-1,1|1,1,1;1,-1,1|0,-2,2;0,2,-2|0,-4,0;1,1,-1;2,2,-2|"
    "1,-1,1;1,-1,1|1,-1,1;-2,0,-2;2,0,2|0,-2,2;0,2,-2;1,-1,1|-3,-3,3;0,2,2;1,1,-1;-2,0,-2|"
    "-1,1,1;1,-1,1|1,1,1;1,-1,1;-1,1,1|0,0,4;-2,-2,2;-1,-1,1|2,2,-2;2,2,-2;1,1,-1;-1,-1,1|"
    "1,-1,1;2,-2,0;2,-2,0|4,0,0;2,-2,2;-1,1,-1;1,-1,1|0,2,-2;3,-3,-3;-1,1,1;2,2,0|-4,0,0;-2,-2,2;-1,-1,1|"
    "2,-2,0;-2,2,0|0,4,0;-2,2,2;1,-1,-1|0,4,0;1,-1,1;-2,2,-2|0,4,0;0,-4,0|"
    "2,-2,0;-2,2,0;1,-1,1|-3,-3,-3;-2,0,2;-1,-1,-1;-2,2,0|1,1,1;0,-4,0;-2,-2,-2;-1,-1,-1|0,-4,0;-2,-2,-2;-1,-1,-1|"
    "-1,1,1;2,-2,0;-2,2,0|0,4,0;2,2,-2;-1,-1,1;-1,-1,1|-3,3,-3;-2,-2,0;-1,1,-1;-2,0,2|0,4,0;2,2,-2;-1,-1,1|"
    "2,-2,0;-2,2,0;2,-2,0;2,-2,0|-2,-2,0;-2,-2,0;-1,-1,1|1,1,1;-2,-2,0;-2,-2,0|-2,-2,0;-2,-2,0|"
    "-1,-1,1|1,1,1;-1,-1,1|-1,-1,1;-1,-1,1|-1,-1,1;-2,-2,0;2,2,0|"
    "0,-2,2;0,-2,2|0,0,4;2,-2,2;1,-1,1|0,-2,2;0,-2,2;-1,-1,1|3,-3,3;0,-2,-2;-1,1,-1;2,2,0|"
    "-1,-1,1;-1,1,1|1,1,1;-1,-1,1;-1,1,1|-1,-1,1;-2,0,2;-2,0,2|4,0,0;-2,-2,2;-1,-1,1;-1,-1,1|"
    "0,4,0;-2,2,-2;1,-1,1|-2,2,-2;-2,2,-2;-1,1,-1;-1,1,-1|-2,0,-2;3,-3,-3;0,2,-2;-1,1,1|4,0,0;-2,2,-2;1,-1,1|"
    "-2,0,2;2,0,-2|0,0,4;-2,2,2;-1,1,1|-1,-1,1;-2,0,2;2,0,-2|-2,0,-2;-3,3,3;-2,-2,0;-1,1,1|"
    "0,0,-4;2,2,-2;-1,-1,1|0,0,4;0,0,4|1,1,1;1,1,1;2,2,2;0,0,4|1,1,1;2,2,2;0,0,4|"
    "-2,0,2;2,0,-2;-1,1,1|0,0,4;2,-2,2;1,-1,1;1,-1,1|-2,0,2;-2,0,2;-2,0,2;2,0,-2|1,-1,1;2,0,2;2,0,2|"
    "2,0,2;-3,-3,3;-2,2,0;-1,-1,1|0,0,4;2,-2,2;1,-1,1|1,1,1;2,0,2;2,0,2|2,0,2;2,0,2|"
    "-1,-1,1;1,-1,1|1,1,1;-1,-1,1;1,-1,1|-1,-1,1;0,-2,2;0,2,-2|0,-4,0;1,1,-1;2,2,-2;-1,-1,1|"
    "0,-2,2;0,-2,2;1,-1,1|0,0,4;2,-2,2;1,-1,1;1,-1,1|0,-2,2;0,-2,2;0,-2,2;0,2,-2|0,2,2;0,2,2;1,-1,-1|"
    "-1,1,1;1,-1,1;-1,-1,1|-1,1,1;1,-1,1;-1,-1,1;1,1,1|0,0,4;-2,-2,2;-1,-1,1;-1,-1,1|1,1,1;1,-1,1;1,-1,-1|"
    "0,4,0;-2,2,-2;1,-1,1;1,-1,1|1,1,1;-1,-1,1;1,-1,-1|0,-2,-2;0,2,2;1,1,1|1,1,1;1,-1,-1|"
    "4,0,0;2,-2,-2;1,-1,-1|-2,2,2;-1,1,1;-2,2,2;1,-1,-1|3,-3,3;0,2,2;-1,1,-1;-2,0,2|0,-4,0;-2,2,2;-1,1,1|"
    "-3,-3,3;2,-2,0;0,2,2;-1,-1,1|-1,1,1;-2,2,2;0,0,4|1,1,1;0,2,2;0,2,2|0,2,2;0,2,2|"
    "4,0,0;2,2,2;1,1,1;1,1,1|1,-1,1;-1,-1,1;1,1,1|-2,0,-2;2,0,2;1,1,1|1,1,1;1,-1,1|"
    "-2,-2,0;2,2,0;1,1,1|1,1,1;-1,-1,1|1,1,1;1,1,1|1,1,1|"
    "1,1,1|1,1,1;1,1,1|1,1,1;-1,-1,1|-2,-2,0;2,2,0;1,1,1|"
    "1,1,1;1,-1,1|-2,0,-2;2,0,2;1,1,1|1,-1,1;-1,-1,1;1,1,1|4,0,0;2,2,2;1,1,1;1,1,1|"
    "0,2,2;0,2,2|1,1,1;0,2,2;0,2,2|-1,1,1;-2,2,2;0,0,4|-3,-3,3;2,-2,0;0,2,2;-1,-1,1|"
    "0,-4,0;-2,2,2;-1,1,1|3,-3,3;0,2,2;-1,1,-1;-2,0,2|-2,2,2;-1,1,1;-2,2,2;1,-1,-1|4,0,0;2,-2,-2;1,-1,-1|"
    "1,1,1;1,-1,-1|0,-2,-2;0,2,2;1,1,1|1,1,1;-1,-1,1;1,-1,-1|0,4,0;-2,2,-2;1,-1,1;1,-1,1|"
    "1,1,1;1,-1,1;1,-1,-1|0,0,4;-2,-2,2;-1,-1,1;-1,-1,1|-1,1,1;1,-1,1;-1,-1,1;1,1,1|-1,1,1;1,-1,1;-1,-1,1|"
    "0,2,2;0,2,2;1,-1,-1|0,-2,-2;0,2,2;0,2,2;0,2,2|0,0,4;2,-2,2;1,-1,1;1,-1,1|0,-2,2;0,-2,2;1,-1,1|"
    "0,-4,0;1,1,-1;2,2,-2;-1,-1,1|-1,-1,1;0,-2,2;0,2,-2|1,1,1;-1,-1,1;1,-1,1|-1,-1,1;1,-1,1|"
    "2,0,2;2,0,2|1,1,1;2,0,2;2,0,2|0,0,4;2,-2,2;1,-1,1|2,0,2;-3,-3,3;-2,2,0;-1,-1,1|"
    "1,-1,1;2,0,2;2,0,2|-2,0,-2;2,0,2;2,0,2;2,0,2|0,0,4;2,-2,2;1,-1,1;1,-1,1|-2,0,2;2,0,-2;-1,1,1|"
    "1,1,1;2,2,2;0,0,4|1,1,1;1,1,1;2,2,2;0,0,4|0,0,4;0,0,4|0,0,-4;2,2,-2;-1,-1,1|"
    "-2,0,-2;-3,3,3;-2,-2,0;-1,1,1|-1,-1,1;-2,0,2;2,0,-2|0,0,4;-2,2,2;-1,1,1|-2,0,2;2,0,-2|"
    "4,0,0;-2,2,-2;1,-1,1|-2,0,-2;3,-3,-3;0,2,-2;-1,1,1|-2,2,-2;-2,2,-2;-1,1,-1;-1,1,-1|0,4,0;-2,2,-2;1,-1,1|"
    "4,0,0;-2,-2,2;-1,-1,1;-1,-1,1|-1,-1,1;-2,0,2;-2,0,2|1,1,1;-1,-1,1;-1,1,1|-1,-1,1;-1,1,1|"
    "3,-3,3;0,-2,-2;-1,1,-1;2,2,0|0,-2,2;0,-2,2;-1,-1,1|0,0,4;2,-2,2;1,-1,1|0,-2,2;0,-2,2|"
    "-1,-1,1;-2,-2,0;2,2,0|-1,-1,1;-1,-1,1|1,1,1;-1,-1,1|-1,-1,1|"
    "-2,-2,0;-2,-2,0|1,1,1;-2,-2,0;-2,-2,0|-2,-2,0;-2,-2,0;-1,-1,1|-2,-2,0;-2,-2,0;-2,-2,0;2,2,0|"
    "0,4,0;2,2,-2;-1,-1,1|-3,3,-3;-2,-2,0;-1,1,-1;-2,0,2|0,4,0;2,2,-2;-1,-1,1;-1,-1,1|-1,1,1;2,-2,0;-2,2,0|"
    "0,-4,0;-2,-2,-2;-1,-1,-1|1,1,1;0,-4,0;-2,-2,-2;-1,-1,-1|-3,-3,-3;-2,0,2;-1,-1,-1;-2,2,0|2,-2,0;-2,2,0;1,-1,1|"
    "0,4,0;0,-4,0|0,4,0;1,-1,1;-2,2,-2|0,4,0;-2,2,2;1,-1,-1|2,-2,0;-2,2,0|"
    "-4,0,0;-2,-2,2;-1,-1,1|0,2,-2;3,-3,-3;-1,1,1;2,2,0|4,0,0;2,-2,2;-1,1,-1;1,-1,1|1,-1,1;2,-2,0;2,-2,0|"
    "2,2,-2;2,2,-2;1,1,-1;-1,-1,1|0,0,4;-2,-2,2;-1,-1,1|1,1,1;1,-1,1;-1,1,1|-1,1,1;1,-1,1|"
    "-3,-3,3;0,2,2;1,1,-1;-2,0,-2|0,-2,2;0,2,-2;1,-1,1|1,-1,1;-2,0,-2;2,0,2|1,-1,1;1,-1,1|"
    "0,-4,0;1,1,-1;2,2,-2|0,-2,2;0,2,-2|1,1,1;1,-1,1|1,-1,1|"
    "-4,0,0;-1,-1,-1;-2,-2,-2|-4,0,0;-1,-1,-1;-2,-2,-2;1,1,1|3,3,3;0,2,-2;-1,-1,-1;-2,2,0|1,-1,-1;2,-2,0;2,-2,0|"
    "1,1,1;3,3,3;0,-2,2;-2,0,2|-2,0,2;-2,0,2;1,-1,-1|0,-2,-2;0,2,2;-1,1,1|-1,1,1;1,-1,-1|"
    "-1,-1,-1;-2,-2,-2;2,2,2;1,1,1|-1,-1,1;1,-1,1;1,-1,-1|0,0,-4;2,2,2;-1,-1,-1|1,-1,1;1,-1,-1|"
    "0,-4,0;2,2,2;1,1,1|-1,-1,1;1,-1,-1|0,-2,-2;0,2,2|1,-1,-1|"
    "4,0,0;4,0,0|-4,0,0;-2,2,2;-1,1,1|4,0,0;2,-2,2;-1,1,-1|2,-2,0;2,-2,0|"
    "4,0,0;-2,-2,2;-1,-1,1|-2,0,2;-2,0,2|1,1,1;-1,1,1|-1,1,1|"
    "4,0,0;2,2,2;1,1,1|1,-1,1;-1,-1,1|-2,0,-2;2,0,2|1,-1,1|"
    "-2,-2,0;2,2,0|-1,-1,1|1,1,1|0,0,0")
# Bit weight of each corner (a, b, c) of the 2×2×2 cube: 2 ** (7 - (4a + 2b + c)), as DeepMind's kernel.
_CORNERS = [(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)]


def _normals() -> list[np.ndarray]:
    """The table as 256 float arrays of shape (T, 3) (T triangles; the empty codes have one zero normal)."""
    return [np.array([[int(v) for v in n.split(",")] for n in code.split(";")], np.float64) / 8.0
            for code in _NORMALS_X8.split("|")]


def surfel_area_table(spacing: Sequence[float]) -> np.ndarray:
    """Area in mm² of the surface element of each neighbour code, for voxels of `spacing` mm.

    A triangle with normal n (voxel units) in a grid of spacing (s0, s1, s2) has the normal
    (n0·s1·s2, n1·s0·s2, n2·s0·s1), whose length is its area in mm².

    Returns:
        float64 (256,).
    """
    s0, s1, s2 = (float(s) for s in spacing)
    scale = np.array([s1 * s2, s0 * s2, s0 * s1])
    return np.array([np.linalg.norm(n * scale, axis=1).sum() for n in _normals()])


def neighbour_codes(mask: np.ndarray) -> np.ndarray:
    """Neighbour code of every corner of the voxel grid of a 3D bool mask.

    Corner (i, j, k) lies between voxels (i-1..i, j-1..j, k-1..k); voxels outside the array count as 0.

    Returns:
        uint8 (X + 1, Y + 1, Z + 1).
    """
    padded = np.pad(np.asarray(mask, bool), 1).astype(np.uint8)
    nx, ny, nz = (s - 1 for s in padded.shape)
    codes = np.zeros((nx, ny, nz), np.uint8)
    for bit, (a, b, c) in zip(range(7, -1, -1), _CORNERS):
        codes |= padded[a:a + nx, b:b + ny, c:c + nz] << bit
    return codes


def _check(gt: np.ndarray, pred: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape or gt.ndim != 3:
        raise ValueError(f"surface distances need two 3D masks of one shape, got {gt.shape} and {pred.shape}")
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing must be 3 positive numbers (mm per array axis), got {spacing}")
    return gt.astype(bool, copy=False), pred.astype(bool, copy=False), spacing


def surface_distances(gt: np.ndarray, pred: np.ndarray, spacing: Sequence[float]) -> dict[str, np.ndarray]:
    """Surface elements of two masks, their areas and their distances to the other mask's surface.

    As DeepMind's ``compute_surface_distances`` (its distances are sorted, these are in C order of the corners:
    every sum over them is the same): an empty mask has no surfels, and the other mask's surfels are then at
    distance inf.

    Args:
        gt, pred: bool (X, Y, Z).
        spacing: mm per array axis.

    Returns:
        "distances_gt_to_pred", "surfel_areas_gt" (float64 (N_gt,)) and "distances_pred_to_gt",
        "surfel_areas_pred" (float64 (N_pred,)); distances in mm, areas in mm².
    """
    gt, pred, spacing = _check(gt, pred, spacing)
    union = gt | pred
    if not union.any():
        empty = np.zeros(0)
        return {"distances_gt_to_pred": empty, "surfel_areas_gt": empty,
                "distances_pred_to_gt": empty, "surfel_areas_pred": empty}
    # Crop to the union's bounding box: the codes of corners outside it are 0 for both masks.
    box = ndimage.find_objects(union.astype(np.uint8))[0]
    areas = surfel_area_table(spacing)
    codes = [neighbour_codes(m[box]) for m in (gt, pred)]
    borders = [(c != 0) & (c != 255) for c in codes]
    # Distance of every corner to the nearest surface corner of each mask (inf when that mask has none).
    dist = [ndimage.distance_transform_edt(~b, sampling=spacing) if b.any() else np.full(b.shape, np.inf)
            for b in borders]
    return {"distances_gt_to_pred": dist[1][borders[0]], "surfel_areas_gt": areas[codes[0][borders[0]]],
            "distances_pred_to_gt": dist[0][borders[1]], "surfel_areas_pred": areas[codes[1][borders[1]]]}


def surface_dice(gt: np.ndarray, pred: np.ndarray, spacing: Sequence[float], tolerance: float = 2.0) -> float:
    """Normalised surface Dice (NSD) at `tolerance` mm by surfel areas, as DeepMind's
    ``compute_surface_dice_at_tolerance(compute_surface_distances(gt, pred, spacing), tolerance)``.

    Returns:
        NSD in [0, 1]: 0.0 when exactly one mask is empty, NaN when both are (0 / 0, as DeepMind's).
    """
    if not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0 (mm), got {tolerance}")
    d = surface_distances(gt, pred, spacing)
    total = d["surfel_areas_gt"].sum() + d["surfel_areas_pred"].sum()
    if total == 0:
        return float("nan")
    good = (d["surfel_areas_gt"][d["distances_gt_to_pred"] <= tolerance].sum()
            + d["surfel_areas_pred"][d["distances_pred_to_gt"] <= tolerance].sum())
    return float(good / total)
