"""Point prompts: a location drawn ∝ D(x)^α inside the component, drawn as the inference package's ball."""

from __future__ import annotations

from functools import lru_cache

import edt
import numpy as np
from scipy.ndimage import distance_transform_edt

from nninteractive_train.simulation.errors import Region
from nninteractive_train.simulation.params import SimulationParams
from nninteractive_train.simulation.prompt import Prompt

__all__ = ["ball_profile", "sample_point", "point_prompt", "draw_point"]


@lru_cache(maxsize=8)
def _ball_profile(radius: int) -> np.ndarray:
    # Same construction as nnInteractive.interaction.point.build_point((r, r, r), True, False): skimage's
    # ball(r) (x² + y² + z² <= r²), its EDT (array edges are not background), normalised to max 1.
    grid = np.arange(-radius, radius + 1)
    ball = grid[:, None, None] ** 2 + grid[None, :, None] ** 2 + grid[None, None, :] ** 2 <= radius**2
    profile = distance_transform_edt(ball)
    profile = (profile / profile.max()).astype(np.float32)
    profile.flags.writeable = False
    return profile


def ball_profile(radius: int = 4) -> np.ndarray:
    """float32 (2r+1, 2r+1, 2r+1): 1.0 at the centre, ≈0.77, 0.54, 0.34, 0.24 outwards for r = 4, 0 outside.

    Read-only (cached); voxel units regardless of spacing, as in the inference package.
    """
    return _ball_profile(int(radius))


def sample_point(
    mask: np.ndarray,
    *,
    rng: np.random.Generator,
    alpha: float,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    open_sides: tuple[tuple[bool, bool], ...] = ((False, False),) * 3,
    max_exact: int = 2**21,
) -> tuple[int, int, int]:
    """A voxel of `mask` drawn with p(x) ∝ D(x)^α, D = EDT of the mask (spacing-aware) normalised to [0, 1].

    Args:
        mask: bool (X, Y, Z), non-empty (a tight crop is fastest).
        rng: random source.
        alpha: exponent; 0 is uniform, large values concentrate on the EDT maximum (the "centre").
        spacing: voxel size (mm per axis) for the EDT.
        open_sides: per axis (low, high): True where the mask continues beyond the array (the crop touches the
            volume border there), so that side is not treated as background.
        max_exact: crops with more voxels (huge objects) use the EDT of every second voxel per axis: the
            drawn 2×2×2 cell is exact in distribution up to one voxel, and the point is a mask voxel in it.

    Returns:
        Index (x, y, z) into `mask`.
    """
    if not mask.any():
        raise ValueError("sample_point needs a non-empty mask")
    stride = 2 if mask.size > max_exact else 1
    coarse = mask[::stride, ::stride, ::stride] if stride > 1 else mask
    if not coarse.any():  # a sparse mask the subsampling misses: use the exact path
        stride, coarse = 1, mask
    pads = [(0 if lo else 1, 0 if hi else 1) for lo, hi in open_sides]
    padded = np.pad(coarse.view(np.uint8), pads)  # uint8 runs edt ≈2× faster than bool
    distance = edt.edt(padded, anisotropy=tuple(s * stride for s in spacing), black_border=False)
    distance = distance[tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, coarse.shape))]
    flat = np.flatnonzero(coarse)
    values = distance.ravel()[flat].astype(np.float64)
    weights = (values / values.max()) ** float(alpha)
    cumulative = np.cumsum(weights)
    i = min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), flat.size - 1)
    point = np.asarray(np.unravel_index(flat[i], coarse.shape)) * stride
    if stride > 1:
        # Any mask voxel of the chosen cell; the cell's corner is one by construction.
        jittered = np.minimum(point + rng.integers(0, stride, 3), np.asarray(mask.shape) - 1)
        if mask[tuple(jittered)]:
            point = jittered
    return tuple(int(c) for c in point)


def point_prompt(coords, shape, *, positive: bool = True, radius: int = 4) -> Prompt:
    """A point prompt at `coords` (x, y, z) in a volume of `shape`: the ball profile, clipped to the volume."""
    profile = ball_profile(radius)
    lo = [c - radius for c in coords]
    if any(c < 0 or c >= s for c, s in zip(coords, shape)):
        raise ValueError(f"point {tuple(coords)} lies outside the volume {tuple(shape)}")
    start = [max(0, v) for v in lo]
    stop = [min(s, c + radius + 1) for c, s in zip(coords, shape)]
    patch = profile[tuple(slice(a - v, b - v) for a, b, v in zip(start, stop, lo))].copy()
    return Prompt(
        kind="point",
        positive=bool(positive),
        patch=patch,
        offset=tuple(start),
        shape=tuple(int(s) for s in shape),
        coords=tuple(int(c) for c in coords),
    )


def draw_point(region: Region, *, rng: np.random.Generator, spacing, params: SimulationParams) -> Prompt:
    """A point prompt in `region` (α drawn from params.alphas with params.alpha_probs)."""
    probs = np.asarray(params.alpha_probs, np.float64)
    alpha = params.alphas[int(rng.choice(len(params.alphas), p=probs / probs.sum()))]
    open_sides = tuple(
        (o == 0, o + s == n) for o, s, n in zip(region.offset, region.mask.shape, region.shape)
    )
    local = sample_point(region.mask, rng=rng, alpha=alpha, spacing=spacing, open_sides=open_sides)
    coords = tuple(o + c for o, c in zip(region.offset, local))
    return point_prompt(coords, region.shape, positive=region.positive, radius=params.point_radius)
