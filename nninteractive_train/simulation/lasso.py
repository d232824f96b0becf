"""Lasso prompts: a filled, hand-drawn-looking outline around the component on one slice."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_fill_holes
from skimage.morphology import convex_hull_image

from nninteractive_train.simulation.errors import Region
from nninteractive_train.simulation.params import SimulationParams
from nninteractive_train.simulation.planar import (
    Canvas,
    Plane,
    dilate,
    directional_size,
    displace,
    erode,
    largest_piece,
    num_pieces,
    pick_slice,
    plane_prompt,
    warp,
)
from nninteractive_train.simulation.prompt import Prompt

__all__ = ["lasso_region", "draw_lasso"]


def lasso_region(plane: Plane, *, rng: np.random.Generator, params: SimulationParams):
    """The lasso's filled region for a plane: (bool patch, in-plane offset), or None if it leaves the volume.

    Steps, with s the directional EDT size of the slice's mask per axis (pixels):
    closing with an ellipse of radii U(lasso_closing)·s (a hand-drawn outline skips concavities), convex hull
    when the slice holds several pieces (one outline encloses them all), dilation by U(lasso_dilation)·s (at
    least one pixel: the user's margin), then a smooth random displacement of magnitude U(lasso_displacement)·s,
    hole filling, and the largest piece.
    """
    size = directional_size(plane.mask)
    closing = rng.uniform(*params.lasso_closing) * size
    margin_radii = np.maximum(rng.uniform(*params.lasso_dilation) * size, 1.0)
    amplitude = rng.uniform(*params.lasso_displacement) * size
    canvas = Canvas(plane, margin=int(np.ceil((closing + margin_radii + amplitude).max())) + 2)
    region = canvas.mask
    if closing.max() >= 1.0:
        region = erode(dilate(region, closing), closing) | region
    if num_pieces(region, connectivity=8) > 1:
        region = convex_hull_image(region)
    region = dilate(region, margin_radii)
    if amplitude.max() >= 0.5:
        field = displace(region.shape, amplitude, rng=rng, period=max(4.0, 4.0 * float(size.max())))
        warped = warp(region, field)
        if warped.any():
            region = warped
    region = binary_fill_holes(largest_piece(region, connectivity=4))
    return canvas.clip(region)


def draw_lasso(region: Region, *, rng: np.random.Generator, spacing, params: SimulationParams) -> Prompt | None:
    """A filled lasso prompt on a slice of `region` (slice drawn ∝ voxels per slice ^ params.slice_power)."""
    plane = pick_slice(region, rng=rng, power=params.slice_power)
    drawn = lasso_region(plane, rng=rng, params=params)
    if drawn is None:
        return None
    patch, offset = drawn
    # Clipping at the volume border may split the region; a lasso is one filled outline.
    patch = largest_piece(patch, connectivity=4)
    return plane_prompt("lasso", plane, patch, offset)
