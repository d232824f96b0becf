"""Offline SuperVoxel backends (no weights): SLIC in 3D, Felzenszwalb on axial slices linked through the volume.

Both over-segment the image inside the valid region, then :func:`select_segments` keeps at most ``max_objects``
plausible objects: not too small or large, compact, not touching the image or the outside region (that is mostly
air or background), ranked by contrast to their surroundings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cc3d
import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class SupervoxelConfig:
    """SuperVoxel generation settings (offline backends and the selection filter)."""

    backend: str = "slic"
    """``slic``, ``felzenszwalb`` or ``sam`` (SAM + SAM2; needs local checkpoints)."""
    max_objects: int = 20
    """Most SuperVoxels kept per case (the paper: up to 20); stored as uint8 labels 1..n."""
    min_voxels: int = 64
    """Smallest SuperVoxel, in voxels."""
    min_fraction: float = 5e-4
    """Smallest SuperVoxel as a fraction of the valid (inside-image) volume."""
    max_fraction: float = 0.15
    """Largest SuperVoxel as a fraction of the valid volume."""
    min_fill: float = 0.2
    """Compactness: voxels / bounding-box volume must be at least this."""
    n_segments: int = 100
    """SLIC: approximate number of segments in the valid region."""
    compactness: float = 0.05
    """SLIC: compactness for intensities rescaled to [0, 1] (smaller follows edges more)."""
    max_voxels: int = 2_000_000
    """SLIC / Felzenszwalb run on a strided copy when the volume is larger (labels are upsampled back)."""
    fz_scale: float = 500.0
    """Felzenszwalb: scale (larger gives larger segments), on intensities rescaled to [0, 255]."""
    fz_sigma: float = 0.8
    """Felzenszwalb: Gaussian pre-smoothing in pixels."""
    link_iou: float = 0.5
    """Felzenszwalb: slice segments overlapping with at least this IoU join one SuperVoxel."""


def rescale(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Intensities mapped to [0, 1] by the 0.5 / 99.5 percentiles inside ``valid`` (float32, same shape)."""
    vals = image[valid] if valid.any() else image.ravel()
    lo, hi = np.percentile(vals, [0.5, 99.5]) if vals.size else (0.0, 1.0)
    return np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1).astype(np.float32)


def _stride(shape: Sequence[int], max_voxels: int) -> int:
    return max(1, int(np.ceil((np.prod(shape) / max_voxels) ** (1 / 3))))


def _upsample(labels: np.ndarray, stride: int, shape: Sequence[int]) -> np.ndarray:
    if stride == 1:
        return labels
    up = labels.repeat(stride, 0).repeat(stride, 1).repeat(stride, 2)
    return up[: shape[0], : shape[1], : shape[2]]


def slic_segments(image: np.ndarray, valid: np.ndarray, *, spacing: Sequence[float],
                  config: SupervoxelConfig = SupervoxelConfig()) -> np.ndarray:
    """3D SLIC over-segmentation of ``image`` (Z, Y, X) inside ``valid``; (Z, Y, X) int32 labels, 0 outside."""
    from skimage.segmentation import slic

    s = _stride(image.shape, config.max_voxels)
    img = rescale(image, valid)[::s, ::s, ::s]
    m = valid[::s, ::s, ::s]
    if not m.any():
        return np.zeros(image.shape, np.int32)
    lab = slic(img, n_segments=config.n_segments, compactness=config.compactness, spacing=np.asarray(spacing) * s,
               mask=m, channel_axis=None, start_label=1, enforce_connectivity=True)
    return np.where(valid, _upsample(lab.astype(np.int32), s, image.shape), 0)


def felzenszwalb_segments(image: np.ndarray, valid: np.ndarray, *, spacing: Sequence[float],
                          config: SupervoxelConfig = SupervoxelConfig()) -> np.ndarray:
    """Felzenszwalb segments of every axial slice, linked across slices by overlap (IoU ≥ ``link_iou``).

    Returns (Z, Y, X) int32 labels, 0 outside ``valid``.
    """
    from skimage.segmentation import felzenszwalb

    s = _stride(image.shape, config.max_voxels)
    img = rescale(image, valid)[::s, ::s, ::s] * 255
    m = valid[::s, ::s, ::s]
    min_size = max(4, int(config.min_voxels ** (2 / 3)))
    lab = np.zeros(img.shape, np.int64)
    nxt = 1
    for z in range(img.shape[0]):
        if not m[z].any():
            continue
        sl = felzenszwalb(img[z], scale=config.fz_scale, sigma=config.fz_sigma, min_size=min_size).astype(np.int64)
        sl = np.where(m[z], sl + nxt, 0)
        lab[z] = sl
        nxt = int(sl.max()) + 1 if sl.any() else nxt
    if nxt == 1:
        return np.zeros(image.shape, np.int32)
    sizes = np.bincount(lab.ravel(), minlength=nxt)
    a, b = lab[:-1].ravel(), lab[1:].ravel()
    both = (a > 0) & (b > 0)
    pair = a[both] * nxt + b[both]
    uniq, inter = np.unique(pair, return_counts=True)
    pa, pb = uniq // nxt, uniq % nxt
    iou = inter / (sizes[pa] + sizes[pb] - inter)
    keep = iou >= config.link_iou
    graph = coo_matrix((np.ones(int(keep.sum())), (pa[keep], pb[keep])), shape=(nxt, nxt))
    _, comp = connected_components(graph, directed=False)
    # component ids → 1..K, background stays 0
    comp = comp - comp[0]
    comp = np.where(comp < 0, comp + comp.max() + 1, comp)
    linked = np.where(lab > 0, comp[lab] + 1, 0)
    return np.where(valid, _upsample(linked.astype(np.int32), s, image.shape), 0)


def select_segments(
    segments: np.ndarray,
    image: np.ndarray,
    valid: np.ndarray,
    *,
    config: SupervoxelConfig = SupervoxelConfig(),
) -> np.ndarray:
    """Keep at most ``config.max_objects`` plausible segments and relabel them 1..n.

    Args:
        segments: (Z, Y, X) integer over-segmentation, 0 = none.
        image: (Z, Y, X) intensities (for the contrast ranking).
        valid: (Z, Y, X) bool, inside the image.

    Returns (Z, Y, X) uint8 SuperVoxel map. Segments are split into 6-connected components, and a component is
    kept if ``min_voxels`` ≤ size, ``min_fraction`` ≤ size / valid volume ≤ ``max_fraction``, fill ≥
    ``min_fill``, and it touches neither the array border nor the outside of ``valid``. Ranking: |mean inside −
    mean of a 2-voxel shell| / (std inside + 0.1 · std of the image), highest first.
    """
    if config.max_objects > 255:
        raise ValueError("max_objects must be <= 255 (uint8 map)")
    out = np.zeros(segments.shape, np.uint8)
    nvalid = int(valid.sum())
    if nvalid == 0:
        return out
    lab = cc3d.connected_components(np.where(valid, segments, 0).astype(np.uint32), connectivity=6)
    stats = cc3d.statistics(lab, no_slice_conversion=True)
    counts = np.asarray(stats["voxel_counts"], np.int64)
    bbs = np.asarray(stats["bounding_boxes"], np.int64)
    lo = max(config.min_voxels, config.min_fraction * nvalid)
    hi = config.max_fraction * nvalid
    outside = ~valid
    img_std = float(image[valid].std()) if nvalid else 1.0
    struct = ndimage.generate_binary_structure(3, 1)
    cands = []
    for i in np.flatnonzero((counts >= lo) & (counts <= hi)):
        if i == 0:
            continue
        b = bbs[i]
        box = np.array([b[0], b[2], b[4], b[1] + 1, b[3] + 1, b[5] + 1])
        if np.prod(box[3:] - box[:3]) * config.min_fill > counts[i]:
            continue
        if np.any(box[:3] == 0) or np.any(box[3:] == np.array(segments.shape)):
            continue
        g = tuple(slice(max(a - 2, 0), c + 2) for a, c in zip(box[:3], box[3:]))
        mask = lab[g] == i
        shell = ndimage.binary_dilation(mask, struct, iterations=2) & ~mask
        if (shell & outside[g]).any():
            continue
        inside_v = image[g][mask]
        shell_v = image[g][shell & valid[g]]
        score = abs(float(inside_v.mean()) - float(shell_v.mean())) / (float(inside_v.std()) + 0.1 * img_std + 1e-6)
        cands.append((score, int(counts[i]), int(i)))
    cands.sort(key=lambda t: (-t[0], -t[1], t[2]))
    for k, (_, _, i) in enumerate(cands[: config.max_objects]):
        out[lab == i] = k + 1
    return out
