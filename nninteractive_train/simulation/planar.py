"""Shared machinery of the 2D prompts (bbox, lasso, scribble): the slice, a working canvas, 2D morphology.

All 2D work happens on a small canvas around the component's slice, never on the full slice or volume.
Morphology with elliptical structuring elements is done by thresholding an anisotropic EDT (`edt`), which is
one O(pixels) pass whatever the radius, where scipy's iterated binary morphology grows with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import edt
import numpy as np

from nninteractive_train.simulation.errors import Region, bounding_box
from nninteractive_train.simulation.noise import smooth_field
from nninteractive_train.simulation.prompt import Prompt

__all__ = [
    "Plane",
    "pick_slice",
    "directional_size",
    "dilate",
    "erode",
    "warp",
    "displace",
    "largest_piece",
    "num_pieces",
    "Canvas",
    "plane_prompt",
]


@dataclass(frozen=True, eq=False)
class Plane:
    """The component on one slice: bool `mask` (tight 2D crop) at `offset` (in-plane volume coordinates).

    `axis`/`index` give the slice in the volume, `shape` the volume's in-plane extent, `dims` the two in-plane
    volume axes (increasing), in the order of the mask's axes.
    """

    mask: np.ndarray
    offset: tuple[int, int]
    shape: tuple[int, int]
    axis: int
    index: int
    dims: tuple[int, int]
    positive: bool
    volume_shape: tuple[int, int, int]


def pick_slice(region: Region, *, rng: np.random.Generator, power: float = 1.0) -> Plane:
    """A slice of the region, axis and index drawn ∝ (the region's voxels on it)^power, over all three axes.

    power 1 favours the large central cross-sections a user would pick; 0 draws every slice that cuts the region
    alike, so off-centre planes, from which most of the object lies far on one side, come up more often.
    """
    counts = [np.count_nonzero(region.mask, axis=tuple(a for a in range(3) if a != axis)) for axis in range(3)]
    flat = np.concatenate(counts).astype(np.float64)
    if power != 1.0:
        flat = np.where(flat > 0, flat ** power, 0.0)
    cumulative = np.cumsum(flat)
    pick = min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), flat.size - 1)
    axis = 0
    while pick >= counts[axis].size:
        pick -= counts[axis].size
        axis += 1
    mask2d = np.take(region.mask, pick, axis=axis)
    dims = tuple(a for a in range(3) if a != axis)
    box = bounding_box(mask2d)
    return Plane(
        mask=np.ascontiguousarray(mask2d[box]),
        offset=tuple(region.offset[d] + b.start for d, b in zip(dims, box)),
        shape=tuple(region.shape[d] for d in dims),
        axis=axis,
        index=region.offset[axis] + pick,
        dims=dims,
        positive=region.positive,
        volume_shape=region.shape,
    )


def run_distance(mask: np.ndarray, axis: int) -> np.ndarray:
    """1D EDT along one axis: for each mask pixel, the distance (pixels) to the nearest background pixel on its
    line along `axis`, counting the array edge as background (edge pixels get 1); 0 outside the mask."""
    m = np.moveaxis(mask, axis, -1).astype(np.int32)
    counts = np.cumsum(m, axis=-1)
    forward = counts - np.maximum.accumulate(np.where(m == 0, counts, 0), axis=-1)
    rev = m[..., ::-1]
    counts = np.cumsum(rev, axis=-1)
    backward = (counts - np.maximum.accumulate(np.where(rev == 0, counts, 0), axis=-1))[..., ::-1]
    return np.moveaxis(np.minimum(forward, backward), -1, axis)


def directional_size(mask: np.ndarray) -> np.ndarray:
    """Directional EDT scale of a 2D mask: the mean over the mask of its 1D EDT along each axis (float64 (2,)).

    The object's typical half-thickness in that direction, in pixels (≈0.4 × the semi-axis of an ellipse,
    ≈ half the width of a thin ring), so radii derived from it are local and automatically anisotropy-aware.
    """
    return np.array([run_distance(mask, a)[mask].mean() for a in range(mask.ndim)])


def dilate(mask: np.ndarray, radii) -> np.ndarray:
    """Dilation of a 2D bool mask by the ellipse with semi-axes `radii` (pixels per axis)."""
    radii = np.maximum(np.asarray(radii, np.float64), 1e-3)
    outside = (~mask).view(np.uint8)
    # Distance to the nearest mask pixel, in units of the ellipse's semi-axes.
    distance = edt.edt(outside, anisotropy=tuple(1.0 / radii), black_border=False)
    return mask | (distance <= 1.0)


def erode(mask: np.ndarray, radii) -> np.ndarray:
    """Erosion of a 2D bool mask by the ellipse with semi-axes `radii` (pixels); the outside is background."""
    radii = np.maximum(np.asarray(radii, np.float64), 1e-3)
    distance = edt.edt(mask.view(np.uint8), anisotropy=tuple(1.0 / radii), black_border=True)
    return distance > 1.0


def displace(shape: tuple[int, int], amplitude, *, rng: np.random.Generator, period: float) -> np.ndarray:
    """Smooth random displacement field float32 (2, *shape), at most `amplitude[a]` pixels along axis a."""
    amplitude = np.asarray(amplitude, np.float32)
    return np.stack([smooth_field(shape, period, rng=rng) * amplitude[a] for a in range(2)])


def warp(mask: np.ndarray, field: np.ndarray) -> np.ndarray:
    """out[p] = mask[round(p + field[:, p])] (nearest neighbour; outside the canvas is False)."""
    grid = np.indices(mask.shape, dtype=np.float32)
    source = np.rint(grid + field).astype(np.intp)
    inside = np.ones(mask.shape, bool)
    for a in range(2):
        inside &= (source[a] >= 0) & (source[a] < mask.shape[a])
        np.clip(source[a], 0, mask.shape[a] - 1, out=source[a])
    return mask[source[0], source[1]] & inside


def num_pieces(mask: np.ndarray, connectivity: int = 8) -> int:
    """Number of connected pieces of a 2D bool mask (4- or 8-connected)."""
    return int(cc3d.connected_components(mask.view(np.uint8), connectivity=connectivity, return_N=True)[1])


def largest_piece(mask: np.ndarray, connectivity: int = 8) -> np.ndarray:
    """The largest connected piece of a 2D bool mask (4- or 8-connected); the mask itself if it has one."""
    labels, n = cc3d.connected_components(mask.view(np.uint8), connectivity=connectivity, return_N=True)
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(sizes.argmax())


class Canvas:
    """A zero-padded 2D canvas around a plane's mask; it may reach beyond the volume (clipped at the end).

    Attributes:
        mask: bool (H, W), the plane's mask placed with `margin` pixels on each side.
        origin: in-plane volume coordinates of mask[0, 0] (may be negative).
    """

    def __init__(self, plane: Plane, margin: int):
        margin = int(margin)
        self.plane = plane
        self.mask = np.pad(plane.mask, margin)
        self.origin = tuple(o - margin for o in plane.offset)

    def clip(self, drawn: np.ndarray) -> tuple[np.ndarray, tuple[int, int]] | None:
        """The part of a canvas-shaped drawing inside the volume, cropped tight: (bool patch, in-plane offset)."""
        lo = [max(0, -o) for o in self.origin]
        hi = [min(n, s - o) for n, s, o in zip(drawn.shape, self.plane.shape, self.origin)]
        if any(h <= l for l, h in zip(lo, hi)):
            return None
        inside = drawn[lo[0]:hi[0], lo[1]:hi[1]]
        box = bounding_box(inside)
        if box is None:
            return None
        offset = tuple(o + l + b.start for o, l, b in zip(self.origin, lo, box))
        return np.ascontiguousarray(inside[box]), offset


def plane_prompt(kind: str, plane: Plane, patch2d: np.ndarray, offset2d, **fields) -> Prompt:
    """A Prompt whose 2D `patch2d` (in-plane offset `offset2d`) lies on the plane's slice."""
    patch = np.expand_dims(patch2d.astype(np.float32), plane.axis)
    offset = [0, 0, 0]
    offset[plane.axis] = plane.index
    for d, o in zip(plane.dims, offset2d):
        offset[d] = int(o)
    return Prompt(
        kind=kind,
        positive=plane.positive,
        patch=patch,
        offset=tuple(offset),
        shape=tuple(plane.volume_shape),
        axis=plane.axis,
        index=int(plane.index),
        **fields,
    )
