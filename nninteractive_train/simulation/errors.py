"""Which region a prompt is drawn for: the target (initial prompt) or one error component (follow-up).

Cost notes (192³, one core): the only full-volume passes are one uint8 subtraction, three `any` projections
(bounding box of the error) and one `cc3d` labelling of that bounding box. Component sizes are never counted:
a component chosen with probability ∝ its size is the component of a uniformly drawn error voxel.

Fragmentation (bbox and lasso follow-ups) multiplies the error by thresholded Perlin noise before the
component analysis, evaluated only inside the chosen component: the pieces are exactly the components of
(error × noise) that lie in it, and a piece is chosen ∝ its size within the component. Compared with
fragmenting the whole error first, a component is chosen ∝ its size before thresholding (not after), which
also keeps tiny errors that the noise would erase promptable. Noise is never computed on the full volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cc3d
import numpy as np

from nninteractive_train.simulation.noise import perlin

__all__ = ["Region", "bounding_box", "pick_target", "pick_error", "fragment", "error_labels"]


@dataclass(frozen=True, eq=False)
class Region:
    """A component to prompt: `mask` is a bool crop (its tight bounding box) at `offset` in a volume of `shape`."""

    mask: np.ndarray
    offset: tuple[int, int, int]
    shape: tuple[int, int, int]
    positive: bool

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(o, o + s) for o, s in zip(self.offset, self.mask.shape))


def bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Tight bounding box of the non-zero voxels of a 2D or 3D array (one slice per axis), or None if none."""
    if mask.ndim == 3:
        # Two passes instead of three: the (X, Y) projection gives both X and Y ranges, and the Z range is
        # then searched only inside them.
        xy = mask.any(axis=2)
        xs, ys = np.flatnonzero(xy.any(axis=1)), np.flatnonzero(xy.any(axis=0))
        if xs.size == 0:
            return None
        inner = mask[xs[0]:xs[-1] + 1, ys[0]:ys[-1] + 1]
        zs = np.flatnonzero(inner.any(axis=(0, 1)))
        return tuple(slice(int(h[0]), int(h[-1]) + 1) for h in (xs, ys, zs))
    box = []
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=others) if others else mask)
        if hits.size == 0:
            return None
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def _region(mask: np.ndarray, offset: Sequence[int], shape, positive: bool) -> Region:
    box = bounding_box(mask)
    return Region(
        mask=np.ascontiguousarray(mask[box]),
        offset=tuple(int(o) + b.start for o, b in zip(offset, box)),
        shape=tuple(int(s) for s in shape),
        positive=bool(positive),
    )


def pick_target(target: np.ndarray) -> Region | None:
    """The whole target (all its components) as a positive region; None when it is empty."""
    box = bounding_box(target)
    if box is None:
        return None
    return Region(np.ascontiguousarray(target[box]), tuple(b.start for b in box), target.shape, True)


def _nth_nonzero(array: np.ndarray, n: int) -> tuple[int, ...]:
    """Index of the n-th non-zero element of a 3D array in C order, touching one x-slab densely."""
    per_slab = np.count_nonzero(array, axis=(1, 2))
    cumulative = np.cumsum(per_slab)
    i = int(np.searchsorted(cumulative, n, side="right"))
    n -= int(cumulative[i - 1]) if i else 0
    j, k = np.unravel_index(np.flatnonzero(array[i])[n], array.shape[1:])
    return i, int(j), int(k)


def error_labels(target: np.ndarray, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Error components of bool (X, Y, Z) masks, for analysis and tests (the simulation avoids this full pass).

    Returns:
        labels: uint32 (X, Y, Z), 0 = no error, 1..N the 26-connected FN and FP components (FN and FP never
            share a component), and positive: bool (N + 1,), True for FN components (index 0 unused).
    """
    err = target.view(np.uint8) - prediction.view(np.uint8)  # 1: FN, 255: FP (uint8 wrap-around)
    labels, n = cc3d.connected_components(err, connectivity=26, return_N=True, out_dtype=np.uint32)
    positive = np.zeros(n + 1, bool)
    flat_labels, flat_err = labels.ravel(), err.ravel()
    nz = np.flatnonzero(flat_labels)
    positive[flat_labels[nz]] = flat_err[nz] == 1
    return labels, positive


def pick_error(target: np.ndarray, prediction: np.ndarray, *, rng: np.random.Generator) -> Region | None:
    """One 26-connected error component, chosen with probability ∝ its size; None when prediction == target.

    Args:
        target, prediction: bool (X, Y, Z).
        rng: random source.

    Returns:
        The component as a Region; positive for a false-negative component, negative for a false positive.
    """
    # One uint8 pass encodes both error kinds, and cc3d's multi-label mode keeps FN and FP apart.
    err = target.view(np.uint8) - prediction.view(np.uint8)  # 1: FN, 255: FP (uint8 wrap-around)
    box = bounding_box(err)
    if box is None:
        return None
    crop = np.ascontiguousarray(err[box])
    del err
    n = int(np.count_nonzero(crop))
    seed = _nth_nonzero(crop, int(rng.integers(n)))
    labels = cc3d.connected_components(crop, connectivity=26)
    component = labels == labels[seed]
    del labels
    return _region(component, [b.start for b in box], target.shape, positive=crop[seed] == 1)


def _noise_keep(region: Region, *, rng, spacing, period: float, threshold: float, max_points: int) -> np.ndarray:
    """bool, the region's crop shape: where the noise exceeds the threshold (only meaningful on the mask)."""
    shape = region.mask.shape
    scale = np.asarray(spacing, np.float32) / np.float32(min(spacing) * period)
    n = int(np.count_nonzero(region.mask))
    if n <= max_points:
        local = np.nonzero(region.mask)
        points = (np.stack(local, axis=1) + np.asarray(region.offset)).astype(np.float32) * scale
        above = perlin(points, rng=rng) > threshold
        keep = np.zeros(shape, bool)
        keep[tuple(c[above] for c in local)] = True
        return keep
    # Large components: evaluate on a coarse grid over the bounding box (at most `max_points` cells of
    # `stride` voxels, well below the noise period) and repeat it: the cost is bounded whatever the size; the
    # pieces' outlines become staircases of `stride` voxels.
    stride = max(2, int(np.ceil((region.mask.size / max_points) ** (1 / 3))))
    coarse = tuple(-(-s // stride) for s in shape)
    grid = np.indices(coarse, dtype=np.float32).reshape(3, -1).T * stride + (stride - 1) / 2
    points = (grid + np.asarray(region.offset, np.float32)) * scale
    keep = (perlin(points, rng=rng) > threshold).reshape(coarse)
    keep = keep.repeat(stride, 0).repeat(stride, 1).repeat(stride, 2)
    return keep[: shape[0], : shape[1], : shape[2]]


def fragment(
    region: Region,
    *,
    rng: np.random.Generator,
    spacing: Sequence[float],
    period: float = 24.0,
    threshold: float = 0.0,
    max_points: int = 200_000,
) -> Region:
    """Break a component with thresholded Perlin noise and return one piece, chosen ∝ its size.

    Thin slivers along an object's border form one large component; cutting them with smooth noise makes a
    box or lasso cover a local part of the error instead of the whole rim. The noise is evaluated only at the
    component's voxels (on a coarse grid inside its bounding box when it has more than `max_points`). If
    nothing survives the threshold, the component is returned whole.

    Args:
        region: the component.
        rng: random source.
        spacing: voxel size (mm per axis), so that the noise is isotropic in physical space.
        period: noise period in voxels of the finest axis.
        threshold: voxels with noise above it survive (0 keeps about half).
        max_points: noise evaluations above which a coarse grid is used.
    """
    keep = _noise_keep(region, rng=rng, spacing=spacing, period=period, threshold=threshold, max_points=max_points)
    pieces = region.mask & keep
    del keep
    survivors = int(np.count_nonzero(pieces))
    if survivors == 0:
        return region
    seed = _nth_nonzero(pieces, int(rng.integers(survivors)))
    labels = cc3d.connected_components(pieces, connectivity=26)
    return _region(labels == labels[seed], region.offset, region.shape, region.positive)
