"""Vectorised Perlin (gradient) noise evaluated at arbitrary points.

The `noise` package evaluates one point per Python call (≈11 s for a 192³ volume). Here the noise is evaluated
only where it is needed — at the voxels of one error component, or on a small 2D canvas — with numpy, so its
cost is proportional to the number of points asked for, not to the volume.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["perlin", "smooth_field"]


def _fade(t: np.ndarray) -> np.ndarray:
    # Perlin's quintic fade: C2-continuous across lattice cells, so the noise has no visible cell seams.
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def perlin(points: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """Gradient noise at `points`, with a fresh random gradient lattice of period 1.

    Args:
        points: float array (N, D), D in {1, 2, 3}, in lattice units (one lattice cell = one period).
        rng: source of the random unit gradients at the lattice nodes.

    Returns:
        float32 (N,), smooth in the point coordinates, zero at lattice nodes, roughly symmetric around 0 with
        |value| < sqrt(D) / 2.
    """
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or not 1 <= points.shape[1] <= 3:
        raise ValueError(f"points must have shape (N, D) with D in 1..3, got {points.shape}")
    n, ndim = points.shape
    if n == 0:
        return np.zeros(0, np.float32)
    # Axis-major (D, N) layout: every per-axis operation below then runs on a contiguous vector.
    local = np.ascontiguousarray(points.T) - np.floor(points.min(axis=0))[:, None]
    cell = np.floor(local)
    frac = local - cell
    cell = cell.astype(np.intp)
    lattice_shape = tuple(int(c) + 2 for c in cell.max(axis=1))
    size = int(np.prod(lattice_shape))
    gradients = rng.standard_normal((ndim, size)).astype(np.float32)
    gradients /= np.maximum(np.sqrt((gradients**2).sum(axis=0)), np.float32(1e-6))
    strides = [int(np.prod(lattice_shape[d + 1 :])) for d in range(ndim)]
    base = cell[0] * strides[0]
    for d in range(1, ndim):
        base += cell[d] * strides[d]
    fade = _fade(frac)
    out = np.zeros(n, np.float32)
    for corner in itertools.product((0, 1), repeat=ndim):
        index = base + sum(c * s for c, s in zip(corner, strides))
        dot = None
        weight = None
        for d in range(ndim):
            term = gradients[d].take(index) * (frac[d] - 1.0 if corner[d] else frac[d])
            dot = term if dot is None else dot + term
            wd = fade[d] if corner[d] else 1.0 - fade[d]
            weight = wd if weight is None else weight * wd
        out += weight * dot
    return out


def smooth_field(shape: tuple[int, ...], period: float, *, rng: np.random.Generator) -> np.ndarray:
    """A smooth random scalar field on a small grid, scaled to roughly [-1, 1].

    Args:
        shape: grid shape (2D or 3D canvas; keep it small, the cost is one noise evaluation per cell).
        period: feature size in grid cells (> 0).
        rng: random source.

    Returns:
        float32 array of `shape`.
    """
    if period <= 0:
        raise ValueError(f"period must be > 0, got {period}")
    grid = np.indices(shape, dtype=np.float32).reshape(len(shape), -1).T / np.float32(period)
    # Perlin values rarely exceed ~0.5 in magnitude; ×2 maps them to about [-1, 1].
    values = 2.0 * perlin(grid, rng=rng)
    return np.clip(values, -1.0, 1.0).reshape(shape)
