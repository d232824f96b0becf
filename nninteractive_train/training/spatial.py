"""Per-sample spatial augmentation that reads only what it needs.

nnU-Net crops a fixed "initial patch" before spatial augmentation, sized for the worst case of every
augmentation at once; with the nnInteractive scaling range [0.5, 2] that is 605³ voxels for a 192³ patch (31×
the patch) and most of the data-loading cost. Here each sample's parameters are drawn first, and only the source
region that the drawn transform maps from is cropped (padding only what lies outside the image). Transposition
permutes the finished patch, so it needs no source margin at all.

Geometry (the convention of batchgeneratorsv2's ``SpatialTransform``, so outputs match it): patch voxel ``k``
along an axis of ``s`` voxels has the centred offset ``p = k - (s - 1) / 2``; it samples the source at voxel
coordinate ``centre + affine @ p - 0.5`` (linear interpolation), where ``centre`` is a real-valued position in
source voxels. Without rotation or scaling it is a plain crop of the patch around ``centre``.

Arrays are (C, X, Y, Z) in nnU-Net's axis order; all sizes and coordinates are in voxels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class SpatialAug:
    """Spatial augmentation parameters with batchgeneratorsv2's meaning (elastic deformation is not used).

    Attributes:
        p_rotation: probability of rotating (all three angles drawn), nnU-Net 0.2.
        rotation: maximum |angle| in radians per axis, drawn uniformly from [-rotation, rotation].
        p_scaling: probability of scaling.
        scaling: (lo, hi) scale factor range, drawn uniformly; > 1 samples a larger region (zoom out).
        p_synchronize_scaling: probability that one factor serves all axes (1 - per-axis probability).
    """

    p_rotation: float = 0.2
    rotation: float = np.pi / 6
    p_scaling: float = 0.3
    scaling: tuple[float, float] = (0.5, 2.0)
    p_synchronize_scaling: float = 0.4


def rotation_scaling_matrix(angles: Sequence[float], scales: Sequence[float]) -> np.ndarray:
    """(3, 3) ``Rz @ Ry @ Rx @ diag(scales)``, batchgeneratorsv2's ``create_affine_matrix_3d``."""
    a, b, c = (float(x) for x in angles)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx @ np.diag([float(s) for s in scales])


def draw_affine(aug: SpatialAug, *, rng: np.random.Generator) -> np.ndarray | None:
    """Draw one sample's transform with the distribution of batchgeneratorsv2's ``SpatialTransform``.

    Returns:
        (3, 3) source-offset-per-patch-offset matrix, or None when neither rotation nor scaling was drawn
        (the common case: then the sample is a plain crop).
    """
    do_rotation = rng.uniform() < aug.p_rotation
    do_scale = rng.uniform() < aug.p_scaling
    if not (do_rotation or do_scale):
        return None
    angles = rng.uniform(-aug.rotation, aug.rotation, 3) if do_rotation else np.zeros(3)
    if not do_scale:
        scales = np.ones(3)
    elif rng.uniform() <= aug.p_synchronize_scaling:
        scales = np.full(3, rng.uniform(*aug.scaling))
    else:
        scales = rng.uniform(aug.scaling[0], aug.scaling[1], 3)
    return rotation_scaling_matrix(angles, scales)


def patch_centre(center: Sequence[int], patch_size: Sequence[int]) -> np.ndarray:
    """Real-valued transform centre for a patch whose plain crop starts at ``center - patch // 2``."""
    return np.asarray(center, float) + 0.5 * (np.asarray(patch_size) % 2)


def source_box(centre: Sequence[float], affine: np.ndarray | None,
               patch_size: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Half-open box ``[lo, hi)`` of source voxels that the transform reads, in source voxel coordinates.

    The transform is affine, so the extreme sample positions are at patch corners; linear interpolation reads
    ``floor(x)`` and ``floor(x) + 1``. Without a transform it is the patch box of the plain crop.
    """
    size = np.asarray(patch_size, int)
    centre = np.asarray(centre, float)
    if affine is None:
        lo = np.floor(centre - size / 2).astype(int)
        return lo, lo + size
    half = (size - 1) / 2.0
    corners = np.array(np.meshgrid(*[[-h, h] for h in half], indexing="ij")).reshape(3, -1)
    pos = (np.asarray(affine) @ corners) + centre[:, None] - 0.5
    # float32 grids round by ~1e-5 voxel: one extra voxel per side keeps every read inside
    lo = np.floor(pos.min(1)).astype(int) - 1
    hi = np.floor(pos.max(1)).astype(int) + 3
    return lo, hi


def sampling_grid(centre_in_crop: Sequence[float], affine: np.ndarray, patch_size: Sequence[int],
                  crop_shape: Sequence[int]) -> torch.Tensor:
    """The ``grid_sample`` grid (X, Y, Z, 3), align_corners=False, last dim in (z, y, x) order as torch wants.

    The position is ``affine @ p + centre - shape / 2`` in voxels from the crop's centre, normalised by
    ``shape / 2``; being affine in ``p``, it is a sum of one broadcast term per patch axis (one pass in memory).
    """
    shape = np.asarray(crop_shape, float)
    m = np.asarray(affine, float)[::-1] / (shape[::-1, None] / 2)  # rows in torch's (z, y, x) order, normalised
    t = (np.asarray(centre_in_crop, float) - shape / 2)[::-1] / (shape[::-1] / 2)
    terms = []
    for axis, s in enumerate(int(v) for v in patch_size):
        p = torch.linspace((1 - s) / 2, (s - 1) / 2, s, dtype=torch.float64)
        view = [1, 1, 1, 3]
        view[axis] = s
        terms.append((p[:, None] * torch.from_numpy(m[:, axis].copy())[None]).float().reshape(view))
    small = terms[0] + terms[1] + torch.from_numpy(t.copy()).float()  # (X, Y, 1, 3): cheap
    return small + terms[2]  # the one full-size pass


def crop_box(array, lo: Sequence[int], hi: Sequence[int], pad_value=0) -> np.ndarray:
    """``array[..., lo:hi]`` over the last three axes, zero-padded (``pad_value``) where it leaves the array.
    Works on numpy and blosc2 arrays (only the chunks inside the box are decompressed)."""
    from acvl_utils.cropping_and_padding.bounding_boxes import crop_and_pad_nd

    return crop_and_pad_nd(array, [[int(a), int(b)] for a, b in zip(lo, hi)], pad_value)


def warp(image: torch.Tensor, segmentation: torch.Tensor, centre_in_crop: Sequence[float],
         affine: np.ndarray | None, patch_size: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample a source crop into the patch.

    Args:
        image: (C, *crop) float source crop, ``source_box`` of the sample.
        segmentation: (1, *crop) binary mask (any integer or bool dtype) on the same grid.
        centre_in_crop: (3,) transform centre in the crop's voxel coordinates (``centre - lo``).
        affine: from ``draw_affine``; None = plain crop of ``patch_size`` at the centre.
        patch_size: (3,) output size.

    Returns:
        (image float32 (C, *patch_size), segmentation (1, *patch_size) in the input's dtype). Image and mask are
        resampled linearly in one ``grid_sample`` call, zero outside the source; the mask is foreground where its
        interpolated value exceeds 0.5 (batchgeneratorsv2's rule for two labels; it differs only on exact ties).
    """
    size = [int(s) for s in patch_size]
    if affine is None:
        lo = np.floor(np.asarray(centre_in_crop, float) - np.asarray(size) / 2).astype(int)
        sl = (slice(None), *[slice(a, a + s) for a, s in zip(lo, size)])
        return image[sl].float(), segmentation[sl]
    stacked = torch.cat([image.float(), segmentation.float()])
    grid = sampling_grid(centre_in_crop, affine, size, image.shape[1:])
    out = torch.nn.functional.grid_sample(stacked[None], grid[None], mode="bilinear", padding_mode="zeros",
                                          align_corners=False)[0]
    n = image.shape[0]
    return out[:n], (out[n:] > 0.5).to(segmentation.dtype)
