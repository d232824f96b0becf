"""Scribble prompts: one stroke of fixed width on a slice — a line, the centre line, or part of the contour."""

from __future__ import annotations

from functools import lru_cache

import cc3d
import numpy as np
from scipy.ndimage import binary_dilation
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from skimage.draw import line as draw_line
from skimage.morphology import skeletonize

from nninteractive_train.simulation.errors import Region
from nninteractive_train.simulation.params import SimulationParams
from nninteractive_train.simulation.planar import (
    Canvas,
    Plane,
    directional_size,
    displace,
    erode,
    largest_piece,
    pick_slice,
    plane_prompt,
    warp,
)
from nninteractive_train.simulation.prompt import Prompt

__all__ = ["brush", "stroke_path", "truncate", "longest_path", "scribble_region", "draw_scribble"]

_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)


@lru_cache(maxsize=8)
def brush(width: int) -> np.ndarray:
    """bool (w, w) disc-like footprint of diameter `width` pixels (2 → 2×2 square, 3 → 3×3, 5 → disc)."""
    centre = (width - 1) / 2
    grid = np.arange(width) - centre
    footprint = grid[:, None] ** 2 + grid[None, :] ** 2 <= (width / 2) ** 2
    footprint.flags.writeable = False
    return footprint


def stroke_path(style: str, mask: np.ndarray, size: np.ndarray, *, rng: np.random.Generator,
                erosion: tuple[float, float]) -> np.ndarray:
    """A one-pixel-wide stroke on a (padded) 2D mask for a style: "line", "centre" or "contour".

    line: the segment between two voxels of the mask drawn uniformly (both in the same 8-connected piece; its
    longest part inside the mask);
    centre: the mask's skeleton (a line when the skeleton is shorter than the slice's smallest half-size);
    contour: the inner boundary of the mask eroded by U(erosion)·size (so it runs just inside the border).
    """
    if style == "line":
        # Both ends in the same piece of the slice: a user does not drag a stroke across background.
        labels = cc3d.connected_components(mask.view(np.uint8), connectivity=8)
        points = np.argwhere(mask)
        a = points[rng.integers(len(points))]
        points = np.argwhere(labels == labels[a[0], a[1]])
        b = points[rng.integers(len(points))]
        out = np.zeros(mask.shape, bool)
        out[draw_line(a[0], a[1], b[0], b[1])] = True
        # In a non-convex slice the segment may cross background; the user's stroke is the part inside.
        return largest_piece(out & mask, connectivity=8)
    if style == "centre":
        skeleton = skeletonize(mask)
        # A round slice's skeleton is a dot; a user scribbling its centre draws a short line instead.
        if np.count_nonzero(skeleton) >= max(3.0, 2.5 * float(size.min())):
            return skeleton
        return stroke_path("line", mask, size, rng=rng, erosion=erosion)
    if style == "contour":
        inner = erode(mask, np.maximum(rng.uniform(*erosion) * size, 1e-3))
        if not inner.any():
            inner = mask
        # One-pixel inner rim: what is left after removing the 4-connected erosion.
        core = inner.copy()
        core[1:-1, 1:-1] = (inner[1:-1, 1:-1] & inner[:-2, 1:-1] & inner[2:, 1:-1]
                            & inner[1:-1, :-2] & inner[1:-1, 2:])
        core[0, :] = core[-1, :] = core[:, 0] = core[:, -1] = False
        return inner & ~core
    raise ValueError(f"unknown scribble style {style!r}")


def truncate(stroke: np.ndarray, *, rng: np.random.Generator, fraction: float, p: float = 1.0) -> np.ndarray:
    """Cut a stroke at random lower and upper bounds along each axis.

    Each of the 2 × ndim bounds is applied with probability `p` and removes U(0, fraction) of the stroke's
    extent along its axis. A bound that would remove everything is skipped, so the stroke stays non-empty.
    """
    coords = np.nonzero(stroke)
    keep = np.ones(coords[0].size, bool)
    for axis in range(stroke.ndim):
        c = coords[axis][keep]
        lo, hi = c.min(), c.max()
        extent = hi - lo + 1
        cut_lo, cut_hi = rng.uniform(0, fraction, 2) * extent * (rng.random(2) < p)
        inside = keep & (coords[axis] >= lo + cut_lo) & (coords[axis] <= hi - cut_hi)
        if inside.any():
            keep = inside
    out = np.zeros(stroke.shape, bool)
    out[tuple(c[keep] for c in coords)] = True
    return out


def longest_path(stroke: np.ndarray) -> np.ndarray:
    """The longest shortest path through a connected one-pixel-wide 2D stroke (8-connected, diagonal steps √2).

    A hand-drawn scribble is one simple curve: this drops skeleton spurs and junctions (which would thicken
    into blobs when the stroke is widened) and opens closed loops (a ring becomes half of it).
    """
    coords = np.argwhere(stroke)
    n = len(coords)
    if n <= 2:
        return stroke
    index = np.full((stroke.shape[0] + 2, stroke.shape[1] + 2), -1, np.intp)
    index[coords[:, 0] + 1, coords[:, 1] + 1] = np.arange(n)
    rows, cols, weights = [], [], []
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):  # half the 8-neighbourhood: each edge once
        neighbour = index[coords[:, 0] + 1 + dy, coords[:, 1] + 1 + dx]
        ok = neighbour >= 0
        rows.append(np.flatnonzero(ok))
        cols.append(neighbour[ok])
        weights.append(np.full(int(ok.sum()), np.hypot(dy, dx)))
    graph = csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    # Two sweeps: the node farthest from any node is one end of a longest path (exact on trees).
    distance = dijkstra(graph, directed=False, indices=0)
    start = int(np.argmax(np.where(np.isfinite(distance), distance, -1)))
    distance, predecessors = dijkstra(graph, directed=False, indices=start, return_predecessors=True)
    node = int(np.argmax(np.where(np.isfinite(distance), distance, -1)))
    path = [node]
    while node != start:
        node = int(predecessors[node])
        path.append(node)
    out = np.zeros(stroke.shape, bool)
    out[coords[path, 0], coords[path, 1]] = True
    return out


def scribble_region(plane: Plane, *, rng: np.random.Generator, params: SimulationParams):
    """The scribble for a plane: (bool patch, in-plane offset), or None if the slice is too small / it leaves
    the volume. Path by style, truncated, smoothly displaced by U(scribble_displacement)·s, skeletonised, reduced
    to its longest simple path and dilated to `scribble_width`; always one connected stroke.
    """
    if np.count_nonzero(plane.mask) < params.scribble_min_voxels:
        return None
    probs = params.scribble_style_probs
    probs = np.full(len(params.scribble_styles), 1.0) if probs is None else np.asarray(probs, np.float64)
    style = params.scribble_styles[int(rng.choice(len(probs), p=probs / probs.sum()))]
    size = directional_size(plane.mask)
    amplitude = rng.uniform(*params.scribble_displacement) * size
    canvas = Canvas(plane, margin=int(np.ceil(amplitude.max())) + params.scribble_width + 2)

    stroke = stroke_path(style, canvas.mask, size, rng=rng, erosion=params.scribble_erosion)
    stroke = truncate(stroke, rng=rng, fraction=params.scribble_truncation, p=params.scribble_truncation_p)
    stroke = largest_piece(stroke, connectivity=8)
    if amplitude.max() >= 0.5:
        # Warp a 3-pixel-wide band, not the 1-pixel path, so that the smooth warp cannot tear the stroke apart.
        band = binary_dilation(stroke, np.ones((3, 3), bool))
        field = displace(band.shape, amplitude, rng=rng, period=max(4.0, 4.0 * float(size.max())))
        moved = skeletonize(warp(band, field))
        if moved.any():
            stroke = largest_piece(moved, connectivity=8)
    drawn = binary_dilation(longest_path(stroke), brush(params.scribble_width))
    clipped = canvas.clip(drawn)
    if clipped is None:
        return None
    patch, offset = clipped
    return largest_piece(patch, connectivity=4), offset


def draw_scribble(region: Region, *, rng: np.random.Generator, spacing, params: SimulationParams) -> Prompt | None:
    """A scribble prompt on a slice of `region` (slice drawn ∝ voxels per slice ^ params.slice_power); None if the
    slice is too small."""
    plane = pick_slice(region, rng=rng, power=params.slice_power)
    drawn = scribble_region(plane, rng=rng, params=params)
    if drawn is None:
        return None
    return plane_prompt("scribble", plane, drawn[0], drawn[1])
