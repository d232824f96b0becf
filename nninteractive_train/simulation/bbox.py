"""2D bounding-box prompts: a perturbed box around the component on one slice."""

from __future__ import annotations

import numpy as np

from nninteractive_train.simulation.errors import Region
from nninteractive_train.simulation.params import SimulationParams
from nninteractive_train.simulation.planar import pick_slice, plane_prompt
from nninteractive_train.simulation.prompt import Prompt

__all__ = ["jitter_box", "draw_bbox"]


def jitter_box(
    lo,
    hi,
    *,
    rng: np.random.Generator,
    jitter: float = 0.05,
    shift: float = 0.05,
    scale: tuple[float, float] = (0.8, 1.2),
    same_scale_p: float = 0.3,
) -> tuple[np.ndarray, np.ndarray]:
    """Perturb a box [lo, hi) the way a user misplaces it (continuous coordinates, voxel edges).

    With d = hi - lo per axis: each edge moves by U(-jitter, jitter)·d, then the box moves by
    U(-shift, shift)·d, then it is scaled about its centre by U(*scale) per axis (one factor for all axes with
    probability `same_scale_p`).

    Args:
        lo, hi: float arrays (D,), hi > lo.

    Returns:
        (lo, hi) float64 (D,); not rounded or clipped.
    """
    lo = np.asarray(lo, np.float64)
    hi = np.asarray(hi, np.float64)
    d = hi - lo
    ndim = d.size
    lo = lo + rng.uniform(-jitter, jitter, ndim) * d
    hi = hi + rng.uniform(-jitter, jitter, ndim) * d
    move = rng.uniform(-shift, shift, ndim) * d
    lo, hi = lo + move, hi + move
    if rng.random() < same_scale_p:
        factor = np.full(ndim, rng.uniform(*scale))
    else:
        factor = rng.uniform(*scale, ndim)
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * factor
    return centre - half, centre + half


def _round_clip(lo: float, hi: float, size: int) -> tuple[int, int]:
    a, b = int(np.rint(lo)), int(np.rint(hi))
    b = max(b, a + 1)  # a box is at least one voxel wide
    a, b = max(a, 0), min(b, size)
    if b <= a:  # entirely outside after the shift: keep the nearest voxel row
        a = min(max(a, 0), size - 1)
        b = a + 1
    return a, b


def draw_bbox(region: Region, *, rng: np.random.Generator, spacing, params: SimulationParams) -> Prompt:
    """A filled 2D box prompt on a slice of `region` (slice drawn ∝ voxels per slice ^ params.slice_power)."""
    plane = pick_slice(region, rng=rng, power=params.slice_power)
    lo = np.asarray(plane.offset, np.float64)
    hi = lo + np.asarray(plane.mask.shape)
    lo, hi = jitter_box(lo, hi, rng=rng, jitter=params.bbox_jitter, shift=params.bbox_shift,
                        scale=params.bbox_scale, same_scale_p=params.bbox_same_scale_p)
    edges = [_round_clip(a, b, n) for a, b, n in zip(lo, hi, plane.shape)]
    bbox = [[0, 0], [0, 0], [0, 0]]
    bbox[plane.axis] = [plane.index, plane.index + 1]
    for d, (a, b) in zip(plane.dims, edges):
        bbox[d] = [a, b]
    patch = np.ones([b - a for a, b in edges], bool)
    return plane_prompt("bbox", plane, patch, [a for a, _ in edges], bbox=bbox)
