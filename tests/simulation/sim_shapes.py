"""Small test volumes for the prompt simulation tests (bool (X, Y, Z) arrays)."""

from __future__ import annotations

import numpy as np


def ellipsoid(shape=(40, 40, 30), centre=None, radii=(12, 9, 7)) -> np.ndarray:
    centre = np.asarray(shape) / 2 - 0.5 if centre is None else np.asarray(centre, float)
    grid = np.indices(shape, dtype=np.float32)
    radii = np.asarray(radii, np.float32)[:, None, None, None]
    return (((grid - centre[:, None, None, None]) / radii) ** 2).sum(0) <= 1


def box(shape, lo, hi) -> np.ndarray:
    out = np.zeros(shape, bool)
    out[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return out


def one_voxel(shape=(12, 12, 12), at=(5, 6, 7)) -> np.ndarray:
    out = np.zeros(shape, bool)
    out[at] = True
    return out


CASES = {
    "ellipsoid": lambda: (ellipsoid(), None),
    "one_voxel": lambda: (one_voxel(), None),
    "border": lambda: (ellipsoid(centre=(0, 20, 29), radii=(10, 8, 6)), None),  # cut by two volume faces
    "single_slice": lambda: (ellipsoid(shape=(30, 30, 9), radii=(9, 7, 0.5)), None),
    "anisotropic": lambda: (ellipsoid(shape=(40, 40, 12), radii=(12, 10, 4)), (0.8, 0.8, 2.5)),
    "corner_voxel": lambda: (one_voxel(at=(0, 0, 11)), None),
}
